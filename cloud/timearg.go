package cloud

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadTime means a time argument is neither RFC 3339, a date, "now", nor a relative duration.
var ErrBadTime = errors.New("bad time")

// ParseTime parses a query time argument:
//
//   - RFC 3339, with or without fractional seconds: "2026-03-01T12:00:00Z",
//     "2026-03-01T12:00:00.250+01:00";
//   - a date, meaning its midnight UTC: "2026-03-01";
//   - "now";
//   - a relative duration, meaning now minus it: "2h", "90m", "7d", "1w2d", "1.5h", "500ms".
//     Units: ns, us (or µs), ms, s, m, h, d (24h), w (7d); several may follow each other.
//
// It never panics; anything else is an error wrapping ErrBadTime.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("%w: empty", ErrBadTime)
	case s == "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not RFC 3339 (2026-03-01T12:00:00Z), a date (2026-03-01) or a duration before now (2h, 7d): %v",
			ErrBadTime, s, err)
	}
	return now.Add(-d), nil
}

// relativeUnits are the units of a relative duration, longest names first so that "ms"
// is not read as "m" followed by "s".
var relativeUnits = []struct {
	name string
	d    time.Duration
}{
	{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"ms", time.Millisecond},
	{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour},
}

// maxRelative bounds a relative duration (time.Duration ends at about 292 years).
const maxRelative = 200 * 365 * 24 * time.Hour

// ParseDuration parses a positive duration as a sequence of <number><unit>, e.g. "2h",
// "1d12h" or "1.5h": time.ParseDuration's units plus d (24h) and w (7d). The number is a
// decimal with an optional fraction; the total must be positive and at most 200 years.
func ParseDuration(s string) (time.Duration, error) {
	var total float64
	orig := s
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("expected a number at %q", s)
		}
		num := s[:i]
		if strings.Count(num, ".") > 1 || num == "." {
			return 0, fmt.Errorf("bad number %q", num)
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("bad number %q", num)
		}
		s = s[i:]
		unit := time.Duration(0)
		for _, u := range relativeUnits {
			if strings.HasPrefix(s, u.name) && (len(s) == len(u.name) || !isUnitLetter(s[len(u.name)])) {
				unit, s = u.d, s[len(u.name):]
				break
			}
		}
		if unit == 0 {
			return 0, fmt.Errorf("missing or unknown unit after %q (ns, us, ms, s, m, h, d, w)", num)
		}
		total += v * float64(unit)
		if total > float64(maxRelative) {
			return 0, fmt.Errorf("%q is more than 200 years", orig)
		}
	}
	d := time.Duration(total)
	if d <= 0 || math.IsNaN(total) {
		return 0, fmt.Errorf("%q is not a positive duration", orig)
	}
	return d, nil
}

// isUnitLetter reports whether c continues a unit name (a letter or the first byte of µ).
func isUnitLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }
