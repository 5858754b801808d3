package mqtt

import (
	"strings"
	"testing"
)

func TestBridgeTemplateRender(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		env  renderEnv
		want string
	}{
		{"{mqtt_topic}", renderEnv{mqttTopic: "sensors/a1/temp"}, "sensors/a1/temp"},
		{"plant-{2}", renderEnv{mqttTopic: "sensors/a1/temp"}, "plant-a1"},
		{"{1}.{3}", renderEnv{mqttTopic: "sensors/a1/temp"}, "sensors.temp"},
		{"x{4}y", renderEnv{mqttTopic: "sensors/a1/temp"}, "xy"}, // past the end: ""
		{"{1}", renderEnv{mqttTopic: "/lead"}, ""},               // an empty first level
		{"{2}", renderEnv{mqttTopic: "/lead"}, "lead"},
		{"{{literal}}", renderEnv{}, "{literal}"},
		{"a{{{1}}}b", renderEnv{mqttTopic: "x/y"}, "a{x}b"},
		{"devices/{key}/cmd", renderEnv{key: []byte("dev-7")}, "devices/dev-7/cmd"},
		{"{topic}/{partition}/{offset}", renderEnv{topic: "commands", partition: 3, offset: 42}, "commands/3/42"},
		{"static", renderEnv{}, "static"},
		{"", renderEnv{}, ""},
	} {
		vars, levels := ingestVars, true
		if strings.Contains(c.tmpl, "key") || strings.Contains(c.tmpl, "topic}/") {
			vars, levels = egressVars, false
		}
		tp, err := parseTemplate(c.tmpl, vars, levels)
		if err != nil {
			t.Errorf("parse %q: %v", c.tmpl, err)
			continue
		}
		if got := string(tp.render(nil, &c.env)); got != c.want {
			t.Errorf("render %q with %+v = %q, want %q", c.tmpl, c.env, got, c.want)
		}
	}
}

func TestBridgeTemplateErrors(t *testing.T) {
	for _, c := range []struct {
		tmpl   string
		levels bool
		want   string
	}{
		{"{nope}", true, "unknown placeholder {nope} (allowed: {mqtt_topic}, {1}, {2}, ... (topic levels))"},
		{"{key}", true, "unknown placeholder {key}"},
		{"{1}", false, "unknown placeholder {1} (allowed: {key}, {offset}, {partition}, {topic})"},
		{"{0}", true, "unknown placeholder {0}"},
		{"{01}", true, "unknown placeholder {01}"},
		{"{99999}", true, "unknown placeholder {99999}"},
		{"{}", true, "unknown placeholder {}"},
		{"a{1", true, "unclosed '{' at byte 1"},
		{"a}b", true, "unmatched '}' at byte 1"},
	} {
		vars := ingestVars
		if !c.levels {
			vars = egressVars
		}
		_, err := parseTemplate(c.tmpl, vars, c.levels)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %q: %v, want an error containing %q", c.tmpl, err, c.want)
		}
	}
}

func TestBridgeTemplateChecks(t *testing.T) {
	check := func(tmpl, filter string, kafka bool) error {
		tp, err := parseTemplate(tmpl, ingestVars, true)
		if err != nil {
			return err
		}
		if err := tp.checkLevels(filter); err != nil {
			return err
		}
		if kafka {
			return tp.checkKafkaTopic(filter)
		}
		return nil
	}
	for _, c := range []struct {
		tmpl, filter string
		kafka        bool
		want         string // "" = valid
	}{
		{"plant-{2}", "sensors/+/temp", true, ""},
		{"plant-{3}", "sensors/+/temp", true, ""},
		{"plant-{4}", "sensors/+/temp", true, `{4}: the filter "sensors/+/temp" has only 3 level(s)`},
		{"plant-{9}", "sensors/#", true, ""}, // '#' can match any depth
		{"{mqtt_topic}", "sensors/+/temp", true, "{mqtt_topic} holds '/'"},
		{"{mqtt_topic}", "sensors/+/temp", false, ""}, // fine as a key
		{"{mqtt_topic}", "+", true, ""},
		{"{mqtt_topic}", "#", true, "{mqtt_topic} holds '/'"},
		{"plant/{2}", "sensors/+/temp", true, `'/' is not allowed in a topic name`},
		{"bad topic", "a", true, "invalid topic name"},
		{"telemetry", "a/b", true, ""},
	} {
		err := check(c.tmpl, c.filter, c.kafka)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q for %q: %v", c.tmpl, c.filter, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q for %q: %v, want an error containing %q", c.tmpl, c.filter, err, c.want)
		}
	}
	for tmpl, want := range map[string]string{
		"devices/{key}/cmd": "",
		"devices/#/{key}":   "without '+', '#'",
		"devices/+":         "wildcards",
		"":                  "empty",
	} {
		tp, err := parseTemplate(tmpl, egressVars, false)
		if err == nil {
			err = tp.checkMQTTTopic()
		}
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("mqtt_topic %q: %v, want %q", tmpl, err, want)
		}
	}
}

// FuzzBridgeTemplate: parsing never panics; a parsed template renders without panicking, a template
// without braces renders as itself, and escaping braces round-trips literal text.
func FuzzBridgeTemplate(f *testing.F) {
	for _, s := range []string{"{mqtt_topic}", "plant-{2}", "{{x}}", "a{1}b{2}c", "{key}", "devices/{key}/cmd", "{", "}", "{{{1}}}", "{99999}"} {
		f.Add(s, "sensors/a1/temp", []byte("k"))
	}
	f.Fuzz(func(t *testing.T, s, topic string, key []byte) {
		env := renderEnv{mqttTopic: topic, key: key, topic: "t", partition: 1, offset: 2}
		for _, vars := range []map[string]variable{ingestVars, egressVars} {
			tp, err := parseTemplate(s, vars, true)
			if err != nil {
				continue
			}
			out := tp.render(nil, &env)
			if !strings.ContainsAny(s, "{}") && string(out) != s {
				t.Fatalf("%q rendered as %q", s, out)
			}
			_ = tp.checkLevels(topic)
			_ = tp.checkKafkaTopic(topic)
			_ = tp.checkMQTTTopic()
		}
		escaped := strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
		tp, err := parseTemplate(escaped, egressVars, false)
		if err != nil {
			t.Fatalf("escaped %q: %v", escaped, err)
		}
		if lit, ok := tp.constant(); !ok || lit != s {
			t.Fatalf("escaped %q parsed as %q, %v", escaped, lit, ok)
		}
		if got := topicLevel(topic, 1); !strings.HasPrefix(topic, got) || strings.Contains(got, "/") {
			t.Fatalf("level 1 of %q = %q", topic, got)
		}
	})
}
