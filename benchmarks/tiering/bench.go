package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering"
)

const (
	topic  = "tiered"
	bucket = "samsa-bench"
	region = "us-east-1"
	// partSize is the multipart part size of the agent's S3Store (tiering.DefaultPartSize);
	// the PutObject ceiling uses it too.
	partSize = tiering.DefaultPartSize
	// chunkBytes is the agent's ranged GET size (tiering.DefaultChunkBytes); the ranged
	// GetObject ceiling uses it too.
	chunkBytes = tiering.DefaultChunkBytes
	// phaseTimeout bounds one wait for the agent (an upload of everything, local deletion).
	phaseTimeout = 15 * time.Minute
)

// bench is one run: the work directory, the servers and what has been measured.
type bench struct {
	o        options
	work     string
	logf     func(string, ...any)
	gen      *valueGen
	samsaBin string
	minio    *testminio.Server
	s3       *minio.Client
	starts   int

	records int64          // offsets [0, records) are the measured data; the filler is at records
	sealed  []segmentFiles // the sealed segments: exactly offsets [0, records)
	crcs    []uint32       // CRC-32C of their .log files
	last    string         // prefix of the last complete agent upload
	rep     report
}

func (b *bench) dataDir() string { return filepath.Join(b.work, "agent-data") }

// startAgent writes a config (tiering to prefix unless it is empty) and starts the agent.
func (b *bench) startAgent(ctx context.Context, prefix, logLevel string) (*agentProc, error) {
	b.starts++
	cfg := filepath.Join(b.work, fmt.Sprintf("agent-%02d.yaml", b.starts))
	var t *tieringBlock
	if prefix != "" {
		t = &tieringBlock{endpoint: b.minio.Endpoint, bucket: bucket, prefix: prefix, region: region,
			accessKey: b.minio.AccessKey, secretKey: b.minio.SecretKey, cacheBytes: b.o.cacheBytes, readAheadBytes: b.o.readAhead}
	}
	if err := agentConfig(cfg, b.dataDir(), logLevel, t); err != nil {
		return nil, err
	}
	return startAgent(ctx, b.samsaBin, cfg)
}

// runAll runs every phase in order.
func (b *bench) runAll(ctx context.Context) error {
	if err := b.producePhase(ctx); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for r := 1; r <= b.o.rounds; r++ {
		var ur uploadRound
		ur.Round = r
		var err error
		b.logf("upload round %d/%d: ceiling (PutObject loop)", r, b.o.rounds)
		if ur.Ceiling, err = b.ceilingPut(ctx, r); err != nil {
			return fmt.Errorf("upload ceiling: %w", err)
		}
		b.logf("upload round %d/%d: ceiling %.1f MB/s; samsa (an agent uploading the whole log to a new prefix)", r, b.o.rounds, ur.Ceiling.MBPerSec)
		if ur.Samsa, err = b.samsaUpload(ctx, r); err != nil {
			return fmt.Errorf("samsa upload: %w", err)
		}
		b.logf("upload round %d/%d: samsa %.1f MB/s; PutObject loop with the agent's manifest PUTs", r, b.o.rounds, ur.Samsa.MBPerSec)
		if ur.CeilingManifests, err = b.ceilingPutManifests(ctx, r); err != nil {
			return fmt.Errorf("upload ceiling with manifests: %w", err)
		}
		b.rep.Upload = append(b.rep.Upload, ur)
	}
	if err := b.dropLocal(ctx); err != nil {
		return fmt.Errorf("drop local copies: %w", err)
	}
	objs, err := b.remoteObjects(ctx)
	if err != nil {
		return err
	}
	for r := 1; r <= b.o.rounds; r++ {
		rr := readRound{Round: r}
		snap := takeCPU(0, b.minio.PID())
		if rr.Whole, err = getLoop(ctx, b.s3, bucket, objs, 0); err != nil {
			return fmt.Errorf("read ceiling: %w", err)
		}
		rr.Whole.CPU = snap.since(0, b.minio.PID())
		snap = takeCPU(0, b.minio.PID())
		if rr.Ranged, err = getLoop(ctx, b.s3, bucket, objs, chunkBytes); err != nil {
			return fmt.Errorf("read ceiling: %w", err)
		}
		rr.Ranged.CPU = snap.since(0, b.minio.PID())
		b.logf("read round %d/%d: ceiling %.1f MB/s whole objects, %.1f MB/s %s ranges; samsa (a consumer from offset 0, empty chunk cache)",
			r, b.o.rounds, rr.Whole.MBPerSec, rr.Ranged.MBPerSec, benchkit.FormatBytes(chunkBytes))
		if rr.Samsa, err = b.samsaRead(ctx, false); err != nil {
			return fmt.Errorf("samsa cold read: %w", err)
		}
		if rr.Raw, err = b.samsaRead(ctx, true); err != nil {
			return fmt.Errorf("samsa cold read, raw Fetch: %w", err)
		}
		b.logf("read round %d/%d: samsa %.1f MB/s (franz-go consumer), %.1f MB/s (raw Fetch)", r, b.o.rounds, rr.Samsa.MBPerSec, rr.Raw.MBPerSec)
		b.rep.Read = append(b.rep.Read, rr)
	}
	return nil
}

// producePhase fills the topic through an agent without tiering, so that nothing is uploaded
// yet, then rolls the last segment with one filler record: the sealed segments then hold
// exactly the measured records.
func (b *bench) producePhase(ctx context.Context) error {
	a, err := b.startAgent(ctx, "", "info")
	if err != nil {
		return err
	}
	defer a.stop()
	if err := createTopic(ctx, a.kafka, topic, b.o.segmentBytes); err != nil {
		return err
	}
	b.records = (b.o.bytes + b.o.recordSize - 1) / b.o.recordSize
	b.logf("produce: %d records of %s to %s (one partition, segment.bytes %s)", b.records, benchkit.FormatBytes(b.o.recordSize), topic, benchkit.FormatBytes(b.o.segmentBytes))
	took, err := produce(ctx, a.kafka, topic, b.gen, 0, b.records)
	if err != nil {
		return err
	}
	// The active segment rolls at the next append once it is older than segment.ms.
	if err := alterTopic(ctx, a.kafka, topic, "segment.ms", "1"); err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := produce(ctx, a.kafka, topic, b.gen, b.records, b.records+1); err != nil {
		return fmt.Errorf("filler record: %w", err)
	}
	// The same read as the cold reads, from the agent's local segments (page cache): what the
	// consumer and the agent's local fetch path reach without object storage.
	snap := takeCPU(a.pid(), b.minio.PID())
	local, err := consume(ctx, a.kafka, topic, b.gen, b.records, int32(b.o.fetchMax))
	if err != nil {
		return fmt.Errorf("local read: %w", err)
	}
	local.CPU = snap.since(a.pid(), b.minio.PID())
	if err := a.stop(); err != nil {
		return err
	}
	segs, err := listSegments(partitionDir(b.dataDir(), topic))
	if err != nil {
		return err
	}
	if len(segs) < 2 || segs[len(segs)-1].Base != b.records {
		return fmt.Errorf("the filler did not roll the log: segments %+v, want the last at %d", segs, b.records)
	}
	b.sealed = segs[:len(segs)-1]
	if b.crcs, err = fileCRCs(b.sealed); err != nil {
		return err
	}
	li := &b.rep.Log
	li.Records, li.Segments, li.RecordSize = b.records, len(b.sealed), b.o.recordSize
	for _, s := range b.sealed {
		li.LogBytes += s.LogBytes
		li.IndexBytes += s.IndexBytes
		li.TimeIndexBytes += s.TimeIndexBytes
	}
	li.UploadBytes = li.LogBytes + li.IndexBytes + li.TimeIndexBytes
	li.Chunks = b.logChunks()
	b.rep.Produce = produceResult{Seconds: took.Seconds(), MBPerSec: float64(b.records*b.o.recordSize) / 1e6 / took.Seconds()}
	local.MBPerSec = float64(li.LogBytes) / 1e6 / local.Seconds
	b.rep.LocalRead = local
	b.logf("produce: %.1f MB/s of values; %d sealed segments, %.1f MiB of .log, %.1f KiB of indexes",
		b.rep.Produce.MBPerSec, li.Segments, benchkit.MiB(li.LogBytes), float64(li.IndexBytes+li.TimeIndexBytes)/1024)
	return nil
}

// ceilingPut uploads the sealed segment files with a plain PutObject loop.
func (b *bench) ceilingPut(ctx context.Context, round int) (loopResult, error) {
	snap := takeCPU(0, b.minio.PID())
	r, err := putLoop(ctx, b.s3, bucket, fmt.Sprintf("ceiling-r%d", round), topic, b.sealed, partSize, nil)
	r.CPU = snap.since(0, b.minio.PID())
	return r, err
}

// ceilingPutManifests is ceilingPut plus a manifest PUT after each segment, the manifests
// being those the agent just wrote: the agent's request pattern without its code.
func (b *bench) ceilingPutManifests(ctx context.Context, round int) (loopResult, error) {
	man, err := readManifest(ctx, b.s3, bucket, b.last, topic)
	if err != nil {
		return loopResult{}, err
	}
	snap := takeCPU(0, b.minio.PID())
	r, err := putLoop(ctx, b.s3, bucket, fmt.Sprintf("ceiling-manifests-r%d", round), topic, b.sealed, partSize, man)
	r.CPU = snap.since(0, b.minio.PID())
	return r, err
}

// samsaUpload starts an agent whose tiering prefix is new: it finds every sealed segment not
// uploaded and uploads them one after the other. The time runs from the agent's "tiering on"
// log line (the uploader starts right after it) to its last "segment uploaded" line.
func (b *bench) samsaUpload(ctx context.Context, round int) (uploadRun, error) {
	prefix := fmt.Sprintf("samsa-r%d", round)
	u := uploadRun{Prefix: prefix}
	snap := takeCPU(0, b.minio.PID())
	a, err := b.startAgent(ctx, prefix, "debug")
	if err != nil {
		return u, err
	}
	defer a.stop()
	perf, err := startPerf(b.o.perfDir, fmt.Sprintf("upload-%02d", b.starts), a.pid())
	if err != nil {
		return u, err
	}
	end := b.records
	doneAt, _, err := a.waitStatus(ctx, topic, phaseTimeout, func(st partStatus) bool {
		return st.ManifestLoaded && st.RemoteEnd == end && st.BacklogSegs == 0
	})
	if perr := perf.stop(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return u, err
	}
	cpu := snap.since(a.pid(), b.minio.PID())
	cpu.Agent, _ = benchkit.ProcCPU(a.pid()) // a new process: all its CPU time is this round's
	u.CPU = cpu
	m, err := a.metrics(ctx)
	if err != nil {
		return u, err
	}
	u.Bytes, u.Segments, u.Errors = int64(m["samsa_tier_upload_bytes_total"]), int64(m["samsa_tier_uploads_total"]), int64(m["samsa_tier_errors_total"])
	// The last "segment uploaded" line is logged before the status shows it; give the log
	// reader a moment.
	var events []uploadEvent
	var tieringOn time.Time
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		events, tieringOn, u.Warnings = a.events()
		if len(events) >= len(b.sealed) || time.Now().After(deadline) {
			break
		}
	}
	if err := a.stop(); err != nil {
		return u, err
	}
	u.timing(a.spawned, tieringOn, doneAt, events, len(b.sealed))
	if u.Bytes != b.rep.Log.UploadBytes || u.Segments != int64(len(b.sealed)) {
		return u, fmt.Errorf("the agent uploaded %d bytes in %d segments, want %d in %d", u.Bytes, u.Segments, b.rep.Log.UploadBytes, len(b.sealed))
	}
	man, err := readManifest(ctx, b.s3, bucket, prefix, topic)
	if err != nil {
		return u, err
	}
	if err := checkManifest(man, b.sealed, b.crcs); err != nil {
		return u, err
	}
	u.ManifestChecked = true
	b.last = prefix
	return u, nil
}

// timing fills the upload's times from the agent's log, or from the status polls when the
// log lines are missing.
func (u *uploadRun) timing(spawned, tieringOn, doneAt time.Time, events []uploadEvent, segments int) {
	u.SpawnToDone = doneAt.Sub(spawned).Seconds()
	start, end := tieringOn, doneAt
	u.Timing = "agent log: \"tiering on\" to the last \"segment uploaded\""
	if tieringOn.IsZero() || len(events) != segments {
		start, u.Timing = spawned, "process start to the status poll that saw everything uploaded"
	} else {
		end = events[len(events)-1].At
		u.StartupToTieringOn = tieringOn.Sub(spawned).Seconds()
		u.BeforeFirstPut = events[0].At.Add(-events[0].Took).Sub(tieringOn).Seconds()
		prev := events[0].At
		for i, e := range events {
			u.PutSeconds += e.Took.Seconds()
			if i > 0 {
				u.BetweenSegments += e.At.Add(-e.Took).Sub(prev).Seconds()
				prev = e.At
			}
		}
	}
	u.Seconds = end.Sub(start).Seconds()
	u.MBPerSec = float64(u.Bytes) / 1e6 / u.Seconds
}

// dropLocal lets the agent delete its local copies of the uploaded segments
// (local.retention.bytes=1) and waits until the local log starts at the remote end.
func (b *bench) dropLocal(ctx context.Context) error {
	a, err := b.startAgent(ctx, b.last, "info")
	if err != nil {
		return err
	}
	defer a.stop()
	if err := alterTopic(ctx, a.kafka, topic, "local.retention.bytes", "1"); err != nil {
		return err
	}
	end := b.records
	if _, _, err := a.waitStatus(ctx, topic, phaseTimeout, func(st partStatus) bool {
		return st.ManifestLoaded && st.RemoteStart == 0 && st.RemoteEnd == end && st.LocalStart == end
	}); err != nil {
		return err
	}
	if err := a.stop(); err != nil {
		return err
	}
	segs, err := listSegments(partitionDir(b.dataDir(), topic))
	if err != nil {
		return err
	}
	if len(segs) != 1 || segs[0].Base != b.records {
		return fmt.Errorf("local segments left: %+v, want only the active one at %d", segs, b.records)
	}
	b.logf("local copies deleted: the partition's offsets [0, %d) are only in the bucket (prefix %s)", end, b.last)
	return nil
}

// remoteObjects lists the .log objects of the last agent upload, from its manifest.
func (b *bench) remoteObjects(ctx context.Context) ([]remoteObject, error) {
	m, err := readManifest(ctx, b.s3, bucket, b.last, topic)
	if err != nil {
		return nil, err
	}
	var objs []remoteObject
	for _, s := range m.Segments {
		objs = append(objs, remoteObject{Key: s.Key(b.last, topic, 0, ".log"), Size: s.Size})
	}
	return objs, nil
}

// samsaRead starts an agent (its chunk cache starts empty) and reads the partition from
// offset 0 with one franz-go consumer, or with bare Fetch requests (raw); everything it reads
// comes from the bucket. When the agent can hold the whole log (secondReadSource), the
// franz-go read is followed by a second one in the same agent.
func (b *bench) samsaRead(ctx context.Context, raw bool) (readRun, error) {
	var r readRun
	a, err := b.startAgent(ctx, b.last, "info")
	if err != nil {
		return r, err
	}
	defer a.stop()
	end := b.records
	if _, _, err := a.waitStatus(ctx, topic, time.Minute, func(st partStatus) bool {
		return st.ManifestLoaded && st.RemoteStart == 0 && st.RemoteEnd == end && st.LocalStart == end
	}); err != nil {
		return r, err
	}
	time.Sleep(200 * time.Millisecond) // the uploader's start-up listing of the prefix
	m0, err := a.metrics(ctx)
	if err != nil {
		return r, err
	}
	if m0["samsa_tier_cache_bytes"] != 0 {
		return r, fmt.Errorf("the chunk cache is not empty at start: %v bytes", m0["samsa_tier_cache_bytes"])
	}
	name := fmt.Sprintf("read-%02d", b.starts)
	if raw {
		name += "-raw"
	}
	perf, err := startPerf(b.o.perfDir, name, a.pid())
	if err != nil {
		return r, err
	}
	snap := takeCPU(a.pid(), b.minio.PID())
	var c consumeResult
	if raw {
		c, err = rawConsume(ctx, a.kafka, topic, end, int32(b.o.fetchMax), b.sealed, b.crcs)
	} else {
		c, err = consume(ctx, a.kafka, topic, b.gen, end, int32(b.o.fetchMax))
	}
	c.CPU = snap.since(a.pid(), b.minio.PID())
	r.consumeResult = c
	if perr := perf.stop(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return r, err
	}
	m1, err := a.metrics(ctx)
	if err != nil {
		return r, err
	}
	r.counters = countersSince(m0, m1)
	if src := b.secondReadSource(); !raw && src != "" {
		// Every chunk of the log is still in the agent (in memory, or in the disk cache):
		// the same read again costs no GETs.
		snap := takeCPU(a.pid(), b.minio.PID())
		w, err := consume(ctx, a.kafka, topic, b.gen, end, int32(b.o.fetchMax))
		w.CPU = snap.since(a.pid(), b.minio.PID())
		if err != nil {
			return r, fmt.Errorf("second read: %w", err)
		}
		m2, err := a.metrics(ctx)
		if err != nil {
			return r, err
		}
		w.MBPerSec = float64(b.rep.Log.LogBytes) / 1e6 / w.Seconds
		r.Again = &secondRead{consumeResult: w, Source: src, counters: countersSince(m1, m2)}
	}
	_, _, r.Warnings = a.events()
	if err := a.stop(); err != nil {
		return r, err
	}
	logBytes := b.rep.Log.LogBytes
	if c.BatchBytes < logBytes || c.BatchBytes > logBytes+int64(64<<10) {
		return r, fmt.Errorf("the consumer read %d bytes in %d batches, the sealed segments hold %d", c.BatchBytes, c.Batches, logBytes)
	}
	if c.Records != end || c.LastOffset != end-1 {
		return r, fmt.Errorf("read %d records up to offset %d, want %d up to %d", c.Records, c.LastOffset, end, end-1)
	}
	r.MBPerSec = float64(logBytes) / 1e6 / c.Seconds
	return r, nil
}

// logChunks is the number of chunks of the measured log: what the agent's read-ahead slots
// must hold for a second read to find it all in memory.
func (b *bench) logChunks() int64 {
	var n int64
	for _, s := range b.sealed {
		n += (s.LogBytes + chunkBytes - 1) / chunkBytes
	}
	return n
}

// secondReadSource says where a second franz-go read in the same agent finds every chunk of
// the log: "memory" when the read-ahead slots (-read-ahead-bytes / 4 MiB) hold every chunk,
// "disk cache" when no chunk is held in memory (-read-ahead-bytes 0, every chunk written to
// the disk cache) and -cache-bytes holds them all; "" otherwise, when a second read would GET
// the log again and show nothing new.
func (b *bench) secondReadSource() string {
	switch {
	case b.o.readAhead/chunkBytes >= b.logChunks():
		return "memory"
	case b.o.readAhead == 0 && b.o.cacheBytes >= b.rep.Log.LogBytes+4*chunkBytes:
		return "disk cache"
	}
	return ""
}

// commandLine runs a command and returns its first output line, or "".
func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
