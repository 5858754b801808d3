package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// Record sizes of the throughput tests (record value bytes; no key, no headers).
const (
	smallSize = 100
	largeSize = 1024
)

// system is one server under test, reached through its native client.
type system interface {
	// produce writes n records of size bytes to a fresh one-partition topic/stream called name
	// and waits for every acknowledgement.
	// The timed part runs between m.begin and m.end.
	produce(ctx context.Context, m *meter, name string, size, n int) (throughput, error)
	// consume reads the n records produce wrote to name, from the start.
	consume(ctx context.Context, m *meter, name string, size, n int) (throughput, error)
	// latency sends 100-byte records at a fixed rate and records send→ack per message.
	latency(ctx context.Context, m *meter, name string, p paceConfig) ([]time.Duration, error)
	// pid is the server process (0: none to measure).
	pid() int
	// version names the server build.
	version() string
	close() error
}

// throughput is one produce or consume run.
type throughput struct {
	Records    int     `json:"records"`
	Bytes      int64   `json:"payload_bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // 10^6 payload bytes per second
	CPU        cpuUse  `json:"cpu"`
}

// newThroughput ends m's window and computes the rates of n records of size bytes.
func newThroughput(m *meter, n int, size int) throughput {
	d := m.end()
	b := int64(n) * int64(size)
	s := d.Seconds()
	return throughput{Records: n, Bytes: b, Seconds: s, MsgsPerSec: float64(n) / s, MBPerSec: float64(b) / s / 1e6, CPU: m.use}
}

// meter times one test and takes the CPU used meanwhile.
type meter struct {
	pid   int
	start time.Time
	snap  benchkit.CPUSnapshot
	use   cpuUse
}

func (m *meter) begin() {
	m.snap = benchkit.TakeCPU(m.pid)
	m.start = time.Now()
}

func (m *meter) end() time.Duration {
	d := time.Since(m.start)
	m.use = cpuSince(m.snap, m.pid)
	return d
}

// serverResult is everything measured for one server.
type serverResult struct {
	Name    string `json:"name"`
	Label   string `json:"label"`
	Version string `json:"version"`
	Fsync   string `json:"fsync,omitempty"`

	Produce100 throughput `json:"produce_100b"`
	Produce1K  throughput `json:"produce_1kib"`
	Consume100 throughput `json:"consume_100b"`
	Consume1K  throughput `json:"consume_1kib"`
	// RawFetch100 is consume 100 B with bare Fetch requests and no record decoding (samsa only).
	RawFetch100 *throughput   `json:"raw_fetch_100b,omitempty"`
	Latency     latencyResult `json:"latency"`
	Group       *groupResult  `json:"group,omitempty"`  // consumer group tests (samsa only)
	Memory      *memory       `json:"memory,omitempty"` // nil when the server runs in-process
}

// memory is the server process's resident set, in MiB.
type memory struct {
	IdleRSS        float64 `json:"idle_rss_mib"`         // VmRSS before any load
	PeakRSSProduce float64 `json:"peak_rss_produce_mib"` // VmHWM after the produce and latency tests
	PeakRSS        float64 `json:"peak_rss_mib"`         // VmHWM at the end (consume included)
	PeakAnon       float64 `json:"peak_rss_anon_mib"`    // largest RssAnon seen by the 50 ms sampler
	PeakFile       float64 `json:"peak_rss_file_mib"`    // largest RssFile (mapped files, e.g. indexes)
}

// runServer starts one server, runs every test against it and stops it.
func runServer(ctx context.Context, name string, o options, work string, logf func(string, ...any)) (serverResult, error) {
	dir := filepath.Join(work, name)
	logf("%s: starting", name)
	var sys system
	var err error
	res := serverResult{Name: name}
	switch name {
	case srvSamsa, srvSamsaAlways, srvSamsaNever:
		res.Fsync = "interval"
		switch name {
		case srvSamsaAlways:
			res.Fsync = "always"
		case srvSamsaNever:
			res.Fsync = "never"
		}
		res.Label = "samsa fsync=" + res.Fsync
		sys, err = startSamsa(ctx, o, work, dir, res.Fsync, logf)
	case srvJetStream:
		res.Label = "nats-server JetStream"
		sys, err = startJetStream(ctx, o, dir, logf)
	}
	if err != nil {
		return res, err
	}
	defer func() {
		if err := sys.close(); err != nil {
			logf("%s: stop: %v", name, err)
		}
	}()
	res.Version = sys.version()
	if err := measure(ctx, sys, o, &res, logf); err != nil {
		return res, err
	}
	return res, nil
}

// measure runs the tests in order: idle RSS, produce 100 B, produce 1 KiB, latency, peak RSS
// under produce, consume 100 B, consume 1 KiB, peak RSS.
func measure(ctx context.Context, sys system, o options, res *serverResult, logf func(string, ...any)) error {
	var mem *memSampler
	if pid := sys.pid(); pid > 0 {
		sleep(ctx, o.idleWait)
		var err error
		if mem, err = startMemSampler(pid); err != nil {
			return err
		}
		defer mem.stop()
	}
	var err error
	step := func(what string, f func() error) {
		if err != nil {
			return
		}
		logf("%s: %s", res.Name, what)
		// Goroutines started inside (the clients') carry the label: go tool pprof -tagfocus.
		pprof.Do(ctx, pprof.Labels("test", what), func(context.Context) { err = f() })
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}
	m := func() *meter { return &meter{pid: sys.pid()} }
	step("produce 100 B", func() (e error) { res.Produce100, e = sys.produce(ctx, m(), "p100", smallSize, o.records); return })
	step("produce 1 KiB", func() (e error) { res.Produce1K, e = sys.produce(ctx, m(), "p1k", largeSize, o.records); return })
	step("latency", func() error {
		p := paceConfig{rate: o.latencyRate, warmup: o.latencyWarmup, duration: o.latencyDuration, size: smallSize}
		lm := m()
		lat, e := sys.latency(ctx, lm, "lat", p)
		res.Latency = summarize(p, lat)
		if o.latencyDump != "" && lat != nil {
			if err := dumpLatencies(o.latencyDump+"-"+res.Name+".tsv", p, lat); err != nil {
				return err
			}
		}
		res.Latency.CPU = lm.use
		return e
	})
	if err == nil && mem != nil {
		mem.markProduce()
	}
	step("consume 100 B", func() (e error) { res.Consume100, e = sys.consume(ctx, m(), "p100", smallSize, o.records); return })
	step("consume 1 KiB", func() (e error) { res.Consume1K, e = sys.consume(ctx, m(), "p1k", largeSize, o.records); return })
	if rf, ok := sys.(interface {
		rawConsume(context.Context, *meter, string, int, int) (throughput, error)
	}); ok {
		step("consume 100 B, raw Fetch", func() error {
			t, e := rf.rawConsume(ctx, m(), "p100", smallSize, o.records)
			res.RawFetch100 = &t
			return e
		})
	}
	if gb, ok := sys.(interface {
		groupBench(context.Context, func() *meter, int) (*groupResult, error)
	}); ok {
		step("consumer group", func() (e error) { res.Group, e = gb.groupBench(ctx, m, o.records); return })
	}
	if err == nil && mem != nil {
		res.Memory = mem.result()
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// payload returns size random (incompressible) bytes.
func payload(size int) []byte {
	b := make([]byte, size)
	rand.Read(b)
	return b
}
