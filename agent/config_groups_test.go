package agent

import (
	"errors"
	"strings"
	"testing"
)

func TestGroupSessionTimeoutBoundsInOrder(t *testing.T) {
	_, err := LoadConfig("", []string{"SAMSA_GROUP_MIN_SESSION_TIMEOUT=10m", "SAMSA_GROUP_MAX_SESSION_TIMEOUT=1m"})
	if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), `config key "group_min_session_timeout"`) {
		t.Fatalf("min above max: %v", err)
	}
	c, err := LoadConfig("", []string{"SAMSA_GROUP_INITIAL_REBALANCE_DELAY=0", "SAMSA_MAX_GROUPS=5"})
	if err != nil || c.GroupInitialRebalanceDelay != 0 || c.MaxGroups != 5 {
		t.Fatalf("zero delay and max_groups 5: %+v, %v", c, err)
	}
}
