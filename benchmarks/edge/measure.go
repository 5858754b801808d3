package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// result is every number of a run.
type result struct {
	Date       time.Time          `json:"date"`
	Profile    string             `json:"profile"`
	Binary     string             `json:"binary"`
	Go         string             `json:"go"`
	CPUs       int                `json:"cpus"`
	RateTarget int64              `json:"rate_target_bytes_per_s"`
	RecordSize int                `json:"record_size"`
	Duration   string             `json:"duration"`
	IdleWait   string             `json:"idle_wait"`
	StartupRSS int64              `json:"startup_rss_bytes"`   // VmRSS right after "ready"
	IdleRSS    int64              `json:"idle_rss_bytes"`      // VmRSS after idle-wait, no client
	IdleAnon   int64              `json:"idle_rss_anon_bytes"` // its anonymous part
	IdleFile   int64              `json:"idle_rss_file_bytes"` // its file-backed part
	PeakHWM    int64              `json:"peak_rss_hwm_bytes"`  // VmHWM when the load ended
	PeakRSS    int64              `json:"peak_rss_sampled_bytes"`
	PeakAnon   int64              `json:"peak_rss_anon_bytes"`
	PeakFile   int64              `json:"peak_rss_file_bytes"`
	Samples    int64              `json:"samples"`
	AfterRSS   int64              `json:"after_load_idle_rss_bytes"`
	Load       loadResult         `json:"load"`
	Metrics    map[string]float64 `json:"agent_metrics"`
	CleanStop  bool               `json:"clean_stop"`
	StopError  string             `json:"stop_error,omitempty"`
	Sizes      []binarySize       `json:"binary_sizes"`
	SizesNote  string             `json:"binary_sizes_note,omitempty"`
}

// reportedMetrics are the agent's /metrics samples kept in the result.
var reportedMetrics = []string{
	"samsa_memory_budget_bytes", "samsa_memory_go_limit_bytes", "samsa_memory_used_bytes",
	"samsa_memory_throttle_threshold_bytes", "samsa_memory_throttles_total",
	"samsa_kafka_throttled_responses_total", "samsa_kafka_muted_seconds_total",
	"samsa_kafka_request_budget_waits_total", "samsa_go_goroutines",
}

// measure runs one agent through idle, load and idle again.
func measure(ctx context.Context, o options, bin, work string, logf func(string, ...any)) (*result, error) {
	res := &result{Date: time.Now().UTC(), Profile: filepath.Base(o.profile), Binary: bin, Go: runtime.Version(),
		CPUs: runtime.NumCPU(), RateTarget: o.rate, RecordSize: o.recordSize, Duration: o.duration.String(),
		IdleWait: o.idleWait.String()}
	dir := filepath.Join(work, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf("starting the agent with %s", res.Profile)
	p, err := startAgent(ctx, bin, o.profile, dir)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()
	st, err := benchkit.ReadProcMemory(p.PID())
	if err != nil {
		return nil, err
	}
	res.StartupRSS = st.RSS

	logf("idle for %s", o.idleWait)
	if err := sleep(ctx, o.idleWait); err != nil {
		return nil, err
	}
	if st, err = benchkit.ReadProcMemory(p.PID()); err != nil {
		return nil, err
	}
	res.IdleRSS, res.IdleAnon, res.IdleFile = st.RSS, st.Anon, st.File

	logf("producing %.1f MB/s of %d B records for %s", float64(o.rate)/1e6, o.recordSize, o.duration)
	s := benchkit.StartMemSampler(p.PID(), 50*time.Millisecond)
	res.Load, err = produceAtRate(ctx, p.KafkaAddr, o.rate, o.recordSize, o.duration)
	if st, herr := benchkit.ReadProcMemory(p.PID()); herr == nil {
		res.PeakHWM = st.HWM
	}
	peaks := s.Stop()
	res.PeakRSS, res.PeakAnon, res.PeakFile, res.Samples = peaks.RSS, peaks.Anon, peaks.File, peaks.Samples
	if err != nil {
		return nil, fmt.Errorf("load: %w\n%s", err, p.Log)
	}
	if peaks.Err != nil {
		return nil, fmt.Errorf("memory sampler: %w", peaks.Err)
	}
	if m, err := agentMetrics(p); err == nil {
		res.Metrics = map[string]float64{}
		for _, k := range reportedMetrics {
			if v, ok := m[k]; ok {
				res.Metrics[k] = v
			}
		}
	}

	logf("idle again for %s", o.idleWait)
	if err := sleep(ctx, o.idleWait); err != nil {
		return nil, err
	}
	if st, err = benchkit.ReadProcMemory(p.PID()); err != nil {
		return nil, err
	}
	res.AfterRSS = st.RSS
	stopped = true
	if err := p.Stop(); err != nil {
		res.StopError = err.Error()
	} else {
		res.CleanStop = true
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
