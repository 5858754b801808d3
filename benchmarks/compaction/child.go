package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// childEnv, set to 1, makes the program the cleaner child instead of the benchmark.
const childEnv = "SAMSA_COMPACTION_CHILD"

// cleanerResult is what the child measured around Store.RunCleaner.
type cleanerResult struct {
	OpenSeconds    float64 `json:"open_seconds"`     // commitlog.Open of the store
	Seconds        float64 `json:"seconds"`          // RunCleaner wall time
	UserCPUSeconds float64 `json:"user_cpu_seconds"` // of the whole child during RunCleaner
	SysCPUSeconds  float64 `json:"sys_cpu_seconds"`
	MBPerSec       float64 `json:"mb_per_sec"` // sealed bytes before ÷ Seconds (set by the parent)

	// samsa_cleaner_* counters after the run.
	Passes            int64 `json:"passes"`
	Errors            int64 `json:"errors"`
	ReadBytes         int64 `json:"read_bytes"`
	WrittenBytes      int64 `json:"written_bytes"`
	RemovedRecords    int64 `json:"removed_records"`
	SegmentsRewritten int64 `json:"segments_rewritten"`

	// Memory of the child process, MiB.
	KeyMapMiB     float64 `json:"key_map_mib"`        // -buffer: the key map's fixed budget
	RSSAfterOpen  float64 `json:"rss_after_open_mib"` // VmRSS after Open, before RunCleaner
	PeakRSS       float64 `json:"peak_rss_mib"`       // VmHWM at the end: the kernel's peak RSS
	RusageMaxRSS  float64 `json:"rusage_maxrss_mib"`  // the parent's view (getrusage of the child)
	PeakAnon      float64 `json:"peak_rss_anon_mib"`  // largest RssAnon seen by the sampler
	PeakFile      float64 `json:"peak_rss_file_mib"`  // largest RssFile (binary, mmapped indexes)
	PeakHeap      float64 `json:"peak_heap_mib"`      // largest Go heap (objects, live or not yet swept)
	PeakHeapGoal  float64 `json:"peak_heap_goal_mib"` // largest GC heap goal
	RuntimeTotal  float64 `json:"runtime_total_mib"`  // memory the Go runtime has mapped, at the end
	TotalAllocMiB float64 `json:"total_alloc_mib"`    // bytes allocated during RunCleaner
	Mallocs       uint64  `json:"mallocs"`            // allocations during RunCleaner
	NumGC         uint32  `json:"num_gc"`             // GC cycles during RunCleaner
	GOGC          string  `json:"gogc,omitempty"`
	GOMEMLIMIT    string  `json:"gomemlimit,omitempty"`
	CleanerLog    string  `json:"cleaner_log,omitempty"` // the cleaner's "compacted" and "key map full" log lines
}

// childMain is the cleaner child: open the store in -dir, run the cleaner once, print a
// cleanerResult as JSON on stdout.
func childMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compaction-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory")
	buffer := fs.Int64("buffer", 0, "CleanerBufferBytes")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile of RunCleaner")
	memProfile := fs.String("memprofile", "", "heap profile after RunCleaner")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(stderr, &logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	res := cleanerResult{KeyMapMiB: float64(*buffer) / (1 << 20), GOGC: os.Getenv("GOGC"), GOMEMLIMIT: os.Getenv("GOMEMLIMIT")}
	smp := startSampler(10 * time.Millisecond)
	t0 := time.Now()
	st, err := commitlog.Open(commitlog.Options{
		Dir: *dir, CleanerBufferBytes: *buffer, Logger: logger,
		// Only RunCleaner compacts; the background cleaner and retention stay asleep.
		CleanerBackoff: 24 * time.Hour, RetentionCheckInterval: 24 * time.Hour,
	})
	if err != nil {
		smp.stop()
		return err
	}
	res.OpenSeconds = time.Since(t0).Seconds()
	if m, err := benchkit.ReadProcMemory(os.Getpid()); err == nil {
		res.RSSAfterOpen = benchkit.MiB(m.RSS)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	ru0 := rusage()
	stopProfile := func() {}
	if *cpuProfile != "" {
		if stopProfile, err = startCPUProfile(*cpuProfile); err != nil {
			st.Close()
			smp.stop()
			return err
		}
	}
	start := time.Now()
	cleanErr := st.RunCleaner()
	res.Seconds = time.Since(start).Seconds()
	stopProfile()
	ru1 := rusage()
	runtime.ReadMemStats(&ms1)
	smp.stop()
	res.UserCPUSeconds = tvSeconds(ru1.Utime) - tvSeconds(ru0.Utime)
	res.SysCPUSeconds = tvSeconds(ru1.Stime) - tvSeconds(ru0.Stime)
	res.PeakAnon, res.PeakFile, res.PeakHeap, res.PeakHeapGoal = benchkit.MiB(smp.anon), benchkit.MiB(smp.file), float64(smp.heap)/(1<<20), float64(smp.goal)/(1<<20)
	res.RuntimeTotal = float64(ms1.Sys) / (1 << 20)
	res.TotalAllocMiB = float64(ms1.TotalAlloc-ms0.TotalAlloc) / (1 << 20)
	res.Mallocs = ms1.Mallocs - ms0.Mallocs
	res.NumGC = ms1.NumGC - ms0.NumGC
	if m, err := benchkit.ReadProcMemory(os.Getpid()); err == nil {
		res.PeakRSS = benchkit.MiB(m.HWM)
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			fmt.Fprintln(stderr, "compaction child: memprofile:", err)
		}
	}
	res.addCounters(st)
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "msg=compacted") || strings.Contains(line, "key map full") {
			res.CleanerLog += line + "\n"
		}
	}
	closeErr := st.Close()
	if err := errors.Join(cleanErr, closeErr); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// addCounters copies the samsa_cleaner_* counters of the store's metrics.
func (res *cleanerResult) addCounters(st *commitlog.Store) {
	var m bytes.Buffer
	st.WriteMetrics(&m)
	c := parseMetrics(m.String())
	res.Passes, res.Errors = c["samsa_cleaner_passes_total"], c["samsa_cleaner_errors_total"]
	res.ReadBytes, res.WrittenBytes = c["samsa_cleaner_read_bytes_total"], c["samsa_cleaner_written_bytes_total"]
	res.RemovedRecords = c["samsa_cleaner_removed_records_total"]
	res.SegmentsRewritten = c["samsa_cleaner_rewritten_segments_total"]
}

// runChild runs the cleaner child on dataDir and returns what it measured.
func runChild(ctx context.Context, o options, dataDir string, stderr io.Writer) (cleanerResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return cleanerResult{}, err
	}
	args := []string{"-dir", dataDir, "-buffer", strconv.FormatInt(o.buffer, 10)}
	if o.cpuProfile != "" {
		args = append(args, "-cpuprofile", o.cpuProfile)
	}
	if o.memProfile != "" {
		args = append(args, "-memprofile", o.memProfile)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return cleanerResult{}, fmt.Errorf("cleaner child: %w", err)
	}
	var res cleanerResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return cleanerResult{}, fmt.Errorf("cleaner child output %q: %w", out.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.RusageMaxRSS = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return res, nil
}

// parseMetrics reads "name value" lines of Prometheus text without labels.
func parseMetrics(text string) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = int64(v)
		}
	}
	return out
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// sampler records, every tick, the largest RssAnon and RssFile of this process and the
// largest Go heap and heap goal.
type sampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	// written by the sampling goroutine only; read after stop
	anon, file int64 // bytes
	heap, goal uint64
}

func startSampler(every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{})}
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

var sampleNames = []string{"/memory/classes/heap/objects:bytes", "/gc/heap/goal:bytes"}

func (s *sampler) sample() {
	if m, err := benchkit.ReadProcMemory(os.Getpid()); err == nil {
		s.anon, s.file = max(s.anon, m.Anon), max(s.file, m.File)
	}
	ms := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		ms[i].Name = n
	}
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindUint64 {
		s.heap = max(s.heap, ms[0].Value.Uint64())
	}
	if ms[1].Value.Kind() == metrics.KindUint64 {
		s.goal = max(s.goal, ms[1].Value.Uint64())
	}
}

// stop ends sampling after one last sample.
func (s *sampler) stop() {
	close(s.done)
	s.wg.Wait()
	s.sample()
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the heap profile (inuse_space, and alloc_space for the whole run).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
