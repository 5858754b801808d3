package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// report is the whole output: where it ran, with what, and the numbers.
type report struct {
	Meta    meta           `json:"meta"`
	Options map[string]any `json:"options"`
	Shape   shape          `json:"shape"`
	Before  logStats       `json:"before"`
	After   logStats       `json:"after"`
	// ReadCold is nil when the page cache could not be dropped.
	ReadCold  *readResult `json:"raw_read_cold,omitempty"`
	ReadWarm  readResult  `json:"raw_read_warm"`
	CacheNote string      `json:"cache_note,omitempty"`
	// CleanerCold: the page cache was dropped just before the cleaner child started.
	CleanerCold bool          `json:"cleaner_cold_cache"`
	Cleaner     cleanerResult `json:"cleaner"`
	// ParentPeakRSS is this (generating) process's VmHWM when the child started, MiB: the
	// child's ru_maxrss starts from it (see runChild).
	ParentPeakRSS float64 `json:"parent_peak_rss_mib"`
	// RemovedRecords is records before − records after in the sealed segments, counted by
	// scanning the files (compare Cleaner.RemovedRecords, the agent's counter).
	RemovedRecords int64 `json:"removed_records"`
	// FirstDirty is the cleaner checkpoint's first_dirty after the run: offsets below it have
	// been compacted. SealedEnd is the first offset of the active segment.
	FirstDirty int64 `json:"first_dirty"`
	SealedEnd  int64 `json:"sealed_end"`
}

type meta struct {
	benchkit.Machine
	Filesystem string `json:"filesystem"` // device and type of the data directory's filesystem
}

func collectMeta(args []string, dir string) meta {
	return meta{Machine: benchkit.DescribeMachine("compaction", args), Filesystem: benchkit.FilesystemOf(dir)}
}

// complete reports whether compaction left every key of the sealed segments exactly once.
func (r *report) complete() bool {
	return r.After.DuplicateRecords == 0 && r.After.DistinctKeys == r.Shape.SealedKeys
}

// keyMapFilled reports whether the cleaner said its key map was full (then a pass compacts
// only part of the dirty data, and duplicates may rightly remain).
func (r *report) keyMapFilled() bool { return strings.Contains(r.Cleaner.CleanerLog, "key map full") }

func (r *report) completeText() string {
	switch {
	case r.complete():
		return "yes"
	case r.keyMapFilled() && r.FirstDirty < r.SealedEnd:
		return fmt.Sprintf("no: the key map filled up; %s superseded records are left for later passes (expected)", benchkit.FormatInt(float64(r.After.DuplicateRecords)))
	}
	return "**no**"
}

// rows returns the table: metric, value.
func (r *report) rows() [][2]string {
	c := &r.Cleaner
	b, a := &r.Before, &r.After
	rows := [][2]string{
		{"log before: sealed segments (what the cleaner may compact), MiB", fmt.Sprintf("%.1f (%s)", benchkit.MiB(b.SealedBytes), benchkit.Plural(b.SealedSegments, "segment"))},
		{"records before (sealed segments)", benchkit.FormatInt(float64(b.SealedRecords))},
		{"distinct keys (sealed segments)", benchkit.FormatInt(float64(r.Shape.SealedKeys))},
		{"log after: sealed segments, MiB", fmt.Sprintf("%.1f (%s)", benchkit.MiB(a.SealedBytes), benchkit.Plural(a.SealedSegments, "segment"))},
		{"records after (sealed segments)", benchkit.FormatInt(float64(a.SealedRecords))},
		{"compacted up to offset (cleaner checkpoint) / end of the sealed segments", fmt.Sprintf("%s / %s", benchkit.FormatInt(float64(r.FirstDirty)), benchkit.FormatInt(float64(r.SealedEnd)))},
		{"every key exactly once after compaction", r.completeText()},
		{"**compaction throughput, MB/s** (sealed bytes before ÷ wall time)", fmt.Sprintf("**%.1f**", c.MBPerSec)},
		{"RunCleaner wall time, s", fmt.Sprintf("%.2f", c.Seconds)},
		{"cleaner CPU, s (user + system)", fmt.Sprintf("%.2f + %.2f", c.UserCPUSeconds, c.SysCPUSeconds)},
		{"cleaner read, MB (key-map pass + rewrite pass)", fmt.Sprintf("%.1f", float64(c.ReadBytes)/1e6)},
		{"cleaner read rate, MB/s", fmt.Sprintf("%.1f", float64(c.ReadBytes)/1e6/c.Seconds)},
		{"cleaner written, MB", fmt.Sprintf("%.1f", float64(c.WrittenBytes)/1e6)},
		{"records removed (counted in the files) / passes / segments rewritten", fmt.Sprintf("%s / %d / %d", benchkit.FormatInt(float64(r.RemovedRecords)), c.Passes, c.SegmentsRewritten)},
		{"**cleaner peak RSS (VmHWM of the child), MiB**", fmt.Sprintf("**%.1f**", c.PeakRSS)},
		{"child RSS after opening the store, before cleaning, MiB", fmt.Sprintf("%.1f", c.RSSAfterOpen)},
		{"key map budget (-buffer), MiB", fmt.Sprintf("%.1f", c.KeyMapMiB)},
		{"peak RssAnon (heap, stacks) / RssFile (binary, mmapped indexes), MiB", fmt.Sprintf("%.1f / %.1f", c.PeakAnon, c.PeakFile)},
		{"peak Go heap (objects) / peak GC heap goal, MiB", fmt.Sprintf("%.1f / %.1f", c.PeakHeap, c.PeakHeapGoal)},
		{"allocated during RunCleaner, MiB (allocations, GC cycles)", fmt.Sprintf("%.1f (%s, %d)", c.TotalAllocMiB, benchkit.FormatInt(float64(c.Mallocs)), c.NumGC)},
	}
	if r.ReadCold != nil {
		rows = append(rows, [2]string{"raw sequential read of the sealed files, cold cache, MB/s", fmt.Sprintf("%.1f", r.ReadCold.MBPerSec)})
	}
	rows = append(rows, [2]string{"raw sequential read of the sealed files, warm cache, MB/s", fmt.Sprintf("%.1f", r.ReadWarm.MBPerSec)})
	return rows
}

// writeMarkdown prints the table and its notes.
func (r *report) writeMarkdown(w io.Writer) {
	var b bytes.Buffer
	b.WriteString("| metric | value |\n|---|---:|\n")
	for _, row := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	sh := &r.Shape
	fmt.Fprintf(&b, "\nNotes:\n")
	fmt.Fprintf(&b, "- Shape: one partition, cleanup.policy=compact, segment.bytes %s; %s records in %s batches of %d (%s), %s distinct keys like \"plant1/line07/sensor000123\", each record updating one picked uniformly at random (%.1f updates per key); JSON sensor-reading values of a fixed length per key, uniform in %d–%d bytes; %.1f MiB of keys+values stored as %.1f MiB of batches (%.2f× compression). Generated in %.1f s.\n",
		benchkit.FormatBytes(sh.SegmentBytes), benchkit.FormatInt(float64(sh.Records)), benchkit.FormatInt(float64(sh.Batches)), sh.BatchRecords, sh.Codec,
		benchkit.FormatInt(float64(sh.KeysWritten)), sh.UpdatesPerKey, sh.ValueMin, sh.ValueMax,
		benchkit.MiB(sh.PayloadBytes), benchkit.MiB(r.Before.Bytes), float64(sh.PayloadBytes)/float64(max(r.Before.Bytes, 1)), sh.Seconds)
	fmt.Fprintf(&b, "- The cleaner ran alone in a child process: commitlog.Open, then Store.RunCleaner (timed). Peak RSS is the child's VmHWM, so it includes the Go runtime and the opened store (see \"after opening\"). The key map's budget is -buffer (24 bytes a slot); the agent may allocate less for a pass with fewer records.\n")
	cache := "warm page cache (the data had just been written)"
	if r.CleanerCold {
		cache = "cold page cache (dropped just before the child started)"
	}
	fmt.Fprintf(&b, "- The cleaner started with a %s. It reads the sealed segments twice: the key-map pass, then the rewrite pass, which finds the data in the page cache unless it is larger than memory.\n", cache)
	if c := &r.Cleaner; c.RemovedRecords != r.RemovedRecords {
		fmt.Fprintf(&b, "- **The agent's samsa_cleaner_removed_records_total says %s records were removed; the files say %s.**\n", benchkit.FormatInt(float64(c.RemovedRecords)), benchkit.FormatInt(float64(r.RemovedRecords)))
	}
	fmt.Fprintf(&b, "- The child's ru_maxrss from wait4 is %.1f MiB, but it cannot show less than the parent's peak RSS (%.1f MiB here): Go starts children with vfork, so the exec'd child's ru_maxrss starts from the parent's. Hence VmHWM, read inside the child.\n", r.Cleaner.RusageMaxRSS, r.ParentPeakRSS)
	if g := r.Cleaner; g.GOGC != "" || g.GOMEMLIMIT != "" {
		fmt.Fprintf(&b, "- The child ran with GOGC=%q GOMEMLIMIT=%q from the environment.\n", g.GOGC, g.GOMEMLIMIT)
	}
	if r.CacheNote != "" {
		fmt.Fprintf(&b, "- Page cache: %s.\n", r.CacheNote)
	}
	if c := r.Cleaner.CleanerLog; c != "" {
		fmt.Fprintf(&b, "- Cleaner log:\n")
		for _, line := range strings.Split(strings.TrimSpace(c), "\n") {
			fmt.Fprintf(&b, "  `%s`\n", line)
		}
	}
	fmt.Fprintf(&b, "- Machine: %d CPUs (%s), %.0f MiB RAM, kernel %s, data on %s; %s; load average %s at start, %s at end. MB = 10^6 bytes, MiB = 2^20 bytes.\n",
		r.Meta.NProc, r.Meta.CPUModel, r.Meta.MemTotalMiB, r.Meta.Kernel, r.Meta.Filesystem, r.Meta.GoVersion, r.Meta.LoadAvgStart, r.Meta.LoadAvgEnd)
	w.Write(b.Bytes())
}
