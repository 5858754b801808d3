package mqtt

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// A template is text with placeholders in braces, rendered once per message or record:
//
//	ingest (subscribe rules: topic, key):  {mqtt_topic}  the message's MQTT topic
//	                                        {1}, {2}, ... one level of it, counted from 1
//	egress (publish rules: mqtt_topic):     {key}        the record's key (UTF-8)
//	                                        {topic}, {partition}, {offset} of the record
//
// "{{" and "}}" stand for literal braces. A level past the end of a message's topic renders
// as "" (possible only below a '#' filter; the config check refuses levels a filter without
// '#' cannot have).
type template struct {
	src   string
	parts []tmplPart
}

// variable is what a placeholder stands for.
type variable uint8

const (
	varNone      variable = iota // a literal part
	varMQTTTopic                 // {mqtt_topic}
	varLevel                     // {N}
	varKey                       // {key}
	varTopic                     // {topic}
	varPartition                 // {partition}
	varOffset                    // {offset}
)

type tmplPart struct {
	lit   string
	v     variable
	level int // 1-based, for varLevel
}

// Placeholders allowed in each kind of template.
var (
	ingestVars = map[string]variable{"mqtt_topic": varMQTTTopic}
	egressVars = map[string]variable{"key": varKey, "topic": varTopic, "partition": varPartition, "offset": varOffset}
)

// maxLevel bounds {N}: an MQTT topic of 65535 bytes has at most 32768 levels.
const maxLevel = 32768

// parseTemplate parses s. vars are the named placeholders allowed; levels allows {N}.
func parseTemplate(s string, vars map[string]variable, levels bool) (template, error) {
	t := template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '}':
			return template{}, fmt.Errorf("unmatched '}' at byte %d (write }} for a literal brace)", i)
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return template{}, fmt.Errorf("unclosed '{' at byte %d (write {{ for a literal brace)", i)
			}
			name := s[i+1 : i+1+end]
			p, err := placeholder(name, vars, levels)
			if err != nil {
				return template{}, err
			}
			flush()
			t.parts = append(t.parts, p)
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

// placeholder resolves the name inside braces.
func placeholder(name string, vars map[string]variable, levels bool) (tmplPart, error) {
	if v, ok := vars[name]; ok {
		return tmplPart{v: v}, nil
	}
	if levels && name != "" && name[0] >= '1' && name[0] <= '9' {
		if n, err := strconv.Atoi(name); err == nil && n <= maxLevel {
			return tmplPart{v: varLevel, level: n}, nil
		}
	}
	allowed := make([]string, 0, len(vars)+1)
	for k := range vars {
		allowed = append(allowed, "{"+k+"}")
	}
	slices.Sort(allowed)
	if levels {
		allowed = append(allowed, "{1}, {2}, ... (topic levels)")
	}
	return tmplPart{}, fmt.Errorf("unknown placeholder {%s} (allowed: %s)", name, strings.Join(allowed, ", "))
}

// constant reports whether the template has no placeholder, and its text.
func (t *template) constant() (string, bool) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.v != varNone {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// uses reports whether the template has a placeholder for v.
func (t *template) uses(v variable) bool {
	return slices.ContainsFunc(t.parts, func(p tmplPart) bool { return p.v == v })
}

// renderEnv holds what placeholders render to.
type renderEnv struct {
	mqttTopic string
	key       []byte
	topic     string
	partition int32
	offset    int64
}

// render appends the template rendered with env to dst.
func (t *template) render(dst []byte, env *renderEnv) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.v {
		case varNone:
			dst = append(dst, p.lit...)
		case varMQTTTopic:
			dst = append(dst, env.mqttTopic...)
		case varLevel:
			dst = append(dst, topicLevel(env.mqttTopic, p.level)...)
		case varKey:
			dst = append(dst, env.key...)
		case varTopic:
			dst = append(dst, env.topic...)
		case varPartition:
			dst = strconv.AppendInt(dst, int64(env.partition), 10)
		case varOffset:
			dst = strconv.AppendInt(dst, env.offset, 10)
		}
	}
	return dst
}

// topicLevel returns level n (1-based) of an MQTT topic, or "" past its end.
func topicLevel(topic string, n int) string {
	for i := 1; ; i++ {
		l, rest, more := strings.Cut(topic, "/")
		if i == n {
			return l
		}
		if !more {
			return ""
		}
		topic = rest
	}
}

// Checks of templates against the rule they belong to.

// checkLevels refuses {N} past the levels a filter without '#' can match.
func (t *template) checkLevels(filter string) error {
	n, multi := filterLevels(filter)
	for _, p := range t.parts {
		if p.v == varLevel && p.level > n && !multi {
			return fmt.Errorf("{%d}: the filter %q has only %d level(s)", p.level, filter, n)
		}
	}
	return nil
}

// kafkaTopicChars are the characters of a Kafka topic name.
func kafkaTopicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// checkKafkaTopic checks a subscribe rule's topic template: its literal text must be allowed
// in Kafka topic names, a constant must be a valid name, and {mqtt_topic} is allowed only
// when every matching MQTT topic has one level (Kafka names have no '/').
func (t *template) checkKafkaTopic(filter string) error {
	if lit, ok := t.constant(); ok {
		return commitlog.ValidateTopicName(lit)
	}
	for _, p := range t.parts {
		for i := 0; i < len(p.lit); i++ {
			if !kafkaTopicChar(p.lit[i]) {
				return fmt.Errorf("%q is not allowed in a topic name (allowed: a-z, A-Z, 0-9, '.', '_', '-')", p.lit[i])
			}
		}
	}
	if n, multi := filterLevels(filter); t.uses(varMQTTTopic) && (n > 1 || multi) {
		return fmt.Errorf("{mqtt_topic} holds '/' for the filter %q, and topic names cannot; use levels such as {%d}", filter, n)
	}
	return nil
}

// checkMQTTTopic checks a publish rule's mqtt_topic template: no wildcards or U+0000 in its
// text, valid UTF-8, and a constant must be a valid topic name.
func (t *template) checkMQTTTopic() error {
	if lit, ok := t.constant(); ok {
		return ValidateTopicName(lit)
	}
	for _, p := range t.parts {
		if strings.ContainsAny(p.lit, "+#\x00") || !utf8.ValidString(p.lit) {
			return errors.New("the text must be UTF-8 without '+', '#' or U+0000")
		}
	}
	return nil
}
