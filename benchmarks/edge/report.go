package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// binarySize is one line of dist/sizes.tsv.
type binarySize struct {
	Binary string `json:"binary"`
	Target string `json:"target"`
	Bytes  int64  `json:"bytes"`
}

// readSizes reads the size table cross-build.sh writes; a note says why there is none.
func readSizes(path string) ([]binarySize, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Sprintf("no %s: run ./cross-build.sh first", path)
	}
	defer f.Close()
	var out []binarySize
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			continue
		}
		n, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, binarySize{parts[0], parts[1], n})
	}
	fi, err := f.Stat()
	note := ""
	if err == nil {
		note = "from " + path + ", written by ./cross-build.sh at " + fi.ModTime().UTC().Format("2006-01-02 15:04 UTC")
	}
	return out, note
}

// Targets of the issue, in bytes (MB = 10^6).
const (
	targetIdleRSS  = 20_000_000
	targetPeakRSS  = 48_000_000
	targetArm64Bin = 20_000_000
)

func mb(b int64) string { return fmt.Sprintf("%.1f MB (%.1f MiB)", float64(b)/1e6, float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// writeReport prints the tables.
func writeReport(w io.Writer, o options, r *result) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("### Memory: %s, %.1f MB/s produce for %s\n\n", r.Profile, float64(r.RateTarget)/1e6, r.Duration)
	p("| metric | value | target | met? |\n|---|---:|---|---|\n")
	p("| idle RSS (VmRSS %s after start, no client) | %s | ≤ 20 MB | %s |\n", r.IdleWait, mb(r.IdleRSS), verdict(r.IdleRSS <= targetIdleRSS))
	p("| peak RSS under load (VmHWM) | %s | ≤ 48 MB | %s |\n", mb(r.PeakHWM), verdict(r.PeakHWM > 0 && r.PeakHWM <= targetPeakRSS))
	p("| RSS right after start | %s | | |\n", mb(r.StartupRSS))
	p("| idle RSS: anonymous / file-backed | %s / %s | | |\n", mb(r.IdleAnon), mb(r.IdleFile))
	p("| largest sampled RssAnon / RssFile under load (%d samples) | %s / %s | | |\n", r.Samples, mb(r.PeakAnon), mb(r.PeakFile))
	p("| RSS %s after the load | %s | | |\n", r.IdleWait, mb(r.AfterRSS))
	p("| produce rate achieved (acks=all) | %.2f MB/s | %.1f MB/s | %s |\n", r.Load.RateMBps, float64(r.RateTarget)/1e6,
		verdict(r.Load.RateMBps >= 0.95*float64(r.RateTarget)/1e6 && r.Load.Errors == 0))
	p("| records acknowledged / errors | %d / %d | | |\n", r.Load.Records, r.Load.Errors)
	if r.Load.FirstError != "" {
		p("| first error | %s | | |\n", r.Load.FirstError)
	}
	m := r.Metrics
	p("| memory budget / Go memory limit / throttle threshold | %s / %s / %s | | |\n",
		mb(int64(m["samsa_memory_budget_bytes"])), mb(int64(m["samsa_memory_go_limit_bytes"])), mb(int64(m["samsa_memory_throttle_threshold_bytes"])))
	p("| budget use at the end (live heap + stacks) | %s | | |\n", mb(int64(m["samsa_memory_used_bytes"])))
	p("| throttled responses (memory budget) / client throttles | %.0f / %d | | |\n", m["samsa_kafka_throttled_responses_total"], r.Load.Throttles)
	p("| clean stop (SIGTERM, exit 0) | %v | | |\n", r.CleanStop)
	p("\n")

	p("### Binary sizes\n\n")
	if len(r.Sizes) == 0 {
		p("%s\n\n", r.SizesNote)
		return
	}
	p("| binary | target | bytes | MB | MiB |\n|---|---|---:|---:|---:|\n")
	var arm64 int64 = -1
	for _, s := range r.Sizes {
		p("| %s | %s | %d | %.2f | %.2f |\n", s.Binary, s.Target, s.Bytes, float64(s.Bytes)/1e6, float64(s.Bytes)/(1<<20))
		if s.Binary == "samsa-linux-arm64" {
			arm64 = s.Bytes
		}
	}
	if arm64 >= 0 {
		p("\nTarget: the arm64 agent under 20 MB: %s (%.2f MB).\n", verdict(arm64 < targetArm64Bin), float64(arm64)/1e6)
	}
	p("\n(%s)\n", r.SizesNote)
}
