package mqtt

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBridgeValidateFilter(t *testing.T) {
	for f, want := range map[string]string{
		"sensors/+/temp": "",
		"#":              "",
		"+":              "",
		"a/#":            "",
		"/":              "",
		"+/+/#":          "",
		"$SYS/#":         "",
		"":               "empty",
		"a/#/b":          "'#' must be a whole level and the last one",
		"a#":             "'#' must be a whole level",
		"a/b+":           "'+' must be a whole level",
		"a\x00b":         "U+0000",
		"\xff":           "UTF-8",
		"$share/g/a/b":   "shared subscriptions",
	} {
		err := ValidateFilter(f)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("ValidateFilter(%q) = %v, want %q", f, err, want)
		}
	}
	if err := ValidateFilter(strings.Repeat("a", maxTopicLen+1)); err == nil {
		t.Error("a 65536-byte filter was accepted")
	}
}

func TestBridgeMatchFilter(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"sensors/+/temp", "sensors/a1/temp", true},
		{"sensors/+/temp", "sensors/a1/hum", false},
		{"sensors/+/temp", "sensors/a1/temp/x", false},
		{"sensors/+/temp", "sensors//temp", true},
		{"sensors/#", "sensors", true},
		{"sensors/#", "sensors/a/b/c", true},
		{"sensors/#", "sensorsx/a", false},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/", true},
		{"a/b", "a/b", true},
		{"a/b", "a", false},
		{"a", "a/b", false},
	} {
		if got := matchFilter(c.filter, c.topic); got != c.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

// FuzzBridgeFilter: validation and matching never panic; a valid topic name is a valid filter that
// matches itself; '#' matches every topic not starting with '$'; a filter matches a topic
// only if their level counts allow it.
func FuzzBridgeFilter(f *testing.F) {
	for _, s := range [][2]string{{"sensors/+/temp", "sensors/a/temp"}, {"#", "a"}, {"a/#", "a"}, {"+/+", "/"}, {"$SYS/#", "$SYS/x"}, {"a/#/b", "a/x/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		ferr := ValidateFilter(filter)
		terr := ValidateTopicName(topic)
		if terr == nil && !strings.HasPrefix(topic, "$share/") {
			if err := ValidateFilter(topic); err != nil {
				t.Fatalf("topic name %q is not a valid filter: %v", topic, err)
			}
			if !matchFilter(topic, topic) {
				t.Fatalf("%q does not match itself", topic)
			}
			if got := matchFilter("#", topic); got == strings.HasPrefix(topic, "$") {
				t.Fatalf("matchFilter(#, %q) = %v", topic, got)
			}
		}
		if ferr != nil || terr != nil {
			return
		}
		if matchFilter(filter, topic) {
			fl, tl := strings.Count(filter, "/")+1, strings.Count(topic, "/")+1
			if strings.HasSuffix(filter, "#") {
				if tl < fl-1 {
					t.Fatalf("%q matched %q with too few levels", filter, topic)
				}
			} else if fl != tl {
				t.Fatalf("%q matched %q with %d levels, filter has %d", filter, topic, tl, fl)
			}
		}
	})
}

// TestPartitionForMatchesKafka: keyed records land where franz-go's (Kafka's) default
// partitioner puts them.
func TestBridgePartitionForMatchesKafka(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil)
	for _, n := range []int{1, 2, 3, 7, 16, 100} {
		tp := p.ForTopic("t")
		for i := range 500 {
			key := []byte(strings.Repeat("k", i%9) + "sensors/dev-" + string(rune('a'+i%26)) + "/temp")
			want := tp.Partition(&kgo.Record{Key: key}, n)
			if got := partitionFor(key, int32(n)); int(got) != want {
				t.Fatalf("partitionFor(%q, %d) = %d, kgo says %d", key, n, got, want)
			}
		}
	}
}
