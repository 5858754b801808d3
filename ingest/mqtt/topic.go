package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is MQTT's limit on a topic name or filter (a two-byte length prefix).
const maxTopicLen = 65535

// ValidateFilter checks an MQTT 3.1.1 topic filter (section 4.7): not empty, at most 65535
// bytes of UTF-8 without U+0000, '+' only as a whole level, '#' only as the whole last level.
// Shared subscriptions ($share/...) are refused: a bridge has one persistent session.
func ValidateFilter(f string) error {
	if err := checkTopicText(f); err != nil {
		return err
	}
	if strings.HasPrefix(f, "$share/") {
		return errors.New("shared subscriptions ($share/...) are not supported")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return fmt.Errorf("'#' must be a whole level and the last one (level %d is %q)", i+1, l)
		case strings.Contains(l, "+") && l != "+":
			return fmt.Errorf("'+' must be a whole level (level %d is %q)", i+1, l)
		}
	}
	return nil
}

// ValidateTopicName checks an MQTT topic name a message can be published to: not empty, at
// most 65535 bytes of UTF-8 without U+0000, no wildcard characters.
func ValidateTopicName(name string) error {
	if err := checkTopicText(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, "+#") {
		return errors.New("a topic name cannot contain the wildcards '+' or '#'")
	}
	return nil
}

func checkTopicText(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxTopicLen:
		return fmt.Errorf("%d bytes (at most %d)", len(s), maxTopicLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("contains U+0000")
	}
	return nil
}

// filterLevels describes a valid filter for template checks: how many levels it has and
// whether it ends with '#' (then messages may have more).
func filterLevels(f string) (n int, multi bool) {
	n = strings.Count(f, "/") + 1
	return n, strings.HasSuffix(f, "#")
}

// matchFilter reports whether the topic name matches the (valid) filter. As MQTT requires,
// a wildcard in the first level does not match a topic starting with '$'.
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true // also matches the parent level: "a/#" matches "a"
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			return frest == "#" // "a/#" matches "a"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}
