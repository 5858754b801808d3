package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Fuzz targets of what the commit log reads from disk: a partition directory (segments, their
// offset and time indexes, the log-start-offset, delete-records-offset and
// cleaner-checkpoint.json files, a committed cleaner swap), the store's own files (meta.json, producer_ids.json, topic.json) and topic
// config values. The producer snapshot decoder has its own target (producersnapshot_test.go).
//
// Seed corpora are in testdata/fuzz/<target>; TestWriteCommitlogFuzzCorpus rewrites them.

// Bits of FuzzOpenPartition's mode argument.
const (
	modeClean      = 1 << iota // open as after a clean shutdown: indexes are trusted
	modeSwap                   // log1 is a committed cleaner rewrite of segment 0 (.log.swap)
	modePread                  // indexes through pread instead of mmap
	modeDenseIndex             // index.interval.bytes 0: an index entry per batch
	// modeSeal writes the checkpoint files with valid checksums around the fuzzed values (a
	// decimal offset; a JSON object), so that what lies behind the checksums gets fuzzed too.
	modeSeal
)

// fuzzStores are the stores FuzzOpenPartition opens partitions in (mmap and pread indexes),
// opened once per fuzzing process, with fsyncs turned off to keep each exec fast.
type fuzzStores struct {
	mmap, pread *Store
	root        string
	n           atomic.Int64
}

func openFuzzStores(f *testing.F) *fuzzStores {
	root := fuzzTempDir(f)
	open := func(name string, pread bool) *Store {
		st, err := Open(Options{Dir: filepath.Join(root, name), ForcePread: pread, Logger: slog.New(slog.DiscardHandler),
			RetentionCheckInterval: time.Hour, CleanerBackoff: time.Hour})
		if err != nil {
			f.Fatal(err)
		}
		st.fsync = fsyncer{file: func(*os.File) error { return nil }, dir: func(string) error { return nil }}
		f.Cleanup(func() { st.Close() })
		return st
	}
	return &fuzzStores{mmap: open("mmap", false), pread: open("pread", true), root: root}
}

// fuzzTempDir is a temporary directory in memory (/dev/shm) when there is one: the fuzz
// targets that write files then run at memory speed.
func fuzzTempDir(f *testing.F) string {
	dir, err := os.MkdirTemp("/dev/shm", "samsa-fuzz")
	if err != nil {
		return f.TempDir()
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// partitionFiles are the files of a fuzzed partition directory.
type partitionFiles struct {
	log0, index0, timeindex0 []byte // segment 0
	log1                     []byte // segment base1 (or, with modeSwap, 00..0.log.swap)
	base1                    uint32
	// log-start-offset, cleaner-checkpoint.json, delete-records-offset ("" = absent)
	logStart, checkpoint, deleteRecords string
	mode                                uint8
}

func (p *partitionFiles) args() []any {
	return []any{p.log0, p.index0, p.timeindex0, p.log1, p.base1, p.logStart, p.checkpoint, p.deleteRecords, p.mode}
}

// checkpointFiles returns the partition's checkpoint files as written (sealed with modeSeal),
// by name; absent files are left out.
func (p *partitionFiles) checkpointFiles() map[string][]byte {
	files := map[string][]byte{}
	for name, content := range map[string]string{logStartName: p.logStart, deletedBelowName: p.deleteRecords, cleanerCheckpointName: p.checkpoint} {
		if content == "" {
			continue
		}
		data := []byte(content)
		if p.mode&modeSeal != 0 {
			if name == cleanerCheckpointName {
				data = sealCleanerCheckpoint(content)
			} else {
				data = sealOffsetFile(content)
			}
		}
		files[name] = data
	}
	return files
}

// sealOffsetFile writes a decimal number (even a negative one) in the checked offset format;
// anything else stays as it is.
func sealOffsetFile(s string) []byte {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return []byte(s)
	}
	b := []byte(offsetFileHeader)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\n')
	return fmt.Appendf(b, "%s%08x\n", offsetFileCRC, crc32.Checksum(b, crc32c))
}

// sealCleanerCheckpoint adds a version (unless s starts with one) and a valid checksum field
// to the JSON object s, whatever it holds.
func sealCleanerCheckpoint(s string) []byte {
	body := strings.TrimSuffix(strings.TrimRight(s, " \n"), "}")
	if !strings.HasPrefix(body, `{"version":`) {
		if rest := strings.TrimPrefix(body, "{"); rest != "" {
			body = `{"version":1,` + rest
		} else {
			body = `{"version":1`
		}
	}
	return fmt.Appendf([]byte(body), "%s%d}\n", cleanerCheckpointCRC, crc32.Checksum([]byte(body), crc32c))
}

// write lays the files out in dir.
func (p *partitionFiles) write(dir string) error {
	files := map[string][]byte{
		segName(0, ".log"): p.log0, segName(0, ".index"): p.index0, segName(0, ".timeindex"): p.timeindex0,
	}
	if len(p.log1) > 0 {
		if p.mode&modeSwap != 0 {
			files[segName(0, ".log")+swapSuffix] = p.log1
		} else if p.base1 > 0 {
			files[segName(int64(p.base1), ".log")] = p.log1
		}
	}
	maps.Copy(files, p.checkpointFiles())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// FuzzOpenPartition opens a partition directory made of fuzzed segment, index and checkpoint
// files, as after a clean shutdown or a crash, then reads all of it. Nothing may panic; every
// error is ErrCorrupt (there are no I/O errors to report); the recovered offsets are ordered;
// every read range lies inside its file and, after a crash recovery (which checks every batch),
// makes progress; and a second recovery of the recovered directory finds the same log. The
// checkpoint files never wipe the log unless log-start-offset passed its checksum; what the
// open leaves of them on disk is either untouched (rejected) or checked, and the cleaner
// checkpoint it holds is valid and within the log (checkCheckpoints).
func FuzzOpenPartition(f *testing.F) {
	for _, s := range partitionSeeds(f) {
		f.Add(s.log0, s.index0, s.timeindex0, s.log1, s.base1, s.logStart, s.checkpoint, s.deleteRecords, s.mode)
	}
	stores := openFuzzStores(f)
	f.Fuzz(func(t *testing.T, log0, index0, timeindex0, log1 []byte, base1 uint32, logStart, checkpoint, deleteRecords string, mode uint8) {
		p := partitionFiles{log0, index0, timeindex0, log1, base1, logStart, checkpoint, deleteRecords, mode}
		st := stores.mmap
		if mode&modePread != 0 {
			st = stores.pread
		}
		dir := filepath.Join(stores.root, "p", fmt.Sprint(stores.n.Add(1)))
		defer os.RemoveAll(dir)
		if err := p.write(dir); err != nil {
			t.Fatal(err)
		}
		// Small indexes: each open preallocates (and maps) them whole.
		overrides := map[string]string{"segment.index.bytes": "4096", "index.interval.bytes": "256"}
		if mode&modeDenseIndex != 0 {
			overrides["index.interval.bytes"] = "0"
		}
		cfg := buildTopicConfig(nil, overrides)
		clean := mode&modeClean != 0
		first := checkOpenPartition(t, st, dir, &cfg, clean, int64(base1), &p)
		if clean || first == nil {
			return
		}
		// Recovery is idempotent: what one recovery kept, the next keeps.
		again := checkOpenPartition(t, st, dir, &cfg, false, int64(base1), nil)
		if again == nil || *again != *first {
			t.Fatalf("second recovery found %+v, the first %+v", again, first)
		}
	})
}

// partitionBounds are a recovered partition's offsets.
type partitionBounds struct{ start, end int64 }

// checkOpenPartition opens the partition in dir, reads it through and closes it. It returns
// the log's bounds, or nil when the open failed (with ErrCorrupt). files, if set, are the
// files the directory was made of, for checkCheckpoints.
func checkOpenPartition(t *testing.T, st *Store, dir string, cfg *TopicConfig, clean bool, ts int64, files *partitionFiles) *partitionBounds {
	l, err := openLog(st, "fuzz", 0, dir, cfg, clean)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v, want nil or ErrCorrupt", err)
		}
		return nil
	}
	defer l.close()
	start, hw, leo := l.LogStartOffset(), l.HighWatermark(), l.LogEndOffset()
	if start < 0 || start > hw || hw != leo {
		t.Fatalf("recovered offsets: log start %d, high watermark %d, log end %d", start, hw, leo)
	}
	l.mu.RLock()
	segs := slices.Clone(l.segments)
	l.mu.RUnlock()
	for i, s := range segs {
		if i > 0 && s.base <= segs[i-1].base {
			t.Fatalf("segment %d base %d after %d", i, s.base, segs[i-1].base)
		}
		if s.next < s.base {
			t.Fatalf("segment %d: next offset %d below its base %d", i, s.next, s.base)
		}
	}
	checkCheckpoints(t, l, segs, files)
	readThrough(t, l, start, hw, !clean)
	if off, _, err := l.OffsetForTimestamp(ts); err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("offset for timestamp %d: %v", ts, err)
	} else if err == nil && off != -1 && (off < start || off >= hw) {
		t.Fatalf("offset for timestamp %d: %d outside %d..%d", ts, off, start, hw)
	}
	if off, _ := l.MaxTimestamp(); off != -1 && (off < 0 || off >= hw) {
		t.Fatalf("max timestamp at offset %d, log ends at %d", off, hw)
	}
	return &partitionBounds{start, leo}
}

// checkCheckpoints checks what an open made of the partition's checkpoint files: the cleaner
// checkpoint it holds is valid and within the log, and the same is on disk, with a checksum;
// when files is set (the first open), an offset file that failed its check was left as it was
// and one that loaded was rewritten with a checksum, and the log was not restarted (segment 0
// deleted) unless log-start-offset held a checked value.
func checkCheckpoints(t *testing.T, l *Log, segs []*segment, files *partitionFiles) {
	l.maintMu.Lock()
	ck, err := l.cleanerCheckpoint()
	l.maintMu.Unlock()
	if err != nil {
		t.Fatalf("cleaner checkpoint after open: %v", err)
	}
	end := l.LogEndOffset()
	if err := ck.validate(); err != nil {
		t.Fatalf("open kept an invalid cleaner checkpoint %+v: %v", ck, err)
	}
	if n := len(ck.Cleaned); ck.FirstDirty > end || ck.GapsBelow > end || n > 0 && ck.Cleaned[n-1].End > end {
		t.Fatalf("open kept a cleaner checkpoint past the log end %d: %+v", end, ck)
	}
	if data, err := os.ReadFile(filepath.Join(l.dir, cleanerCheckpointName)); err == nil {
		onDisk, err := decodeCleanerCheckpoint(data)
		ck.unchecked = false
		if err != nil || onDisk.unchecked || !reflect.DeepEqual(onDisk, ck) {
			t.Fatalf("cleaner checkpoint on disk %q (%+v, %v), in memory %+v", data, onDisk, err, ck)
		}
	}
	if files == nil {
		return
	}
	written := files.checkpointFiles()
	for _, name := range []string{logStartName, deletedBelowName} {
		was, ok := written[name]
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(l.dir, name))
		if err != nil {
			t.Fatalf("%s after open: %v", name, err)
		}
		if _, checked, err := decodeOffsetFile(data); !checked && !slices.Equal(data, was) {
			t.Fatalf("%s was %q, the open left %q (%v)", name, was, data, err)
		}
	}
	if _, checked, err := decodeOffsetFile(written[logStartName]); (err != nil || !checked) && segs[0].base != 0 {
		t.Fatalf("the log restarted at %d, but log-start-offset %q has no valid checksum", segs[0].base, written[logStartName])
	}
}

// readThrough reads from start to hw as a consumer does. checked: recovery CRC-checked every
// batch and their offsets, so every read must make progress.
func readThrough(t *testing.T, l *Log, off, hw int64, checked bool) {
	for i := 0; off < hw && i < 1000; i++ {
		res, err := l.Read(off, 1<<20, true, ReadToHighWatermark)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read at %d: %v, want nil or ErrCorrupt", off, err)
			}
			return
		}
		next := off
		for _, r := range res.Ranges {
			fi, err := r.File.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if r.Pos < 0 || r.Len <= 0 || r.Pos+r.Len > fi.Size() {
				t.Fatalf("read at %d: range %d+%d of a %d byte file", off, r.Pos, r.Len, fi.Size())
			}
			buf := make([]byte, r.Len)
			if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
				t.Fatal(err)
			}
			if err := batch.Split(buf, func(b []byte) error {
				h, err := batch.ParseHeader(b)
				if err == nil {
					next = max(next, h.LastOffset()+1)
				}
				return err
			}); err != nil && checked {
				t.Fatalf("read at %d returned bytes that do not split into batches: %v", off, err)
			}
		}
		res.Release()
		if next <= off {
			if checked {
				t.Fatalf("read at %d (high watermark %d) made no progress", off, hw)
			}
			return
		}
		off = next
	}
}

// partitionSeeds builds partition directories with a real log: several segments, dense and
// sparse indexes, a DeleteRecords log start, a compacted topic's cleaner checkpoint.
func partitionSeeds(tb testing.TB) map[string]partitionFiles {
	dir, err := os.MkdirTemp("", "samsa-fuzz-seed")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: time.Hour, CleanerBackoff: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	top, err := st.CreateTopic("seed", 1, map[string]string{"segment.bytes": "1024", "index.interval.bytes": "0"}, false)
	if err != nil {
		tb.Fatal(err)
	}
	l := top.Partition(0)
	for i := 0; l.NumSegments() < 2; i++ {
		if _, err := l.Append(makeBatch(tb, 1+i%3, fmt.Sprintf("v%d", i), 1_700_000_000_000+int64(i)*1000)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}
	pdir := partitionDir(filepath.Join(dir, topicsDir, "seed"), 0)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(pdir, name))
		if err != nil {
			tb.Fatal(err)
		}
		return data
	}
	bases, err := listSegments(pdir)
	if err != nil || len(bases) != 2 {
		tb.Fatalf("seed segments %v: %v", bases, err)
	}
	two := partitionFiles{
		log0: read(segName(0, ".log")), index0: read(segName(0, ".index")), timeindex0: read(segName(0, ".timeindex")),
		log1: read(segName(bases[1], ".log")), base1: uint32(bases[1]),
	}
	seeds := map[string]partitionFiles{}
	for _, mode := range []uint8{0, modeClean, modeClean | modePread, modeDenseIndex} {
		s := two
		s.mode = mode
		seeds[fmt.Sprintf("two_segments_mode%d", mode)] = s
	}
	one := partitionFiles{log0: two.log0, index0: two.index0, timeindex0: two.timeindex0, mode: modeClean}
	seeds["one_segment_clean"] = one
	torn := one
	torn.log0, torn.mode = two.log0[:len(two.log0)-7], 0
	seeds["torn_tail"] = torn
	flipped := two
	flipped.log0 = slices.Clone(two.log0)
	flipped.log0[len(flipped.log0)/2] ^= 0x10
	flipped.mode = modeClean
	seeds["flipped_bit_clean"] = flipped
	badIndex := two
	badIndex.index0 = []byte{0, 0, 0, 9, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0}
	badIndex.mode = modeClean
	seeds["index_past_end"] = badIndex
	// Checkpoint files: an earlier version's (bare numbers, JSON without a checksum), checked
	// ones, damaged ones, and (modeSeal) checked ones whose content is wrong.
	with := func(base partitionFiles, mode uint8, logStart, deleteRecords, checkpoint string) partitionFiles {
		base.logStart, base.deleteRecords, base.checkpoint, base.mode = logStart, deleteRecords, checkpoint, mode
		return base
	}
	flip := func(data []byte, i int, bit byte) string {
		data = slices.Clone(data)
		data[i] ^= bit
		return string(data)
	}
	v1 := func(n int64) string { return string(encodeOffsetFile(n)) }
	seeds["log_start_offset"] = with(two, modeClean, "3\n", "", "")
	seeds["log_start_past_end"] = with(one, 0, "999\n", "", "")
	seeds["log_start_offset_v1"] = with(two, modeClean, v1(3), "", "")
	seeds["log_start_past_end_v1"] = with(one, 0, v1(999), "", "")
	// "15" with a bit of the 1 flipped reads "95", past the end: the checksum catches it.
	seeds["log_start_flipped_past_end"] = with(one, 0, flip(encodeOffsetFile(15), len(offsetFileHeader), 0x08), "", "")
	seeds["delete_records"] = with(two, modeClean, "", "4\n", "")
	seeds["delete_records_v1"] = with(two, 0, v1(4), v1(4), "")
	seeds["delete_records_past_end"] = with(one, 0, "", "999\n", "")
	seeds["delete_records_flipped"] = with(two, 0, v1(4), flip(encodeOffsetFile(4), len(offsetFileHeader), 0x40), "")
	seeds["offsets_sealed"] = with(two, modeSeal, "5", "3", "")
	legacyCk := `{"first_dirty":5,"gaps_below":4,"cleaned":[{"end":5,"at_ms":1}],"tombstone_deadline_ms":9}`
	seeds["cleaner_checkpoint"] = with(two, 0, "", "", legacyCk)
	v1Ck, err := encodeCleanerCheckpoint(cleanerCheckpoint{FirstDirty: 5, GapsBelow: 4, TombstoneDeadline: 9, Cleaned: []cleanedRange{{End: 3, AtMs: 1}, {End: 5, AtMs: 2}}})
	if err != nil {
		tb.Fatal(err)
	}
	seeds["cleaner_checkpoint_v1"] = with(two, 0, "", "", string(v1Ck))
	seeds["cleaner_checkpoint_flipped"] = with(two, 0, "", "", flip(v1Ck, bytes.IndexByte(v1Ck, '5'), 0x02))
	seeds["cleaner_checkpoint_unsorted"] = with(two, modeSeal, "", "", `{"first_dirty":9,"gaps_below":4,"cleaned":[{"end":5,"at_ms":1},{"end":3,"at_ms":2}]}`)
	seeds["cleaner_checkpoint_overlapping"] = with(two, modeSeal, "", "", `{"first_dirty":9,"cleaned":[{"end":5,"at_ms":1},{"end":5,"at_ms":2}]}`)
	seeds["cleaner_checkpoint_negative"] = with(two, modeSeal, "", "", `{"first_dirty":5,"gaps_below":-1}`)
	seeds["cleaner_checkpoint_past_end_v1"] = with(two, modeSeal, "", "", `{"first_dirty":999,"gaps_below":999,"cleaned":[{"end":999,"at_ms":1}]}`)
	seeds["cleaner_checkpoint_past_end"] = with(two, 0, "", "", `{"first_dirty":999,"gaps_below":999,"cleaned":[{"end":999,"at_ms":1}]}`)
	swap := one
	swap.log1, swap.mode = two.log0, modeSwap
	seeds["committed_swap"] = swap
	seeds["empty"] = partitionFiles{}
	return seeds
}

// FuzzStoreFiles opens a data directory whose meta.json, producer_ids.json and one topic's
// topic.json are fuzzed. Nothing may panic, and a store that opens has a cluster id, valid
// topics and producer ids that allocate.
func FuzzStoreFiles(f *testing.F) {
	f.Add(`{"cluster_id":"abc"}`, `{"next_block":1000}`, `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":2,"configs":{"retention.ms":"1000"},"created_ms":5}`)
	f.Add(`{"cluster_id":""}`, `{"next_block":-1}`, `{"name":"t","id":"00","partitions":0}`)
	f.Add(``, ``, `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":1,"configs":{"cleanup.policy":"compact","remote.storage.enable":"true"}}`)
	f.Add(`{}`, `{"next_block":9223372036854775807}`, `{"name":"u","partitions":1}`)
	root := fuzzTempDir(f)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, meta, pids, topic string) {
		dir := filepath.Join(root, fmt.Sprint(n.Add(1)))
		defer os.RemoveAll(dir)
		tdir := filepath.Join(dir, topicsDir, "t")
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string]string{filepath.Join(dir, metaName): meta, filepath.Join(dir, producerIDsName): pids,
			filepath.Join(tdir, topicMeta): topic} {
			if data != "" {
				if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if topic == "" {
			os.Remove(tdir) // a topic directory without topic.json holds no data: removed
		}
		st, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: time.Hour,
			CleanerBackoff: time.Hour, MaxPartitions: 4})
		if err != nil {
			return
		}
		defer st.Close()
		if st.ClusterID() == "" {
			t.Fatal("opened without a cluster id")
		}
		for _, top := range st.Topics() {
			// A topic loads with up to defaultMaxPartitions whatever MaxPartitions says now: a
			// lowered limit must not make a topic created before unloadable.
			if err := ValidateTopicName(top.Name()); err != nil || top.NumPartitions() < 1 || top.NumPartitions() > defaultMaxPartitions {
				t.Fatalf("topic %q with %d partitions: %v", top.Name(), top.NumPartitions(), err)
			}
			if err := ValidateTopicConfigs(top.Overrides()); err != nil {
				t.Fatalf("topic %q opened with overrides it does not accept: %v", top.Name(), err)
			}
		}
		if id, err := st.AllocateProducerID(); err == nil && (id < 0 || !st.ProducerIDAllocated(id)) {
			t.Fatalf("allocated producer id %d", id)
		} else if err != nil && !errors.Is(err, ErrStorage) {
			t.Fatalf("allocate producer id: %v", err)
		}
	})
}

// FuzzTopicConfig feeds topic config values (CreateTopics, IncrementalAlterConfigs, topic.json,
// the agent's topic_defaults) through validation, parsing and IncrementalAlterConfigs edits.
// Errors wrap ErrInvalidConfig; an accepted value parses into a config whose keys read back as
// what was set; an accepted edit leaves overrides that validate.
func FuzzTopicConfig(f *testing.F) {
	f.Add("retention.ms", "604800000", "cleanup.policy", "compact", uint8(OpAppend))
	f.Add("segment.ms", " 9223372036854775807 ", "cleanup.policy", "delete", uint8(OpSubtract))
	f.Add("min.cleanable.dirty.ratio", "0.25", "retention.bytes", "-1", uint8(OpSet))
	f.Add("flush.ms", "1", "local.retention.ms", "-2", uint8(OpDelete))
	f.Add("max.message.bytes", "2147483648", "message.timestamp.type", "LogAppendTime", uint8(9))
	f.Add("min.cleanable.dirty.ratio", "NaN", "cleanup.policy", "compact,delete", uint8(OpAppend))
	f.Add("remote.storage.enable", "true", "bogus.key", "1", uint8(OpSet))
	f.Fuzz(func(t *testing.T, key, value, opKey, opValue string, op uint8) {
		m := map[string]string{key: value}
		err := ValidateTopicConfigs(m)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%s=%q: %v does not wrap ErrInvalidConfig", key, value, err)
			}
			m = nil
		} else {
			checkTopicConfig(t, m)
		}
		next, err := applyConfigOps(m, []ConfigOp{{Key: opKey, Value: opValue, Op: ConfigOpType(op)}})
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("op %d %s=%q: %v does not wrap ErrInvalidConfig", op, opKey, opValue, err)
			}
			return
		}
		if err := ValidateTopicConfigs(next); err != nil {
			t.Fatalf("op %d %s=%q left overrides that do not validate: %v", op, opKey, opValue, err)
		}
		checkTopicConfig(t, next)
		if m != nil && !maps.Equal(m, map[string]string{key: value}) {
			t.Fatal("applyConfigOps changed its input")
		}
	})
}

// checkTopicConfig builds a config from accepted overrides and checks its typed fields agree
// with the describe output.
func checkTopicConfig(t *testing.T, overrides map[string]string) {
	c := buildTopicConfig(nil, overrides)
	_ = c.check()
	if c.SegmentAge < 0 || c.FlushAge < 0 || c.MaxMessageBytes < 0 || c.MinInsyncReplicas < 1 || c.SegmentBytes < 1024 {
		t.Fatalf("overrides %v built %+v", overrides, c)
	}
	if math.IsNaN(c.MinCleanableDirtyRatio) || c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 {
		t.Fatalf("overrides %v built dirty ratio %v", overrides, c.MinCleanableDirtyRatio)
	}
	if c.policyDelete != strings.Contains(c.CleanupPolicy, "delete") || c.policyCompact != strings.Contains(c.CleanupPolicy, "compact") {
		t.Fatalf("cleanup.policy %q parsed as delete=%v compact=%v", c.CleanupPolicy, c.policyDelete, c.policyCompact)
	}
	for _, e := range describeConfigs(nil, overrides) {
		if v, ok := overrides[e.Name]; ok && (e.Value != v || e.Source != SourceDynamicTopic) {
			t.Fatalf("%s described as %q from %v, set to %q", e.Name, e.Value, e.Source, v)
		}
	}
	_ = indexCapacity(&c, offsetEntrySize)
	_ = indexCapacity(&c, timeEntrySize)
	_, _ = c.localRetention()
}

// TestWriteCommitlogFuzzCorpus rewrites the seed corpora of FuzzOpenPartition, FuzzStoreFiles
// and FuzzTopicConfig when SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteCommitlogFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenPartition")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, seed := range partitionSeeds(t) {
		if err := os.WriteFile(filepath.Join(dir, name), fuzzCorpusFile(seed.args()...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFuzzCorpus(t, "FuzzStoreFiles", map[string][]any{
		"valid":            {`{"cluster_id":"abc"}`, `{"next_block":1000}`, `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":2,"configs":{"retention.ms":"1000"},"created_ms":5}`},
		"corrupt":          {`{"cluster_id":""}`, `{"next_block":-1}`, `{"name":"t","id":"00","partitions":0}`},
		"tiered_compacted": {``, ``, `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":1,"configs":{"cleanup.policy":"compact","remote.storage.enable":"true"}}`},
		"ids_exhausted":    {`{}`, `{"next_block":9223372036854775807}`, `{"name":"u","partitions":1}`},
	})
	writeFuzzCorpus(t, "FuzzTopicConfig", map[string][]any{
		"append_compact": {"retention.ms", "604800000", "cleanup.policy", "compact", uint8(OpAppend)},
		"spaces":         {"segment.ms", " 9223372036854775807 ", "cleanup.policy", "delete", uint8(OpSubtract)},
		"ratio":          {"min.cleanable.dirty.ratio", "0.25", "retention.bytes", "-1", uint8(OpSet)},
		"delete":         {"flush.ms", "1", "local.retention.ms", "-2", uint8(OpDelete)},
		"too_large_op":   {"max.message.bytes", "2147483648", "message.timestamp.type", "LogAppendTime", uint8(9)},
		"nan_ratio":      {"min.cleanable.dirty.ratio", "NaN", "cleanup.policy", "compact,delete", uint8(OpAppend)},
		"nan_ratio_op":   {"retention.ms", "1", "min.cleanable.dirty.ratio", "NaN", uint8(OpSet)},
		"remote_unknown": {"remote.storage.enable", "true", "bogus.key", "1", uint8(OpSet)},
	})
}

// writeFuzzCorpus writes seeds as testdata/fuzz/<target>/<name>.
func writeFuzzCorpus(t *testing.T, target string, seeds map[string][]any) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, vals := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), fuzzCorpusFile(vals...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzCorpusFile encodes values as a "go test fuzz v1" corpus file.
func fuzzCorpusFile(vals ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v) // as the go command writes it
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return []byte(b.String())
}

// TestTopicConfigRejectsNaNRatio: min.cleanable.dirty.ratio=NaN passed the 0..1 check (NaN
// compares false both ways) and then no dirty ratio ever reached it, so the topic silently
// never compacted on its ratio (found by FuzzTopicConfig).
func TestTopicConfigRejectsNaNRatio(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "-NaN", "+Inf", "-Inf", "1.0000001", "-0.1"} {
		if err := ValidateTopicConfigs(map[string]string{"min.cleanable.dirty.ratio": v}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("min.cleanable.dirty.ratio=%s: %v, want ErrInvalidConfig", v, err)
		}
	}
	for _, v := range []string{"0", "0.5", "1", "-0"} {
		if err := ValidateTopicConfigs(map[string]string{"min.cleanable.dirty.ratio": v}); err != nil {
			t.Errorf("min.cleanable.dirty.ratio=%s: %v", v, err)
		}
	}
}

// TestCleanOpenDropsSegmentsOverlappingASealedOne: after a clean shutdown, a sealed segment
// holding offsets at or past the next segment's base (here the second segment's files renamed
// below the first one's end) left the log ending below offsets it held: the next appends
// reused them. Recovery now scans from the sealed segment and removes the later ones, as crash
// recovery does (found by FuzzOpenPartition).
func TestCleanOpenDropsSegmentsOverlappingASealedOne(t *testing.T) {
	seeds := partitionSeeds(t)
	p := seeds["two_segments_mode1"]
	end := int64(p.base1) // the first segment holds offsets below end
	p.base1 = uint32(end - 2)
	dir := filepath.Join(t.TempDir(), "p")
	if err := p.write(dir); err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t, t.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	defer st.Close()
	cfg := buildTopicConfig(nil, nil)
	l, err := openLog(st, "t", 0, dir, &cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if leo, n := l.LogEndOffset(), l.NumSegments(); leo != end || n != 1 {
		t.Fatalf("log end %d with %d segments, want %d with 1", leo, n, end)
	}
	res, err := l.Append(makeBatch(t, 1, "new", 1_800_000_000_000))
	if err != nil || res.BaseOffset != end {
		t.Fatalf("append at %d (%v), want %d: offsets below it are taken", res.BaseOffset, err, end)
	}
	if off, _ := l.MaxTimestamp(); off != end {
		t.Fatalf("max timestamp at offset %d, want %d", off, end)
	}
}
