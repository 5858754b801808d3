package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// target is the goal: at least this fraction of the ceiling.
const target = 0.80

// report is the whole output: where it ran, with what, and the numbers.
type report struct {
	Meta    meta           `json:"meta"`
	Options map[string]any `json:"options"`
	Log     logInfo        `json:"log"`
	Produce produceResult  `json:"produce"`
	// LocalRead is the same consumer reading the same records from the agent's local
	// segments, before tiering: the reference for the consumer and the fetch path.
	LocalRead consumeResult `json:"local_read"`
	Upload    []uploadRound `json:"upload_rounds"`
	Read      []readRound   `json:"read_rounds"`
	Summary   summary       `json:"summary"`
}

type meta struct {
	benchkit.Machine
	SamsaVersion string `json:"samsa_version"`
	// SamsaBinary is -samsa-bin, or "" when the run built ./cmd/samsa from the working tree
	// (whose revision SamsaRevision is).
	SamsaBinary  string `json:"samsa_binary,omitempty"`
	MinIOVersion string `json:"minio_version"`
	Filesystem   string `json:"filesystem"` // of the work directory (agent data and MinIO data)
}

// logInfo is the measured log: the sealed segments holding offsets [0, records).
type logInfo struct {
	Records        int64 `json:"records"`
	RecordSize     int64 `json:"record_size"`
	Segments       int   `json:"segments"`
	LogBytes       int64 `json:"log_bytes"`
	IndexBytes     int64 `json:"index_bytes"`
	TimeIndexBytes int64 `json:"timeindex_bytes"`
	// Chunks is the number of chunks of the agent's chunk size the .log files span.
	Chunks int64 `json:"chunks"`
	// UploadBytes is what the agent uploads and counts in samsa_tier_upload_bytes_total, and
	// what the PutObject ceiling uploads: .log + .index + .timeindex.
	UploadBytes int64 `json:"upload_bytes"`
}

type produceResult struct {
	Seconds  float64 `json:"seconds"`
	MBPerSec float64 `json:"mb_per_s"` // of record values
}

type uploadRound struct {
	Round   int        `json:"round"`
	Ceiling loopResult `json:"ceiling_put"`
	Samsa   uploadRun  `json:"samsa"`
	// CeilingManifests is the PutObject loop plus the agent's manifest PUT after each
	// segment (run after Samsa, with its manifests): the agent's requests without its code.
	CeilingManifests loopResult `json:"ceiling_put_with_manifests"`
}

// uploadRun is one agent uploading the whole log to a new prefix.
type uploadRun struct {
	Prefix   string  `json:"prefix"`
	Seconds  float64 `json:"seconds"`
	Bytes    int64   `json:"bytes"` // samsa_tier_upload_bytes_total
	Segments int64   `json:"segments"`
	Errors   int64   `json:"errors"`
	MBPerSec float64 `json:"mb_per_s"`
	Timing   string  `json:"timing"`
	// SpawnToDone runs from starting the process to the status poll that saw it all uploaded.
	SpawnToDone        float64 `json:"spawn_to_done_seconds"`
	StartupToTieringOn float64 `json:"spawn_to_tiering_on_seconds"`
	// BeforeFirstPut: from "tiering on" to the first PUT (manifest GET, listing of the prefix,
	// reading the first segment for its CRC). PutSeconds: the PUTs of each segment's three
	// files and of the manifest. BetweenSegments: from one manifest PUT to the next segment's
	// first PUT (reading the segment for its CRC-32C and record count).
	BeforeFirstPut  float64  `json:"before_first_put_seconds"`
	PutSeconds      float64  `json:"put_seconds"`
	BetweenSegments float64  `json:"between_segments_seconds"`
	CPU             cpuUse   `json:"cpu"`
	ManifestChecked bool     `json:"manifest_checked"`
	Warnings        []string `json:"warnings,omitempty"`
}

type readRound struct {
	Round  int        `json:"round"`
	Whole  loopResult `json:"ceiling_get_whole"`
	Ranged loopResult `json:"ceiling_get_ranged"`
	Samsa  readRun    `json:"samsa"`
	// Raw is the same read with bare Fetch requests: no record decoding in the client.
	Raw readRun `json:"samsa_raw_fetch"`
}

// readRun is one consumer reading the whole log through an agent with an empty chunk cache.
type readRun struct {
	consumeResult
	counters
	Warnings []string `json:"warnings,omitempty"`
	// Again is the same franz-go read again in the same agent, when the agent holds every
	// chunk of the log after the first (secondReadSource): its remote read path without GETs.
	Again *secondRead `json:"second_read,omitempty"`
}

// secondRead is a franz-go read of the whole log in an agent that read it once already.
type secondRead struct {
	consumeResult
	counters
	// Source is where the chunks are: "memory" (the read-ahead slots hold the whole log) or
	// "disk cache" (-read-ahead-bytes 0 and a disk cache that holds the whole log).
	Source string `json:"source"`
}

// counters are the agent's tiering metrics over one read: differences of /metrics.
type counters struct {
	// CacheMisses is the chunks a fetch found neither in memory nor on disk nor being read
	// ahead, and fetched itself with a GET while the client waited; CacheHits the chunks it
	// found (possibly still loading ahead). Read-ahead GETs are counted in neither, only in
	// RemoteGetBytes.
	CacheMisses int64 `json:"cache_misses"`
	CacheHits   int64 `json:"cache_hits"`
	// RemoteGetBytes is every byte the ranged GETs fetched, read-ahead included
	// (samsa_tier_remote_get_bytes_total): the .log bytes when nothing is fetched twice.
	RemoteGetBytes   int64 `json:"remote_get_bytes"`
	RemoteReads      int64 `json:"remote_reads"` // fetches answered from the bucket
	RemoteReadBytes  int64 `json:"remote_read_bytes"`
	RemoteReadErrors int64 `json:"remote_read_errors"`
	// CacheWrites is the chunks written to the on-disk chunk cache
	// (samsa_tier_cache_writes_total), Spills those of them that left memory read in part
	// (samsa_tier_read_ahead_spills_total); a sequential read should write none.
	CacheWrites int64 `json:"cache_writes"`
	Spills      int64 `json:"read_ahead_spills"`
	// MemoryBytes is the record bytes the Kafka server wrote into Fetch responses from memory
	// chunks (samsa_kafka_fetch_memory_bytes_total) rather than with sendfile from files.
	MemoryBytes int64 `json:"fetch_memory_bytes"`
}

// countersSince returns the counters between two scrapes of the agent's metrics.
func countersSince(m0, m1 map[string]float64) counters {
	d := func(k string) int64 { return int64(m1[k] - m0[k]) }
	return counters{
		CacheMisses: d("samsa_tier_cache_misses_total"), CacheHits: d("samsa_tier_cache_hits_total"),
		RemoteGetBytes: d("samsa_tier_remote_get_bytes_total"), RemoteReads: d("samsa_tier_remote_reads_total"),
		RemoteReadBytes: d("samsa_tier_remote_read_bytes_total"), RemoteReadErrors: d("samsa_tier_remote_read_errors_total"),
		CacheWrites: d("samsa_tier_cache_writes_total"), Spills: d("samsa_tier_read_ahead_spills_total"),
		MemoryBytes: d("samsa_kafka_fetch_memory_bytes_total"),
	}
}

// summary holds the medians over the rounds and the verdicts.
type summary struct {
	UploadSamsa   float64 `json:"upload_samsa_mb_per_s"`
	UploadCeiling float64 `json:"upload_ceiling_mb_per_s"`
	UploadRatio   float64 `json:"upload_ratio"`
	UploadMet     bool    `json:"upload_target_met"`
	// UploadManifests is the PutObject loop with the agent's manifest PUTs; UploadRatioManifests
	// samsa ÷ that.
	UploadManifests      float64 `json:"upload_ceiling_with_manifests_mb_per_s"`
	UploadRatioManifests float64 `json:"upload_ratio_with_manifests"`
	ReadSamsa            float64 `json:"read_samsa_mb_per_s"`
	ReadWhole            float64 `json:"read_ceiling_whole_mb_per_s"`
	ReadRanged           float64 `json:"read_ceiling_ranged_mb_per_s"`
	// ReadRatio is samsa ÷ the faster of the two GET loops; the target is judged on it.
	ReadRatio       float64 `json:"read_ratio"`
	ReadRatioWhole  float64 `json:"read_ratio_whole"`
	ReadRatioRanged float64 `json:"read_ratio_ranged"`
	ReadMet         bool    `json:"read_target_met"`
	// ReadRaw is the cold read with bare Fetch requests; ReadRawRatio it ÷ the faster loop.
	ReadRaw      float64 `json:"read_raw_fetch_mb_per_s"`
	ReadRawRatio float64 `json:"read_raw_fetch_ratio"`
	// ReadGetRatioMin and ReadGetRatioMax bound the GET bytes ÷ .log bytes over the cold
	// reads (1 when every chunk is fetched once); ReadCacheWrites is their disk-cache writes.
	ReadGetRatioMin float64 `json:"read_get_bytes_ratio_min"`
	ReadGetRatioMax float64 `json:"read_get_bytes_ratio_max"`
	ReadCacheWrites int64   `json:"read_cache_writes"`
	// SecondRead is the median of the second reads (0 without them), from SecondReadSource.
	SecondRead       float64 `json:"second_read_mb_per_s,omitempty"`
	SecondReadSource string  `json:"second_read_source,omitempty"`
}

func (r *report) summarize() {
	var us, uc, um, rs, rw, rr, rx []float64
	for _, u := range r.Upload {
		us, uc = append(us, u.Samsa.MBPerSec), append(uc, u.Ceiling.MBPerSec)
		um = append(um, u.CeilingManifests.MBPerSec)
	}
	for _, x := range r.Read {
		rs, rw, rr = append(rs, x.Samsa.MBPerSec), append(rw, x.Whole.MBPerSec), append(rr, x.Ranged.MBPerSec)
		rx = append(rx, x.Raw.MBPerSec)
	}
	s := &r.Summary
	s.UploadSamsa, s.UploadCeiling = benchkit.Median(us), benchkit.Median(uc)
	s.ReadSamsa, s.ReadWhole, s.ReadRanged = benchkit.Median(rs), benchkit.Median(rw), benchkit.Median(rr)
	s.UploadRatio = s.UploadSamsa / s.UploadCeiling
	s.UploadManifests = benchkit.Median(um)
	s.UploadRatioManifests = s.UploadSamsa / s.UploadManifests
	s.ReadRatioWhole, s.ReadRatioRanged = s.ReadSamsa/s.ReadWhole, s.ReadSamsa/s.ReadRanged
	s.ReadRatio = s.ReadSamsa / max(s.ReadWhole, s.ReadRanged)
	s.ReadRaw = benchkit.Median(rx)
	s.ReadRawRatio = s.ReadRaw / max(s.ReadWhole, s.ReadRanged)
	s.UploadMet, s.ReadMet = s.UploadRatio >= target, s.ReadRatio >= target
	var again []float64
	for i, x := range r.Read {
		for j, c := range []counters{x.Samsa.counters, x.Raw.counters} {
			g := float64(c.RemoteGetBytes) / float64(r.Log.LogBytes)
			if i+j == 0 {
				s.ReadGetRatioMin, s.ReadGetRatioMax = g, g
			}
			s.ReadGetRatioMin, s.ReadGetRatioMax = min(s.ReadGetRatioMin, g), max(s.ReadGetRatioMax, g)
			s.ReadCacheWrites += c.CacheWrites
		}
		if a := x.Samsa.Again; a != nil {
			again = append(again, a.MBPerSec)
			s.SecondReadSource = a.Source
		}
	}
	if len(again) > 0 {
		s.SecondRead = benchkit.Median(again)
	}
}

// ratioRange writes "1.00×", or "1.00–1.25×" when lo and hi differ at two decimals.
func ratioRange(lo, hi float64) string {
	if a, b := fmt.Sprintf("%.2f", lo), fmt.Sprintf("%.2f", hi); a != b {
		return a + "–" + b + "×"
	}
	return fmt.Sprintf("%.2f×", lo)
}

func verdict(met bool, ratio float64) string {
	if met {
		return fmt.Sprintf("met (%.0f%%)", 100*ratio)
	}
	return fmt.Sprintf("**not met** (%.0f%%)", 100*ratio)
}

// writeMarkdown prints the tables and their notes.
func (r *report) writeMarkdown(w io.Writer) {
	var b bytes.Buffer
	s := &r.Summary
	n := len(r.Upload)
	fmt.Fprintf(&b, "| operation (median of %s) | samsa | ceiling | samsa ÷ ceiling | target | met? |\n|---|---:|---:|---:|---|---|\n", benchkit.Plural(n, "round"))
	fmt.Fprintf(&b, "| upload, MB/s | %.1f | %.1f (PutObject loop) | %.0f%% | ≥ 80%% of the ceiling | %s |\n",
		s.UploadSamsa, s.UploadCeiling, 100*s.UploadRatio, verdict(s.UploadMet, s.UploadRatio))
	fmt.Fprintf(&b, "| upload, MB/s | %.1f | %.1f (PutObject loop + the agent's manifest PUT after each segment) | %.0f%% | diagnostic | |\n",
		s.UploadSamsa, s.UploadManifests, 100*s.UploadRatioManifests)
	fmt.Fprintf(&b, "| cold read, one franz-go consumer, MB/s | %.1f | %.1f (GetObject loop, whole objects) | %.0f%% | ≥ 80%% of the faster GET loop | %s |\n",
		s.ReadSamsa, s.ReadWhole, 100*s.ReadRatioWhole, verdict(s.ReadMet, s.ReadRatio))
	fmt.Fprintf(&b, "| cold read, one franz-go consumer, MB/s | %.1f | %.1f (GetObject loop, %s ranges) | %.0f%% | | |\n",
		s.ReadSamsa, s.ReadRanged, benchkit.FormatBytes(chunkBytes), 100*s.ReadRatioRanged)
	fmt.Fprintf(&b, "| cold read, bare Fetch requests (no record decoding), MB/s | %.1f | %.1f (the faster GET loop) | %.0f%% | diagnostic | |\n",
		s.ReadRaw, max(s.ReadWhole, s.ReadRanged), 100*s.ReadRawRatio)
	if s.SecondReadSource != "" {
		fmt.Fprintf(&b, "| read again in the same agent, every chunk in its %s (no GETs), one franz-go consumer, MB/s | %.1f | | | diagnostic | |\n", s.SecondReadSource, s.SecondRead)
	}
	fmt.Fprintf(&b, "| read from the agent's local segments, one franz-go consumer (page cache, before tiering), MB/s | %.1f | | | reference | |\n", r.LocalRead.MBPerSec)
	met := 0
	for _, m := range []bool{s.UploadMet, s.ReadMet} {
		if m {
			met++
		}
	}
	fmt.Fprintf(&b, "\nTargets met: %d of 2 (upload %.0f%%, cold read %.0f%% of its ceiling; medians of %s).\n", met, 100*s.UploadRatio, 100*s.ReadRatio, benchkit.Plural(n, "round"))
	if len(r.Read) > 0 {
		fmt.Fprintf(&b, "\nCold reads (tiering.read_ahead_bytes %v): the agent's GETs fetched %s the .log bytes; %s written to the on-disk chunk cache.\n",
			r.Options["read_ahead_bytes"], ratioRange(s.ReadGetRatioMin, s.ReadGetRatioMax), benchkit.Plural(int(s.ReadCacheWrites), "chunk"))
	}
	fmt.Fprintf(&b, "\n| round | upload samsa MB/s | upload ceiling MB/s | ratio | cold read samsa (franz-go / raw Fetch) MB/s | whole GETs MB/s | %s GETs MB/s | ratio franz-go (÷ faster) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n", benchkit.FormatBytes(chunkBytes))
	for i := range max(len(r.Upload), len(r.Read)) {
		fmt.Fprintf(&b, "| %d |", i+1)
		if i < len(r.Upload) {
			u := r.Upload[i]
			fmt.Fprintf(&b, " %.1f | %.1f | %.0f%% |", u.Samsa.MBPerSec, u.Ceiling.MBPerSec, 100*u.Samsa.MBPerSec/u.Ceiling.MBPerSec)
		} else {
			b.WriteString(" | | |")
		}
		if i < len(r.Read) {
			x := r.Read[i]
			fmt.Fprintf(&b, " %.1f / %.1f | %.1f | %.1f | %.0f%% |\n", x.Samsa.MBPerSec, x.Raw.MBPerSec, x.Whole.MBPerSec, x.Ranged.MBPerSec,
				100*x.Samsa.MBPerSec/max(x.Whole.MBPerSec, x.Ranged.MBPerSec))
		} else {
			b.WriteString(" | | | |\n")
		}
	}
	r.writeDetails(&b)
	r.writeNotes(&b)
	w.Write(b.Bytes())
}

// writeDetails prints where the time went, per round.
func (r *report) writeDetails(b *bytes.Buffer) {
	b.WriteString("\nUpload, where the time went (seconds; CPU seconds of the agent / MinIO / this process):\n\n")
	b.WriteString("| round | samsa total | before 1st PUT | PUTs (3 files + manifest, per segment) | between segments (read + CRC-32C) | samsa CPU | ceiling total | ceiling CPU | ceiling + manifests total | CPU | other work, CPUs busy (samsa / ceiling / + manifests) |\n|---:|---:|---:|---:|---:|---|---:|---|---:|---|---|\n")
	for _, u := range r.Upload {
		s, c, m := u.Samsa, u.Ceiling, u.CeilingManifests
		fmt.Fprintf(b, "| %d | %.2f | %.3f | %.2f | %.3f | %s | %.2f | %s | %.2f | %s | %.2f / %.2f / %.2f |\n", u.Round, s.Seconds, s.BeforeFirstPut,
			s.PutSeconds, s.BetweenSegments, s.CPU.triple(), c.Seconds, c.CPU.triple(), m.Seconds, m.CPU.triple(), s.CPU.OtherCores, c.CPU.OtherCores, m.CPU.OtherCores)
	}
	b.WriteString("\nReads, where the time went (seconds; CPU seconds of the agent / MinIO / this process; read-ahead GETs count only in the GET MiB, not as misses):\n\n")
	b.WriteString("| round | reader | total | waiting for fetch responses | CPU | chunk GETs a fetch waited for (misses) / hits, or GETs | GET MiB (÷ .log) | MiB written from memory | disk-cache writes | other work, CPUs busy |\n|---:|---|---:|---:|---|---|---:|---:|---:|---:|\n")
	l := r.LocalRead
	fmt.Fprintf(b, "| – | local segments, franz-go (before tiering) | %.2f | %.2f (%d fetches) | %s | – | – | – | – | %.2f |\n",
		l.Seconds, l.FetchWaitSeconds, l.Fetches, l.CPU.triple(), l.CPU.OtherCores)
	logBytes := r.Log.LogBytes
	row := func(round int, name string, c consumeResult, k counters) {
		fmt.Fprintf(b, "| %d | %s | %.2f | %.2f (%d fetches) | %s | %d / %d | %.1f (%.2f) | %.1f | %d | %.2f |\n", round, name, c.Seconds, c.FetchWaitSeconds,
			c.Fetches, c.CPU.triple(), k.CacheMisses, k.CacheHits, benchkit.MiB(k.RemoteGetBytes), float64(k.RemoteGetBytes)/float64(logBytes),
			benchkit.MiB(k.MemoryBytes), k.CacheWrites, c.CPU.OtherCores)
	}
	for _, x := range r.Read {
		row(x.Round, "samsa cold, franz-go", x.Samsa.consumeResult, x.Samsa.counters)
		row(x.Round, "samsa cold, raw Fetch", x.Raw.consumeResult, x.Raw.counters)
		if a := x.Samsa.Again; a != nil {
			row(x.Round, "samsa, read again ("+a.Source+"), franz-go", a.consumeResult, a.counters)
		}
		for _, g := range []struct {
			name string
			l    loopResult
		}{{"GetObject, whole objects", x.Whole}, {"GetObject, " + benchkit.FormatBytes(chunkBytes) + " ranges", x.Ranged}} {
			fmt.Fprintf(b, "| %d | %s | %.2f | – | %s | %d | %.1f (%.2f) | – | – | %.2f |\n", x.Round, g.name, g.l.Seconds, g.l.CPU.triple(), g.l.Requests,
				benchkit.MiB(g.l.Bytes), float64(g.l.Bytes)/float64(logBytes), g.l.CPU.OtherCores)
		}
	}
}

func (c cpuUse) triple() string { return fmt.Sprintf("%.2f / %.2f / %.2f", c.Agent, c.MinIO, c.Client) }

func (r *report) writeNotes(b *bytes.Buffer) {
	l := &r.Log
	fmt.Fprintf(b, "\nNotes:\n")
	fmt.Fprintf(b, "- Log: one partition of a remote.storage.enable topic, segment.bytes %v; %s records of %s random (incompressible) values, produced by franz-go (acks=all, idempotent, 5 ms linger, no compression; %.1f MB/s of values through an agent without tiering). The measured log is the %s sealed segments: %.1f MiB of .log plus %.1f KiB of .index/.timeindex. A filler record (segment.ms=1) rolled the last segment so that every measured record is in a sealed segment.\n",
		r.Options["segment_bytes"], benchkit.FormatInt(float64(l.Records)), benchkit.FormatBytes(l.RecordSize), r.Produce.MBPerSec, benchkit.FormatInt(float64(l.Segments)), benchkit.MiB(l.LogBytes), float64(l.IndexBytes+l.TimeIndexBytes)/1024)
	fmt.Fprintf(b, "- Upload (samsa): an agent is started on the existing data directory with tiering to a new, empty prefix, so its uploader finds the whole log not yet uploaded and uploads it, one segment at a time (it uploads sequentially: per segment a pass over the .log for its CRC-32C, then PUTs of .log, .index, .timeindex and a new manifest.json). Timed from the agent's \"tiering on\" log line (the uploader starts right after it) to its last \"segment uploaded\" line; MB/s = samsa_tier_upload_bytes_total (.log + .index + .timeindex, %.1f MB) ÷ that time. Checked: the manifest lists every sealed segment with the local file's size and CRC-32C.\n",
		float64(l.UploadBytes)/1e6)
	fmt.Fprintf(b, "- Upload (ceiling): the same %s files uploaded from the agent's data directory by this process with minio-go PutObject, one after the other, with the agent's options (%s part size, so each object is one PUT; a SectionReader of the file), to another prefix of the same bucket. It does not write manifests or compute CRCs. \"+ manifests\" (diagnostic, run after the agent's upload): the same loop plus, after each segment, a PUT of the manifest the agent wrote at that point (same key, same bytes): the agent's requests without its code.\n",
		benchkit.FormatInt(float64(3*l.Segments)), benchkit.FormatBytes(partSize))
	fmt.Fprintf(b, "- Cold read (samsa): the agent's local copies were deleted (local.retention.bytes=1 once uploaded), then for each round an agent is started (its chunk cache is cleared at start) and one franz-go consumer reads offsets [0, %s) from offset 0 (FetchMaxBytes = FetchMaxPartitionBytes = %s); every record is checked byte for byte against what was produced. Timed from creating the client to the last record; MB/s = the .log bytes (the record batches read) ÷ that time. The agent serves the fetches from %s chunks held in tiering.read_ahead_bytes (%v) of reused memory slots: a chunk a fetch needs and nobody fetched yet is read with a ranged GET while the fetch waits (a miss), and every free slot is filled ahead of the reader, across segment boundaries, with GETs of up to 8MiB; the Fetch responses are written from memory (write(2)), and a chunk goes to the on-disk cache only when it leaves memory read in part (with read_ahead_bytes 0, every chunk goes through the disk cache and is sent with sendfile). So GET MiB ÷ .log ≈ 1.00 means nothing was fetched twice, and a sequential read writes no chunk to the disk. \"raw Fetch\": the same read by bare Fetch v12 requests, one at a time, without decoding records (each batch's CRC-32C checked, and the batches of each segment checked against its .log file's CRC-32C), with a fresh agent again: what the agent delivers when the client does little work. \"local segments\": the franz-go read before tiering, from the agent's local files in the page cache (sendfile): the consumer's and the fetch path's own limit on this machine.\n",
		benchkit.FormatInt(float64(l.Records)), r.Options["fetch_max_bytes"], benchkit.FormatBytes(chunkBytes), r.Options["read_ahead_bytes"])
	fmt.Fprintf(b, "- Cold read (ceiling): the same .log objects (the agent's upload) read by this process with minio-go GetObject, one after the other, whole and in %s ranges, into io.Discard. The target is judged on the faster of the two. \"read again\" (diagnostic, only when the agent can hold the whole log: -read-ahead-bytes at least its %s chunks × %s, or -read-ahead-bytes 0 and -cache-bytes larger than the log): the franz-go read again in the same agent right after the cold one, every chunk still in memory (or in the disk cache): the agent's remote read path without GETs.\n",
		benchkit.FormatBytes(chunkBytes), benchkit.FormatInt(float64(r.Log.Chunks)), benchkit.FormatBytes(chunkBytes))
	fmt.Fprintf(b, "- Everything runs on one machine: MinIO (one local drive, data in the work directory), the agent and this process (clients and ceiling loops) share its CPUs; MinIO serves reads mostly from the page cache. \"Other work\" is the machine's busy time not spent by these three, in CPUs.\n")
	m := &r.Meta
	samsa := fmt.Sprintf("samsa built from the working tree at %s (%s)", m.SamsaRevision, m.SamsaVersion)
	if m.SamsaBinary != "" {
		samsa = fmt.Sprintf("samsa binary %s (%s)", m.SamsaBinary, m.SamsaVersion)
		if m.SamsaRevision != "" {
			samsa = fmt.Sprintf("samsa binary %s (%s; working tree at %s)", m.SamsaBinary, m.SamsaVersion, m.SamsaRevision)
		}
	}
	fmt.Fprintf(b, "- Machine: %d CPUs (%s), %.0f MiB RAM, kernel %s, work directory on %s; %s; %s; MinIO %s. Load average %s at start, %s at end. MB = 10^6 bytes, MiB = 2^20 bytes.\n",
		m.NProc, m.CPUModel, m.MemTotalMiB, m.Kernel, m.Filesystem, m.GoVersion, samsa, m.MinIOVersion, m.LoadAvgStart, m.LoadAvgEnd)
	var warns []string
	for _, u := range r.Upload {
		warns = append(warns, u.Samsa.Warnings...)
	}
	for _, x := range r.Read {
		warns = append(warns, x.Samsa.Warnings...)
	}
	if len(warns) > 0 {
		fmt.Fprintf(b, "- The agent logged %s:\n", benchkit.Plural(len(warns), "warning"))
		for _, w := range warns[:min(len(warns), 5)] {
			fmt.Fprintf(b, "  `%s`\n", strings.TrimSpace(w))
		}
	}
}

func collectMeta(args []string, dir string) meta {
	return meta{Machine: benchkit.DescribeMachine("tiering", args), Filesystem: benchkit.FilesystemOf(dir)}
}
