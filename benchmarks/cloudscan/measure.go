package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/samsa-io/samsa/cloud"
	"github.com/samsa-io/samsa/internal/testminio"
)

// Modes, in the order of the first run (later runs rotate it).
const (
	modeRawSeq     = "raw GET, sequential"
	modeRawPar     = "raw GET, parallel"
	modeQueryCount = "query, counting sink"
	modeQueryJSONL = "query, jsonl → discard"
	modeQuerySeq   = "query, counting, 1 decoder"
)

var modes = []string{modeRawSeq, modeRawPar, modeQueryCount, modeQueryJSONL, modeQuerySeq}

// runResult is one measurement.
type runResult struct {
	Run        int     `json:"run"`
	Mode       string  `json:"mode"`
	Seconds    float64 `json:"seconds"`
	LogBytes   int64   `json:"log_bytes"`     // .log bytes read
	Fetched    int64   `json:"fetched_bytes"` // all response bytes (the query's include manifests)
	Requests   int64   `json:"requests"`
	Records    int64   `json:"records"` // records decoded (queries only)
	MBps       float64 `json:"mb_per_s"`
	RecPerSec  float64 `json:"records_per_s"`
	ClientCPU  float64 `json:"client_cpu_s"` // this process, user+system
	MinIOCPU   float64 `json:"minio_cpu_s"`
	OutputSize int64   `json:"output_bytes,omitempty"` // jsonl bytes written to io.Discard
}

// bench holds what the measurements share.
type bench struct {
	o       options
	srv     *testminio.Server
	info    *archiveInfo
	s3      *s3.Client
	archive *cloud.Archive
	profile *os.File
}

// s3Client is an aws-sdk-go-v2 client for MinIO configured as package cloud configures its own.
func s3Client(ctx context.Context, srv *testminio.Server) (*s3.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cloud.DefaultRegion),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")))
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.Endpoint)
		o.UsePathStyle = true
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// newBench opens the archive and lists its .log objects from the manifests.
func newBench(ctx context.Context, o options, srv *testminio.Server, info *archiveInfo) (*bench, error) {
	b := &bench{o: o, srv: srv, info: info}
	var err error
	if b.s3, err = s3Client(ctx, srv); err != nil {
		return nil, err
	}
	b.archive, err = cloud.Open(ctx, cloud.Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: prefix,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	ms, err := b.archive.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		for _, s := range m.Segments {
			b.info.Keys = append(b.info.Keys, s.Key(prefix, topic, m.Partition, ".log"))
			b.info.Sizes = append(b.info.Sizes, s.Size)
			b.info.LogBytes += s.Size
			b.info.Records += s.Records
			b.info.Segments++
		}
	}
	return b, nil
}

// check runs one full query and one raw download (which also warms MinIO's page cache) and
// compares them with the manifests: every archived record decoded, every byte downloaded.
func (b *bench) check(ctx context.Context) error {
	r, err := b.rawParallel(ctx)
	if err != nil {
		return err
	}
	if r.LogBytes != b.info.LogBytes {
		return fmt.Errorf("raw download read %d bytes, the manifests list %d", r.LogBytes, b.info.LogBytes)
	}
	q, err := b.query(ctx, false, 0)
	if err != nil {
		return err
	}
	if q.Records != b.info.Records || q.LogBytes != b.info.LogBytes {
		return fmt.Errorf("the query decoded %d records from %d bytes, the manifests list %d records in %d bytes",
			q.Records, q.LogBytes, b.info.Records, b.info.LogBytes)
	}
	return nil
}

// measure runs every mode o.runs times, rotating their order from run to run.
func (b *bench) measure(ctx context.Context, logf func(string, ...any)) ([]runResult, error) {
	if b.profile != nil {
		if err := pprof.StartCPUProfile(b.profile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var out []runResult
	for run := 1; run <= b.o.runs; run++ {
		for i := range modes {
			mode := modes[(i+run-1)%len(modes)]
			runtime.GC()
			var r runResult
			var err error
			pprof.Do(ctx, pprof.Labels("mode", mode), func(ctx context.Context) { r, err = b.measureOne(ctx, mode) })
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mode, err)
			}
			r.Run = run
			logf("run %d, %-24s %7.1f MB/s %10.0f records/s (%.2fs)", run, mode, r.MBps, r.RecPerSec, r.Seconds)
			out = append(out, r)
		}
	}
	return out, nil
}

// measureOne runs a mode once, timing it and counting CPU.
func (b *bench) measureOne(ctx context.Context, mode string) (runResult, error) {
	cpu0, minio0 := selfCPU(), minioCPU(b.srv)
	start := time.Now()
	var r runResult
	var err error
	switch mode {
	case modeRawSeq:
		r, err = b.rawSequential(ctx)
	case modeRawPar:
		r, err = b.rawParallel(ctx)
	case modeQueryCount:
		r, err = b.query(ctx, false, 0)
	case modeQueryJSONL:
		r, err = b.query(ctx, true, 0)
	case modeQuerySeq:
		r, err = b.query(ctx, false, 1)
	}
	if err != nil {
		return r, err
	}
	r.Mode = mode
	r.Seconds = time.Since(start).Seconds()
	r.ClientCPU, r.MinIOCPU = selfCPU()-cpu0, minioCPU(b.srv)-minio0
	r.MBps = float64(r.LogBytes) / 1e6 / r.Seconds
	r.RecPerSec = float64(r.Records) / r.Seconds
	return r, nil
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// get reads one object, or the range [off, off+n) when n > 0, into buf, returning the bytes read.
func (b *bench) get(ctx context.Context, key string, off, n int64, buf []byte) (int64, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if n > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	out, err := b.s3.GetObject(ctx, in)
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	var got int64
	for {
		k, err := io.ReadFull(out.Body, buf)
		got += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// rawSequential downloads every .log object whole, one after the other.
func (b *bench) rawSequential(ctx context.Context) (runResult, error) {
	var r runResult
	buf := make([]byte, 4<<20)
	for i, key := range b.info.Keys {
		n, err := b.get(ctx, key, 0, 0, buf)
		if err != nil {
			return r, err
		}
		if n != b.info.Sizes[i] {
			return r, fmt.Errorf("%s: %d bytes, the manifest lists %d", key, n, b.info.Sizes[i])
		}
		r.LogBytes += n
		r.Requests++
	}
	r.Fetched = r.LogBytes
	return r, nil
}

// rawParallel downloads the .log objects in ranged GETs of o.chunk bytes, o.parallel in
// flight: the requests a full-scan query sends, without decoding.
func (b *bench) rawParallel(ctx context.Context) (runResult, error) {
	type rng struct {
		key    string
		off, n int64
	}
	var ranges []rng
	for i, key := range b.info.Keys {
		for off := int64(0); off < b.info.Sizes[i]; off += b.o.chunk {
			ranges = append(ranges, rng{key, off, min(b.o.chunk, b.info.Sizes[i]-off)})
		}
	}
	var next, total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, b.o.parallel)
	for range b.o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, b.o.chunk)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ranges)) {
					return
				}
				rg := ranges[i]
				n, err := b.get(ctx, rg.key, rg.off, rg.n, buf[:rg.n])
				if err == nil && n != rg.n {
					err = fmt.Errorf("%s bytes %d-%d: got %d", rg.key, rg.off, rg.off+rg.n-1, n)
				}
				if err != nil {
					errs <- err
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return runResult{}, err
	}
	return runResult{LogBytes: total.Load(), Fetched: total.Load(), Requests: int64(len(ranges))}, nil
}

// countingWriter counts what is written to it and drops it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// query runs a full scan of the topic, counting records or encoding JSON lines, with
// decoders batches decoded at once (0: the default, GOMAXPROCS).
func (b *bench) query(ctx context.Context, jsonl bool, decoders int) (runResult, error) {
	opts := cloud.NewQueryOptions(topic)
	opts.Parallel, opts.ChunkSize, opts.Decoders = b.o.parallel, b.o.chunk, decoders
	var sink cloud.Sink
	var w cloud.RecordWriter
	out := &countingWriter{}
	if jsonl {
		w, _ = cloud.NewWriter(out, cloud.FormatJSONL)
		sink = w
	} else {
		var n int64
		sink = cloud.SinkFunc(func(*cloud.Record) error { n++; return nil })
	}
	st, err := b.archive.Query(ctx, opts, sink)
	if err != nil {
		return runResult{}, err
	}
	if w != nil {
		if err := w.Flush(); err != nil {
			return runResult{}, err
		}
	}
	b.info.Batches = st.Batches
	// Every segment is read whole: the .log bytes are the manifests' total.
	return runResult{LogBytes: st.EstimatedBytes, Fetched: st.BytesFetched, Requests: st.Requests, Records: st.Records,
		OutputSize: out.n}, nil
}
