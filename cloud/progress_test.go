package cloud

import (
	"strings"
	"testing"
	"time"
)

func TestProgressReports(t *testing.T) {
	st := Stats{BytesFetched: 3 << 20, EstimatedBytes: 12 << 20, Records: 1234, Partitions: 2, Segments: 3,
		ArchivedSegments: 10, SegmentsPruned: 7, Requests: 9, CorruptSkipped: 1}
	var bar, lines strings.Builder
	p := &Progress{w: &bar, tty: true, stats: func() Stats { return st }, start: time.Now()}
	p.report()
	if got := bar.String(); !strings.HasPrefix(got, "\r[=====>") || !strings.Contains(got, " 25% 3.0 MiB of ~12.0 MiB fetched, 1234 records") ||
		!strings.HasSuffix(got, "\x1b[K") || strings.Contains(got, "\n") {
		t.Errorf("bar %q", got)
	}
	p = &Progress{w: &lines, stats: func() Stats { return st }, start: time.Now()}
	p.report()
	if got := lines.String(); got != "samsa-cloud: progress: 3.0 MiB of ~12.0 MiB fetched, 1234 records\n" {
		t.Errorf("line %q", got)
	}
	want := "samsa-cloud: 1234 records from 2 partitions, 3 of 10 segments read (7 pruned), 3.0 MiB fetched (3145728 bytes) in 9 requests, 1.5s, 1 corrupt skipped"
	if got := Summary(st, 1500*time.Millisecond); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	var stopped strings.Builder
	StartProgress(&stopped, true, func() Stats { return st }).Stop(true)
	if got := stopped.String(); !strings.HasSuffix(got, "1 corrupt skipped\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("stop %q", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
