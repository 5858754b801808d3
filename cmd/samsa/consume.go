package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeOptions are the parsed flags of "samsa consume".
type consumeOptions struct {
	client    clientFlags
	topic     string
	partition int
	from      startSpec
	count     int64
	follow    bool
	format    *choiceFlag
	keySep    string
}

func parseConsumeFlags(args []string, stderr io.Writer, now time.Time) (*consumeOptions, error) {
	fs := newFlagSet("consume", "consume --topic T [flags]",
		"Prints records to stdout. Without --follow it stops at the end offsets seen at start.\n"+
			"--from takes: beginning, end, an OFFSET, -N (N records before the end of each partition),\n"+
			"an RFC3339 time (2024-05-01T12:00:00Z), a date (2024-05-01, UTC) or a duration ago (90s, 2h, 7d, 1w).\n"+
			"json format: one object per line with topic, partition, offset, timestamp (RFC3339Nano, UTC),\n"+
			"key and value (strings, null when absent) and headers.", stderr)
	o := &consumeOptions{format: newChoice("value", "value", "kv", "json")}
	o.client.register(fs, "")
	from := fs.String("from", "beginning", "start `POSITION`: beginning, end, OFFSET, -N or TIME")
	fs.StringVar(&o.topic, "topic", "", "`TOPIC` to consume (required)")
	fs.IntVar(&o.partition, "partition", -1, "consume only partition `N` (-1: all)")
	fs.Int64Var(&o.count, "count", 0, "stop after `N` records (0: no limit)")
	fs.BoolVar(&o.follow, "follow", false, "keep waiting for new records until interrupted")
	fs.Var(o.format, "format", "output `FORMAT`: value, kv (key SEP value) or json")
	fs.StringVar(&o.keySep, "key-separator", "\t", "`SEP` between key and value in kv format")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) > 0:
		return nil, usagef("consume", "unexpected argument %q", pos[0])
	case o.topic == "":
		return nil, usagef("consume", "missing --topic")
	case o.partition < -1 || o.partition > 1<<31-1:
		return nil, usagef("consume", "--partition must be -1 or a partition number, got %d", o.partition)
	case o.count < 0:
		return nil, usagef("consume", "--count must not be negative, got %d", o.count)
	}
	if o.from, err = parseFrom(*from, now); err != nil {
		return nil, usagef("consume", "--from: %v", err)
	}
	return o, nil
}

// startKind says how startSpec chooses the first offset of each partition.
type startKind int

const (
	fromBeginning startKind = iota
	fromEnd
	fromOffset // at offset n (clamped to the partition's start..end)
	fromTail   // n records before the end
	fromTime   // the first record at or after t
)

// startSpec is a parsed --from.
type startSpec struct {
	kind startKind
	n    int64
	t    time.Time
}

// parseFrom parses --from; relative durations count back from now.
func parseFrom(s string, now time.Time) (startSpec, error) {
	switch s {
	case "beginning", "start", "earliest":
		return startSpec{kind: fromBeginning}, nil
	case "end", "latest":
		return startSpec{kind: fromEnd}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			// -MinInt64 overflows: the last MaxInt64 records are all of them just as well.
			return startSpec{kind: fromTail, n: -max(n, -math.MaxInt64)}, nil
		}
		return startSpec{kind: fromOffset, n: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return startSpec{kind: fromTime, t: t}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return startSpec{kind: fromTime, t: t}, nil
	}
	if d, err := parseAgo(s); err == nil {
		return startSpec{kind: fromTime, t: now.Add(-d)}, nil
	}
	return startSpec{}, fmt.Errorf("invalid value %q (allowed: beginning, end, OFFSET, -N, "+
		"RFC3339 time, YYYY-MM-DD, or a duration ago such as 30m, 2h, 7d)", s)
}

var agoUnits = map[string]time.Duration{
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// parseAgo parses a non-negative duration like "90s", "2h", "7d", "1w2d" or "1.5h": Go
// duration units from ms up, plus d (24h) and w (7d).
func parseAgo(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total float64
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		v, err := strconv.ParseFloat(num, 64)
		scale, ok := agoUnits[unit]
		if num == "" || err != nil || !ok {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total += v * float64(scale)
		rest = rest[j:]
	}
	if total > float64(1<<62) {
		return 0, fmt.Errorf("duration %q too long", s)
	}
	return time.Duration(total), nil
}

// runConsume implements "samsa consume".
func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseConsumeFlags(args, stderr, time.Now())
	if err != nil {
		return err
	}
	starts, ends, err := o.resolveOffsets(ctx)
	if err != nil {
		return fmt.Errorf("consume %q: %w", o.topic, err)
	}
	// Without --follow, a partition is done once its end offset (as seen now) is reached.
	remaining := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for p, start := range starts {
		if o.follow || start < ends[p] {
			offsets[p] = kgo.NewOffset().At(start)
			remaining[p] = ends[p]
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	cl, err := o.client.client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets}),
		kgo.KeepControlRecords(), // so a trailing control record still ends a partition
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriter(stdout)
	p := newPrinter(out, o.format.value, o.keySep)
	var printed int64
	for o.follow || len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		var ferr error
		fetches.EachError(func(t string, part int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("partition %d: %w", part, err)
			}
		})
		if ferr != nil {
			out.Flush()
			return fmt.Errorf("consume %q: %w", o.topic, ferr)
		}
		for r := range fetches.RecordsAll() {
			end, active := remaining[r.Partition]
			if !o.follow && (!active || r.Offset >= end) {
				continue
			}
			if !o.follow && r.Offset >= end-1 {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() {
				continue
			}
			if err := p.print(r); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			if printed++; o.count > 0 && printed >= o.count {
				return flushOut(out)
			}
		}
		if err := flushOut(out); err != nil {
			return err
		}
	}
	if err := flushOut(out); err != nil {
		return err
	}
	if !o.follow && ctx.Err() != nil {
		return fmt.Errorf("consume %q: interrupted", o.topic)
	}
	return nil
}

func flushOut(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// resolveOffsets lists the partitions to read and returns, per partition, the first offset to
// read and the end offset (high watermark) at this moment.
func (o *consumeOptions) resolveOffsets(ctx context.Context) (starts, ends map[int32]int64, err error) {
	cl, err := o.client.client()
	if err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()

	list := func(what string, f func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		l, err := f(ctx, o.topic)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", what, err)
		}
		m := map[int32]int64{}
		for p, lo := range l[o.topic] {
			if o.partition < 0 || p == int32(o.partition) {
				m[p] = lo.Offset
			}
		}
		return m, nil
	}
	if ends, err = list("end", adm.ListEndOffsets); err != nil {
		return nil, nil, err
	}
	if len(ends) == 0 {
		if o.partition >= 0 {
			return nil, nil, fmt.Errorf("topic has no partition %d", o.partition)
		}
		return nil, nil, errors.New("topic has no partitions")
	}
	first, err := list("start", adm.ListStartOffsets)
	if err != nil {
		return nil, nil, err
	}
	starts = map[int32]int64{}
	var atTime map[int32]int64
	if o.from.kind == fromTime {
		after := func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, o.from.t.UnixMilli(), topics...)
		}
		if atTime, err = list("time", after); err != nil {
			return nil, nil, err
		}
	}
	for p, end := range ends {
		lo := first[p]
		var s int64
		switch o.from.kind {
		case fromBeginning:
			s = lo
		case fromEnd:
			s = end
		case fromOffset:
			s = o.from.n
		case fromTail:
			s = end - o.from.n
		case fromTime:
			s = end // no record at or after the time
			if at, ok := atTime[p]; ok && at >= 0 {
				s = at
			}
		}
		starts[p] = min(max(s, lo), end)
	}
	return starts, ends, nil
}

// printer writes records in one of the output formats.
type printer struct {
	w      *bufio.Writer
	format string
	keySep string
	enc    *json.Encoder
}

func newPrinter(w *bufio.Writer, format, keySep string) *printer {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &printer{w: w, format: format, keySep: keySep, enc: enc}
}

// jsonRecord is the json output format; field order is the output order.
type jsonRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp string            `json:"timestamp"`
	Key       *string           `json:"key"`
	Value     *string           `json:"value"`
	Headers   map[string]string `json:"headers"`
}

func bytesPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func (p *printer) print(r *kgo.Record) error {
	switch p.format {
	case "json":
		jr := jsonRecord{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano),
			Key:       bytesPtr(r.Key),
			Value:     bytesPtr(r.Value),
			Headers:   make(map[string]string, len(r.Headers)),
		}
		for _, h := range r.Headers {
			jr.Headers[h.Key] = string(h.Value)
		}
		return p.enc.Encode(jr)
	case "kv":
		p.w.Write(r.Key)
		p.w.WriteString(p.keySep)
	}
	p.w.Write(r.Value)
	return p.w.WriteByte('\n')
}
