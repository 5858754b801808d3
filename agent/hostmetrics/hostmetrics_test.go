package hostmetrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// TestSampleThisHost reads the real machine: CPUs, memory and the filesystem of a temporary
// directory are always there.
func TestSampleThisHost(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{Path: dir, NodeID: 3})
	s := c.Sample(context.Background())
	if s.CPU.Count < 1 || s.Memory.TotalBytes == 0 || s.Disk.SizeBytes == 0 || s.NodeID != 3 || s.Hostname == "" {
		t.Fatalf("sample: %+v", s)
	}
	if s.CPU.Seconds["idle"] <= 0 || s.CPU.BusyPercent < 0 || s.CPU.BusyPercent > 100 {
		t.Fatalf("cpu: %+v", s.CPU)
	}
	for _, e := range s.Errors {
		if !strings.HasPrefix(e, "temperatures") { // VMs often have no sensors
			t.Errorf("sample error: %s", e)
		}
	}
	var w strings.Builder
	c.WriteMetrics(context.Background(), &w)
	for _, want := range []string{"samsa_host_cpu_count ", `samsa_host_cpu_seconds_total{mode="idle"} `,
		"samsa_host_memory_total_bytes ", `samsa_host_filesystem_size_bytes{path="` + dir + `"} `, "# TYPE samsa_host_temperature_celsius gauge"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, w.String())
		}
	}
}

// TestTemperatureFromThermalZones points gopsutil at a sysfs tree laid out like a Raspberry
// Pi's without hwmon (HOST_SYS): the SoC temperature comes from the thermal zone.
func TestTemperatureFromThermalZones(t *testing.T) {
	sys := t.TempDir()
	zone := filepath.Join(sys, "class", "thermal", "thermal_zone0")
	if err := os.MkdirAll(zone, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"type": "cpu-thermal\n", "temp": "48312\n"} {
		if err := os.WriteFile(filepath.Join(zone, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOST_SYS", sys)
	c := New(Options{})
	s := c.Sample(context.Background())
	if len(s.Temperatures) != 1 || s.Temperatures[0] != (Temperature{Sensor: "cpu-thermal", Celsius: 48.312}) {
		t.Fatalf("temperatures %+v (errors %v)", s.Temperatures, s.Errors)
	}
	var w strings.Builder
	c.WriteMetrics(context.Background(), &w)
	if !strings.Contains(w.String(), `samsa_host_temperature_celsius{sensor="cpu-thermal"} 48.312`) {
		t.Fatalf("metrics:\n%s", w.String())
	}
}

func TestBusyPercent(t *testing.T) {
	c := New(Options{})
	s1 := c.Sample(context.Background())
	s2 := c.Sample(context.Background())
	for _, s := range []Sample{s1, s2} {
		if s.CPU.BusyPercent < 0 || s.CPU.BusyPercent > 100 {
			t.Fatalf("busy %f", s.CPU.BusyPercent)
		}
	}
}

// TestPublisherAppendsJSON runs a Publisher on a real commit log and decodes what it wrote.
func TestPublisherAppendsJSON(t *testing.T) {
	dir := t.TempDir()
	st, err := commitlog.Open(commitlog.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := New(Options{Path: dir, NodeID: 7})
	p, err := StartPublisher(c, PublisherOptions{Store: st, Interval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l := st.Topic(DefaultTopic).Partition(0)
	deadline := time.Now().Add(time.Minute) // failure bound only
	for l.HighWatermark() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("high watermark %d after a minute", l.HighWatermark())
		}
		time.Sleep(time.Millisecond)
	}
	p.Close()
	var w strings.Builder
	p.WriteMetrics(&w)
	if !strings.Contains(w.String(), "samsa_host_metrics_publish_errors_total 0") {
		t.Fatalf("metrics:\n%s", w.String())
	}

	res, err := l.Read(0, 1<<20, true, commitlog.ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	var data []byte
	for _, fr := range res.Ranges {
		buf := make([]byte, fr.Len)
		if _, err := fr.File.ReadAt(buf, fr.Pos); err != nil {
			t.Fatal(err)
		}
		data = append(data, buf...)
	}
	n := 0
	err = batch.Split(data, func(b []byte) error {
		return batch.Records(b, func(r *batch.Record) error {
			var s Sample
			if err := json.Unmarshal(r.Value, &s); err != nil {
				return err
			}
			if string(r.Key) != c.Hostname() || s.NodeID != 7 || s.Memory.TotalBytes == 0 || s.Disk.Path != dir ||
				r.Timestamp != s.Time.UnixMilli() {
				t.Errorf("record %d: key %q, sample %+v", r.Offset, r.Key, s)
			}
			n++
			return nil
		})
	})
	if err != nil || n < 3 {
		t.Fatalf("decoded %d records: %v", n, err)
	}

	// A restart finds the topic and keeps appending to it.
	p2, err := StartPublisher(c, PublisherOptions{Store: st, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
}
