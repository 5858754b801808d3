package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxLineBytes is the longest stdin line (without its newline) produce accepts.
const maxLineBytes = 1 << 20

// errLineTooLong reports a stdin line over maxLineBytes.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLineBytes)

var acksByName = map[string]kgo.Acks{"all": kgo.AllISRAcks(), "1": kgo.LeaderAck(), "0": kgo.NoAck()}

var codecByName = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// produceOptions are the parsed flags of "samsa produce".
type produceOptions struct {
	client      clientFlags
	topic       string
	partition   int
	keySep      string
	headers     kvFlag
	acks        *choiceFlag
	compression *choiceFlag
}

func parseProduceFlags(args []string, stderr io.Writer) (*produceOptions, error) {
	fs := newFlagSet("produce", "produce --topic T [flags] < lines",
		"Produces one record per stdin line (the newline is not part of the value).\n"+
			"With --key-separator, the text before the first separator is the key; a line without\n"+
			"the separator has no key. Lines may be up to 1 MiB. Prints the count to stderr at EOF.", stderr)
	o := &produceOptions{
		headers:     kvFlag{allowDup: true},
		acks:        newChoice("all", "all", "1", "0"),
		compression: newChoice("none", "none", "gzip", "snappy", "lz4", "zstd"),
	}
	o.client.register(fs, "fail a record not acknowledged within this `duration`")
	fs.StringVar(&o.topic, "topic", "", "`TOPIC` to produce to (required)")
	fs.IntVar(&o.partition, "partition", -1, "produce every record to partition `N` (-1: partition by key)")
	fs.StringVar(&o.keySep, "key-separator", "", "split each line into key and value at the first `SEP`")
	fs.Var(&o.headers, "header", "add header `key=value` to every record (repeatable)")
	fs.Var(o.acks, "acks", "`ACKS` to wait for: all, 1 or 0")
	fs.Var(o.compression, "compression", "batch compression `CODEC`: none, gzip, snappy, lz4 or zstd")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) > 0:
		return nil, usagef("produce", "unexpected argument %q (records are read from stdin)", pos[0])
	case o.topic == "":
		return nil, usagef("produce", "missing --topic")
	case o.partition < -1 || o.partition > 1<<31-1:
		return nil, usagef("produce", "--partition must be -1 or a partition number, got %d", o.partition)
	case o.client.timeout < time.Second:
		return nil, usagef("produce", "--timeout must be at least 1s, got %s", o.client.timeout)
	}
	return o, nil
}

// runProduce implements "samsa produce".
func runProduce(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	o, err := parseProduceFlags(args, stderr)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(acksByName[o.acks.value]),
		kgo.ProducerBatchCompression(codecByName[o.compression.value]),
		kgo.RecordDeliveryTimeout(o.client.timeout),
		kgo.AllowAutoTopicCreation(), // the broker's auto_create_topics decides
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	if o.acks.value != "all" {
		// Idempotence needs acks=all; like the Java client, weaker acks go without it.
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := o.client.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	headers := make([]kgo.RecordHeader, len(o.headers.pairs))
	for i, h := range o.headers.pairs {
		headers[i] = kgo.RecordHeader{Key: h[0], Value: []byte(h[1])}
	}

	var (
		mu       sync.Mutex
		firstErr error // of the lowest-numbered failed record
		firstN   int
		failed   atomic.Bool
		acked    atomic.Int64
	)
	br := bufio.NewReaderSize(stdin, 64<<10)
	sent, readErr := 0, error(nil)
	for n := 1; !failed.Load(); n++ {
		line, err := readLine(br, maxLineBytes)
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("read stdin line %d: %w", n, err)
			break
		}
		rec := newRecord(line, o.keySep, headers)
		if o.partition >= 0 {
			rec.Partition = int32(o.partition)
		}
		sent++
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
				return
			}
			mu.Lock()
			if firstErr == nil || n < firstN {
				firstErr, firstN = err, n
			}
			mu.Unlock()
			failed.Store(true)
		})
	}
	flushErr := cl.Flush(ctx)
	fmt.Fprintf(stderr, "produced %d records to %s\n", acked.Load(), o.topic)
	mu.Lock()
	defer mu.Unlock()
	switch {
	case firstErr != nil:
		return fmt.Errorf("produce to %q: record %d: %w", o.topic, firstN, firstErr)
	case readErr != nil:
		return fmt.Errorf("produce to %q: %w", o.topic, readErr)
	case flushErr != nil:
		return fmt.Errorf("produce to %q: flush after %d records: %w", o.topic, sent, flushErr)
	}
	return nil
}

// newRecord splits a line into key and value at the first sep (when sep is not empty).
func newRecord(line []byte, sep string, headers []kgo.RecordHeader) *kgo.Record {
	rec := &kgo.Record{Value: line, Headers: headers}
	if sep != "" {
		if i := bytes.Index(line, []byte(sep)); i >= 0 {
			rec.Key, rec.Value = line[:i:i], line[i+len(sep):]
		}
	}
	return rec
}

// readLine returns the next line without its '\n' in a new slice, the last line even without a
// newline, and io.EOF when the input is exhausted. A line over max bytes is errLineTooLong.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 || (len(line) == max+1 && line[max] != '\n') {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}
