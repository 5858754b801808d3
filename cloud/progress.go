package cloud

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// IsTerminal reports whether f is a terminal (a character device), where progress is drawn
// as a bar. Pipes, files and sockets are not.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress intervals: a terminal bar is redrawn often; plain lines (a log file, CI) are rare.
const (
	barInterval  = 200 * time.Millisecond
	lineInterval = 10 * time.Second
)

// Progress reports a running query on a stream (stderr): on a terminal, one bar line redrawn
// in place; elsewhere, a plain line now and then. Stop ends it and prints the summary line.
type Progress struct {
	w     io.Writer
	tty   bool
	stats func() Stats
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	drawn bool // a bar is on screen (tty)
}

// StartProgress starts reporting stats to w, as a bar when tty is set.
func StartProgress(w io.Writer, tty bool, stats func() Stats) *Progress {
	p := &Progress{w: w, tty: tty, stats: stats, start: time.Now(), stop: make(chan struct{})}
	interval := lineInterval
	if tty {
		interval = barInterval
	}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.report()
			}
		}
	}()
	return p
}

// report writes one progress report.
func (p *Progress) report() {
	st := p.stats()
	elapsed := time.Since(p.start)
	if !p.tty {
		fmt.Fprintf(p.w, "samsa-cloud: progress: %s\n", describeProgress(st, elapsed))
		return
	}
	const width = 24
	frac := 0.0
	if st.EstimatedBytes > 0 {
		frac = min(1, float64(st.BytesFetched)/float64(st.EstimatedBytes))
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	if fill < width && fill > 0 {
		bar = strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", width-fill)
	}
	fmt.Fprintf(p.w, "\r[%s] %3.0f%% %s\x1b[K", bar, frac*100, describeProgress(st, elapsed))
	p.drawn = true
}

// describeProgress is the text of a progress report.
func describeProgress(st Stats, elapsed time.Duration) string {
	rate := ""
	if s := elapsed.Seconds(); s > 0.5 {
		rate = fmt.Sprintf(", %s/s", FormatBytes(int64(float64(st.BytesFetched)/s)))
	}
	return fmt.Sprintf("%s of ~%s fetched, %d records%s", FormatBytes(st.BytesFetched),
		FormatBytes(max(st.EstimatedBytes, st.BytesFetched)), st.Records, rate)
}

// Stop ends the reports, clears the bar, and with summary set writes the summary line.
func (p *Progress) Stop(summary bool) {
	close(p.stop)
	p.done.Wait()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if summary {
		fmt.Fprintln(p.w, Summary(p.stats(), time.Since(p.start)))
	}
}

// Summary is the one-line report of a finished query, e.g.
// "samsa-cloud: 1200 records from 2 partitions, 5 of 60 segments read (55 pruned), 1.2 MiB
// fetched in 14 requests, 0.4s".
func Summary(st Stats, elapsed time.Duration) string {
	var extra string
	if st.CorruptSkipped > 0 {
		extra += fmt.Sprintf(", %d corrupt skipped", st.CorruptSkipped)
	}
	if st.IndexesUnusable > 0 {
		extra += fmt.Sprintf(", %d indexes unusable", st.IndexesUnusable)
	}
	return fmt.Sprintf("samsa-cloud: %d records from %d partitions, %d of %d segments read (%d pruned), %s fetched (%d bytes) in %d requests, %.1fs%s",
		st.Records, st.Partitions, st.Segments, st.ArchivedSegments, st.SegmentsPruned,
		FormatBytes(st.BytesFetched), st.BytesFetched, st.Requests, elapsed.Seconds(), extra)
}
