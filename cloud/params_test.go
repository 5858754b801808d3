package cloud

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"
)

func TestParseQueryParams(t *testing.T) {
	o, err := ParseQueryParams(url.Values{"topic": {"t"}, "partition": {"0, 2"}, "from_offset": {"5"}, "to-offset": {"9"},
		"since": {"2h"}, "until": {"2026-03-01"}, "max-lateness": {"5m"}, "key-base64": {"AP8="}, "limit": {"7"},
		"format": {"csv"}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := QueryOptions{Topic: "t", Partitions: []int32{0, 2}, FromOffset: 5, ToOffset: 9, Since: testNow.Add(-2 * time.Hour),
		Until: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), MaxLateness: 5 * time.Minute, Key: []byte{0, 0xff}, Limit: 7}
	if fmt.Sprintf("%+v", o) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	o, err = ParseQueryParams(url.Values{"topic": {"t"}, "key": {""}}, testNow)
	if err != nil || o.Key == nil || len(o.Key) != 0 || o.ToOffset != NoEnd || o.Partitions != nil {
		t.Errorf("defaults and an empty key: %+v %v", o, err)
	}
	for name, v := range map[string]url.Values{
		"no topic":     {},
		"partition":    {"topic": {"t"}, "partition": {"x"}},
		"offset":       {"topic": {"t"}, "from-offset": {"-1"}},
		"since":        {"topic": {"t"}, "since": {"soon"}},
		"lateness":     {"topic": {"t"}, "max-lateness": {"0"}},
		"both keys":    {"topic": {"t"}, "key": {"a"}, "key-base64": {"YQ=="}},
		"bad base64":   {"topic": {"t"}, "key-base64": {"!"}},
		"limit":        {"topic": {"t"}, "limit": {"-3"}},
		"limit syntax": {"topic": {"t"}, "limit": {"ten"}},
	} {
		if _, err := ParseQueryParams(v, testNow); !errors.Is(err, ErrBadConfig) && !errors.Is(err, ErrBadTime) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
