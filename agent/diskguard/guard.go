package diskguard

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shirou/gopsutil/v3/disk"
)

// ErrLowDisk is wrapped by Err's error while the filesystem is below a limit.
var ErrLowDisk = errors.New("low disk space")

// The agent's config keys of the limits; errors and log lines name them so an operator knows
// what to change.
const (
	KeyMinFreeBytes   = "disk.min_free_bytes"
	KeyMinFreePercent = "disk.min_free_percent"
)

// DefaultInterval is the poll period when Options.Interval is 0.
const DefaultInterval = time.Second

// Options configure a Guard.
type Options struct {
	// Dir is the data directory; the guard watches the filesystem holding it. It must exist.
	Dir string
	// MinFreeBytes refuses writes while fewer bytes are free to unprivileged writers
	// (statfs f_bavail). 0 disables this limit.
	MinFreeBytes int64
	// MinFreePercent refuses writes while less than this percent of the filesystem is free,
	// 0 to 100 (exclusive). 0 disables this limit.
	MinFreePercent float64
	// Interval is the poll period of Start. Default DefaultInterval (1s).
	Interval time.Duration
	// Logger receives the transitions; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Dir == "" {
		return errors.New("diskguard: no directory")
	}
	if o.MinFreeBytes < 0 {
		return fmt.Errorf("diskguard: %s %d is negative", KeyMinFreeBytes, o.MinFreeBytes)
	}
	if !(o.MinFreePercent >= 0 && o.MinFreePercent < 100) { // also rejects NaN
		return fmt.Errorf("diskguard: %s %g is outside 0 to 100 (exclusive)", KeyMinFreePercent, o.MinFreePercent)
	}
	if o.Interval < 0 {
		return fmt.Errorf("diskguard: interval %s is negative", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// state is the result of one successful poll; it is replaced whole, never modified.
type state struct {
	free, total uint64
	err         error // non-nil: writes are refused
}

// Guard watches one filesystem. Its methods are safe for concurrent use.
type Guard struct {
	opts  Options
	state atomic.Pointer[state]

	refusals    atomic.Int64 // transitions into refusing
	checkErrors atomic.Int64 // polls that failed

	mu      sync.Mutex // serializes Check; guards failing
	failing bool       // the last poll failed (logged once)

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{} // closed when the poll loop has returned (or was never started)
	started   atomic.Bool
}

// New checks opts and polls the filesystem once; an error from that first poll (the
// directory does not exist, statfs fails) is returned. Writes are refused from the start if
// the filesystem is already below a limit. Call Start to keep polling.
func New(opts Options) (*Guard, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	g := &Guard{opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	g.state.Store(&state{}) // allowing, until the first poll says otherwise
	if err := g.Check(); err != nil {
		return nil, err
	}
	return g, nil
}

// Start polls every Options.Interval in the background until Close. Calling it again does
// nothing.
func (g *Guard) Start() {
	g.startOnce.Do(func() {
		g.started.Store(true)
		go g.loop()
	})
}

func (g *Guard) loop() {
	defer close(g.done)
	t := time.NewTicker(g.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.Check() // a failure is logged and counted by Check; the last state stays
		}
	}
}

// Close stops the background poll and waits for it. Err keeps answering with the last state.
func (g *Guard) Close() {
	g.closeOnce.Do(func() {
		close(g.stop)
		if g.started.Load() {
			<-g.done
		}
	})
}

// Err returns nil while writes are allowed, otherwise an error wrapping ErrLowDisk that says
// how much is free and which limit (config key and value) is crossed. It is one atomic load.
func (g *Guard) Err() error { return g.state.Load().err }

// Free returns the free (available to unprivileged writers) and total bytes of the
// filesystem at the last successful poll.
func (g *Guard) Free() (free, total uint64) {
	s := g.state.Load()
	return s.free, s.total
}

// Check polls the filesystem now and updates the state (the background loop calls it every
// Interval). A failing poll keeps the last state, is logged once until a poll succeeds again,
// and its error is returned.
func (g *Guard) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	log := g.opts.Logger
	u, err := disk.Usage(g.opts.Dir)
	if err != nil {
		g.checkErrors.Add(1)
		err = fmt.Errorf("diskguard: free space of %s: %w", g.opts.Dir, err)
		if !g.failing {
			log.Error("disk space check failed; keeping the last state until it works again",
				"dir", g.opts.Dir, "writes_refused", g.Err() != nil, "err", err)
		}
		g.failing = true
		return err
	}
	if g.failing {
		log.Info("disk space check works again", "dir", g.opts.Dir)
		g.failing = false
	}
	next := &state{free: u.Free, total: u.Total, err: g.judge(u.Free, u.Total)}
	prev := g.state.Swap(next)
	switch {
	case prev.err == nil && next.err != nil:
		g.refusals.Add(1)
		key, limit := g.crossed(u.Free, u.Total)
		log.Warn("disk space low: refusing produce requests until space is freed",
			"dir", g.opts.Dir, "free_bytes", u.Free, "total_bytes", u.Total,
			"free_percent", roundPercent(percent(u.Free, u.Total)), "limit_key", key, "limit", limit)
	case prev.err != nil && next.err == nil:
		log.Info("disk space available again: accepting produce requests",
			"dir", g.opts.Dir, "free_bytes", u.Free, "total_bytes", u.Total,
			"free_percent", roundPercent(percent(u.Free, u.Total)))
	}
	return nil
}

// judge returns the refusal error for a poll result, or nil when writes are allowed. No
// hysteresis (see the package doc): at or above both limits is allowed.
func (g *Guard) judge(free, total uint64) error {
	key, limit := g.crossed(free, total)
	if key == "" {
		return nil
	}
	return fmt.Errorf("%w: %s has %d bytes free (%.2f%% of %d bytes), below %s %s",
		ErrLowDisk, g.opts.Dir, free, percent(free, total), total, key, limit)
}

// crossed returns the key and value (as configured) of the first limit the filesystem is
// below, or "" if none.
func (g *Guard) crossed(free, total uint64) (key, limit string) {
	if b := g.opts.MinFreeBytes; b > 0 && free < uint64(b) {
		return KeyMinFreeBytes, fmt.Sprint(b)
	}
	if p := g.opts.MinFreePercent; p > 0 && total > 0 && percent(free, total) < p {
		return KeyMinFreePercent, fmt.Sprint(p)
	}
	return "", ""
}

func percent(free, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(free) / float64(total) * 100
}

func roundPercent(p float64) float64 { return float64(int64(p*100)) / 100 }

// WriteMetrics writes the guard's metrics in Prometheus text format, labelled with the data
// directory as path.
func (g *Guard) WriteMetrics(w io.Writer) {
	s := g.state.Load()
	label := `{path="` + labelEscaper.Replace(g.opts.Dir) + `"}`
	ratio := 0.0
	if s.total > 0 {
		ratio = float64(s.free) / float64(s.total)
	}
	refused := 0
	if s.err != nil {
		refused = 1
	}
	metric := func(name, typ, help, value string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s%s %s\n", name, help, name, typ, name, label, value)
	}
	metric("samsa_disk_free_bytes", "gauge", "Bytes free to unprivileged writers on the data directory's filesystem (last poll).", fmt.Sprint(s.free))
	metric("samsa_disk_total_bytes", "gauge", "Size of the data directory's filesystem (last poll).", fmt.Sprint(s.total))
	metric("samsa_disk_free_ratio", "gauge", "samsa_disk_free_bytes / samsa_disk_total_bytes.", fmt.Sprintf("%.6f", ratio))
	metric("samsa_disk_min_free_bytes", "gauge", "The disk.min_free_bytes limit (0: disabled).", fmt.Sprint(g.opts.MinFreeBytes))
	metric("samsa_disk_min_free_ratio", "gauge", "The disk.min_free_percent limit as a ratio (0: disabled).", fmt.Sprintf("%.6f", g.opts.MinFreePercent/100))
	metric("samsa_disk_writes_refused", "gauge", "1 while produce requests are refused for lack of disk space.", fmt.Sprint(refused))
	metric("samsa_disk_refusals_total", "counter", "Times the disk guard started refusing writes.", fmt.Sprint(g.refusals.Load()))
	metric("samsa_disk_check_errors_total", "counter", "Disk space polls that failed (the last state was kept).", fmt.Sprint(g.checkErrors.Load()))
}

// labelEscaper escapes a Prometheus label value.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
