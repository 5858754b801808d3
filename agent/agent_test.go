package agent_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthAndMetrics(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	if code, body := httpGet(t, "http://"+a.HTTPAddr()+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.DefaultProduceTopic("m"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, "http://"+a.HTTPAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		"samsa_up 1",
		`samsa_partition_log_end_offset{topic="m",partition="0"} 1`,
		`samsa_partition_high_watermark{topic="m",partition="0"} 1`,
		"samsa_log_append_records_total 1",
		"# TYPE samsa_process_resident_memory_bytes gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + a.HTTPAddr() + "/healthz"); err == nil {
		t.Fatal("http endpoint still up after shutdown")
	}
}

// TestTopicConfigsSurviveRestart alters configs with kadm and reads them back with
// DescribeConfigs after an agent restart.
func TestTopicConfigsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir, nil)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	retention := "3600000"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, "cfg"); err != nil {
		t.Fatal(err)
	}
	seg, policy := "1048576", "compact"
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: "segment.bytes", Value: &seg},
		{Name: "cleanup.policy", Value: &policy},
	}, "cfg")
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter: %v %v", err, resp)
	}
	bad := "-7"
	resp, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: &bad}}, "cfg")
	if err == nil && resp[0].Err == nil {
		t.Fatal("invalid segment.bytes accepted")
	}
	cl.Close()
	a.Shutdown(ctx)

	a = startAgent(t, dir, nil)
	cl, err = kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("cfg", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	for k, want := range map[string]string{"retention.ms": retention, "segment.bytes": seg, "cleanup.policy": policy} {
		c := got[k]
		if c.Value == nil || *c.Value != want || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
			t.Errorf("%s after restart: %+v, want %s from DYNAMIC_TOPIC_CONFIG", k, c, want)
		}
	}
	if c := got["max.message.bytes"]; c.Value == nil || *c.Value != "1048588" || c.Source.String() != "DEFAULT_CONFIG" {
		t.Errorf("max.message.bytes: %+v", c)
	}
}

// TestBadConfigExitsNonZero runs the binary with invalid settings and checks the message names
// the key, the value and what is allowed.
func TestBadConfigExitsNonZero(t *testing.T) {
	bin := samsaBinary(t)
	cfgFile := filepath.Join(t.TempDir(), "samsa.yaml")
	cases := []struct {
		name   string
		args   []string
		env    []string
		file   string
		expect []string
	}{
		{"unknown file key", []string{"--config", cfgFile}, nil, "data_dir: /tmp/x\nfsyncc: always\n", []string{`"fsyncc"`}},
		{"bad file value", []string{"--config", cfgFile}, nil, "fsync: sometimes\n", []string{`"fsync"`, `"sometimes"`, "always, interval, never"}},
		{"bad env value", nil, []string{"SAMSA_FSYNC=often"}, "", []string{"SAMSA_FSYNC", `"often"`, "always"}},
		{"unknown env key", nil, []string{"SAMSA_DATADIR=/tmp/x"}, "", []string{"SAMSA_DATADIR"}},
		{"bad topic default", nil, []string{"SAMSA_TOPIC_DEFAULTS=segment.bytes=12"}, "", []string{"segment.bytes", `"12"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.file != "" {
				os.WriteFile(cfgFile, []byte(c.file), 0o644)
			}
			args := append([]string{"agent", "--data-dir", t.TempDir(), "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, c.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("agent started with bad config; output:\n%s", out)
			}
			for _, want := range c.expect {
				if !strings.Contains(string(out), want) {
					t.Errorf("message lacks %s:\n%s", want, out)
				}
			}
		})
	}
}

var _ = agent.DefaultConfig
