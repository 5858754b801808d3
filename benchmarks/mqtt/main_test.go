package main

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testmosquitto"
)

// TestSmoke runs the whole program on 2,000 messages per measurement against a real Mosquitto
// and an in-process agent, and checks that every message arrived everywhere (the subscriber's
// count, the records in the log, the bridge's acknowledgements) and that the table and the JSON
// are complete. It asserts nothing about speed.
func TestSmoke(t *testing.T) {
	testmosquitto.Binary(t) // skips without mosquitto (fails when CI is set)
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	out := benchkit.RunSmoke(t, 3*time.Minute, run, "-messages", "2000", "-publishers", "3", "-topics", "10", "-rounds", "1",
		"-dir", t.TempDir(), "-json", jsonPath)
	benchkit.CheckOutput(t, out,
		"## MQTT bridge ingest (median of 1 round)",
		"| QoS | ceiling msgs/s (paho subscriber) | samsa msgs/s (bridge → log) | samsa ÷ ceiling | target | met? |",
		"| 0 | ", "| 1 | ", "Targets met: ", "| 1 | 0 | ", "| 1 | 1 | ",
	)
	var r report
	benchkit.ReadJSON(t, jsonPath, &r)
	for q, x := range r.Results {
		if x.QoS != q || len(x.Ceiling) != 1 || len(x.Samsa) != 1 {
			t.Fatalf("QoS %d: %+v", q, x)
		}
		if c := x.Ceiling[0]; c.Messages != 2000 || !(c.MsgsPerS > 0) {
			t.Errorf("QoS %d ceiling: %+v, want 2000 messages", q, c)
		}
		if s := x.Samsa[0]; s.Messages != 2000 || s.Acked != 2000 || !(s.MsgsPerS > 0) {
			t.Errorf("QoS %d samsa: %+v, want 2000 records and 2000 acknowledged", q, s)
		}
		if !(x.Ratio > 0) || x.Target != targets[q] {
			t.Errorf("QoS %d summary: %+v", q, x)
		}
	}
	if r.Meta.NProc == 0 || r.Meta.Command == "" || r.Options["messages"] != float64(2000) {
		t.Errorf("meta/options incomplete: %+v %+v", r.Meta, r.Options)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-messages", "5000", "-fsync", "always", "-rounds", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.messages != 5000 || o.fsync != "always" || o.rounds != 2 || o.payload != 100 || o.publishers != 8 || o.topics != 100 {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"-messages", "0"}, {"-fsync", "sometimes"}, {"-publishers", "-1"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
