package cloud

import (
	"errors"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-02-01T10:00:00Z":           time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC),
		"2026-02-01T10:00:00.25+01:00":   time.Date(2026, 2, 1, 9, 0, 0, 250e6, time.UTC),
		"2026-02-01":                     time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		"now":                            testNow,
		" 2h ":                           testNow.Add(-2 * time.Hour),
		"90m":                            testNow.Add(-90 * time.Minute),
		"7d":                             testNow.Add(-7 * 24 * time.Hour),
		"1w2d":                           testNow.Add(-9 * 24 * time.Hour),
		"1.5h":                           testNow.Add(-90 * time.Minute),
		"1h30m15s":                       testNow.Add(-(time.Hour + 30*time.Minute + 15*time.Second)),
		"500ms":                          testNow.Add(-500 * time.Millisecond),
		"3us":                            testNow.Add(-3 * time.Microsecond),
		"3µs":                            testNow.Add(-3 * time.Microsecond),
		"2026-02-01T10:00:00.123456789Z": time.Date(2026, 2, 1, 10, 0, 0, 123456789, time.UTC),
	} {
		got, err := ParseTime(in, testNow)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2h ago", "-2h", "2", "h", "2x", "2min", "1..5h", ".h", "0s", "300y",
		"99999999w", "2026-13-01", "2026-02-01T10:00:00", "1e3s"} {
		if got, err := ParseTime(in, testNow); !errors.Is(err, ErrBadTime) {
			t.Errorf("ParseTime(%q) = %v, %v; want ErrBadTime", in, got, err)
		}
	}
}

// FuzzParseTime: ParseTime never panics; what it accepts is an RFC 3339 time, a date, now or
// a positive duration before now (at most 200 years), and a relative input parses the same
// at another now, shifted.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2h", "7d", "1w2d3h4m5s6ms7us8ns", "1.5h", "now", "2026-03-01", "2026-03-01T12:00:00Z",
		"2026-03-01T12:00:00.123+05:30", "", "µs", "1µ", "9223372036854775807ns", "0.0000001ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, testNow)
		if err != nil {
			if !errors.Is(err, ErrBadTime) {
				t.Fatalf("error without ErrBadTime: %v", err)
			}
			return
		}
		if d, derr := ParseDuration(s); derr == nil {
			if d <= 0 || d > maxRelative || !got.Equal(testNow.Add(-d)) {
				t.Fatalf("%q: duration %v, time %v", s, d, got)
			}
			later, _ := ParseTime(s, testNow.Add(time.Hour))
			if !later.Equal(got.Add(time.Hour)) {
				t.Fatalf("%q: not relative to now", s)
			}
		}
	})
}
