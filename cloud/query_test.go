package cloud_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/cloud"
)

// querySpec: two partitions of 3000 records each, a record every 10 s from 2026-01-01, every
// 37th record stamped 15 minutes late, 16 KiB segments with batches of at most 2 KiB.
var querySpec = archiveSpec{partitions: 2, perPartition: 3000, segmentBytes: 8192,
	base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 10 * time.Second, lateEvery: 37, late: 15 * time.Minute, seed: 1}

// TestQueryAgentArchive runs queries against segments a real agent uploaded to a real MinIO
// (the agent stopped before the first query) and compares every returned record, field by
// field and byte for byte, with what was produced.
func TestQueryAgentArchive(t *testing.T) {
	ar := startArchive(t, querySpec)
	a := ar.open(t, ar.prefix)
	for p, m := range ar.manifest {
		if len(m.Segments) < 10 {
			t.Fatalf("partition %d has %d segments archived; the test wants at least 10", p, len(m.Segments))
		}
	}
	run := func(t *testing.T, opts cloud.QueryOptions) ([]got, cloud.Stats, error) {
		t.Helper()
		var out []got
		st, err := a.Query(context.Background(), opts, collect(&out))
		return out, st, err
	}
	check := func(t *testing.T, opts cloud.QueryOptions, keep func(produced) bool) cloud.Stats {
		t.Helper()
		out, st, err := run(t, opts)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, ar.topic, out, ar.filter(keep))
		return st
	}
	tsOf := func(p int32, i int) time.Time { return time.UnixMilli(ar.all[int(p)*querySpec.perPartition+i].ts) }

	t.Run("catalog", func(t *testing.T) { testCatalog(t, a, ar) })

	t.Run("full", func(t *testing.T) {
		st := check(t, cloud.NewQueryOptions(ar.topic), func(produced) bool { return true })
		if st.SegmentsPruned != 0 || st.Records != int64(len(ar.records)) {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("offsets", func(t *testing.T) {
		m0 := ar.manifest[0]
		segs := m0.Segments
		ranges := [][2]int64{
			{0, 1},
			{17, 18},
			{segs[3].BaseOffset, segs[5].BaseOffset}, // segment boundaries
			{segs[2].BaseOffset + 7, segs[6].LastOffset - 3}, // inside segments
			{segs[4].LastOffset, segs[4].LastOffset + 1},     // a segment's last record
			{m0.EndOffset() - 20, cloud.NoEnd},
		}
		for _, r := range ranges {
			for _, parts := range [][]int32{nil, {1}, {0}} {
				opts := cloud.NewQueryOptions(ar.topic)
				opts.FromOffset, opts.ToOffset, opts.Partitions = r[0], r[1], parts
				keep := func(p produced) bool {
					return p.offset >= r[0] && p.offset < r[1] && (parts == nil || p.partition == parts[0])
				}
				if len(ar.filter(keep)) == 0 { // the ranges come from partition 0; partition 1 may end earlier
					if _, _, err := run(t, opts); !errors.Is(err, cloud.ErrEmptyRange) {
						t.Errorf("offsets %v of partitions %v select nothing archived: got %v, want ErrEmptyRange", r, parts, err)
					}
					continue
				}
				st := check(t, opts, keep)
				if r[1]-r[0] < 10 && st.Segments > int64(2*max(1, len(parts))) {
					t.Errorf("offsets %v: read %d segments", r, st.Segments)
				}
			}
		}
	})

	t.Run("times", func(t *testing.T) {
		type window struct {
			since, until time.Time
			lateness     time.Duration
		}
		windows := []window{
			{since: tsOf(0, 1500)},                             // inclusive at a record
			{since: tsOf(0, 1500).Add(500 * time.Microsecond)}, // sub-millisecond bound rounds up
			{until: tsOf(0, 1000)},                             // exclusive at a record
			{since: tsOf(0, 1200), until: tsOf(0, 1260)},
			{since: tsOf(0, 1200), until: tsOf(0, 1260), lateness: 20 * time.Minute},
			{since: tsOf(0, 10), until: tsOf(0, 300), lateness: 16 * time.Minute},
			{since: tsOf(1, 2999).Add(time.Millisecond)}, // after the last archived? (partition 1's tail is local)
		}
		for _, w := range windows {
			opts := cloud.NewQueryOptions(ar.topic)
			opts.Since, opts.Until, opts.MaxLateness = w.since, w.until, w.lateness
			keep := func(p produced) bool {
				t := time.UnixMilli(p.ts)
				return (w.since.IsZero() || !t.Before(w.since)) && (w.until.IsZero() || t.Before(w.until))
			}
			if len(ar.filter(keep)) == 0 {
				if _, _, err := run(t, opts); !errors.Is(err, cloud.ErrEmptyRange) {
					t.Errorf("window %+v selects nothing archived: got %v, want ErrEmptyRange", w, err)
				}
				continue
			}
			check(t, opts, keep)
		}
		// The late records are found without MaxLateness: at least one is before the window's
		// records in offset order.
		opts := cloud.NewQueryOptions(ar.topic)
		opts.Since, opts.Until, opts.Partitions = tsOf(0, 1200), tsOf(0, 1260), []int32{0}
		out, _, err := run(t, opts)
		if err != nil {
			t.Fatal(err)
		}
		late := 0
		for _, g := range out {
			if g.offset >= 1260 {
				late++
			}
		}
		if late == 0 {
			t.Error("no late record in the window: the test data does not exercise out-of-order timestamps")
		}
	})

	t.Run("keys", func(t *testing.T) {
		for _, key := range [][]byte{[]byte("device-3"), {0xff, 0x00, 1, 0xfe}, {}} {
			opts := cloud.NewQueryOptions(ar.topic)
			opts.Key = key
			check(t, opts, func(p produced) bool { return p.key != nil && bytes.Equal(p.key, key) })
			opts.Since = tsOf(0, 2000)
			check(t, opts, func(p produced) bool {
				return p.key != nil && bytes.Equal(p.key, key) && !time.UnixMilli(p.ts).Before(opts.Since)
			})
		}
	})

	t.Run("limit", func(t *testing.T) {
		opts := cloud.NewQueryOptions(ar.topic)
		opts.Limit = 25
		opts.FromOffset = 100
		check(t, opts, func(p produced) bool { return p.partition == 0 && p.offset >= 100 && p.offset < 125 })
	})

	t.Run("narrow-window-reads-little", func(t *testing.T) {
		// cmd/samsa-cloud's tests check the 10% bound on a larger archive, where manifests
		// weigh less; here, the pruning itself.
		_, full, err := run(t, cloud.NewQueryOptions(ar.topic))
		if err != nil {
			t.Fatal(err)
		}
		opts := cloud.NewQueryOptions(ar.topic)
		opts.Since, opts.Until, opts.MaxLateness = tsOf(0, 2000), tsOf(0, 2030), 20*time.Minute
		narrow := check(t, opts, func(p produced) bool {
			ts := time.UnixMilli(p.ts)
			return !ts.Before(opts.Since) && ts.Before(opts.Until)
		})
		t.Logf("full scan %d bytes in %d requests; narrow window %d bytes in %d requests (%d of %d segments, ~%d log bytes)",
			full.BytesFetched, full.Requests, narrow.BytesFetched, narrow.Requests, narrow.Segments, narrow.ArchivedSegments,
			narrow.EstimatedBytes)
		if narrow.Segments > 6 || narrow.EstimatedBytes*10 > full.EstimatedBytes || narrow.BytesFetched*5 > full.BytesFetched {
			t.Errorf("narrow window: %+v; full scan: %+v", narrow, full)
		}
	})

	t.Run("bad-input", func(t *testing.T) { testBadInput(t, a, ar) })
	t.Run("corrupt", func(t *testing.T) { testCorrupt(t, ar) })
}

func testCatalog(t *testing.T, a *cloud.Archive, ar *archive) {
	topics, err := a.Catalog(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 1 || topics[0].Name != ar.topic || len(topics[0].Partitions) != int(querySpec.partitions) {
		t.Fatalf("catalog %+v", topics)
	}
	var records int64
	for _, m := range topics[0].Partitions {
		if len(m.Segments) != len(ar.manifest[m.Partition].Segments) {
			t.Errorf("partition %d: %d segments, want %d", m.Partition, len(m.Segments), len(ar.manifest[m.Partition].Segments))
		}
		for _, s := range m.Segments {
			records += s.Records
		}
	}
	if records != int64(len(ar.records)) {
		t.Errorf("catalog counts %d records, %d archived", records, len(ar.records))
	}
	var table strings.Builder
	if err := cloud.WriteCatalogTable(&table, topics); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "2026-01-01T00:00:00.000Z") || !strings.Contains(table.String(), "(") {
		t.Errorf("table:\n%s", table.String())
	}
}

func testBadInput(t *testing.T, a *cloud.Archive, ar *archive) {
	ctx := context.Background()
	sink := cloud.SinkFunc(func(*cloud.Record) error { return nil })
	for name, tc := range map[string]struct {
		edit func(*cloud.QueryOptions)
		want error
		text string
	}{
		"unknown topic":      {func(o *cloud.QueryOptions) { o.Topic = "nope" }, cloud.ErrUnknownTopic, `"nope"`},
		"unknown partition":  {func(o *cloud.QueryOptions) { o.Partitions = []int32{7} }, cloud.ErrUnknownTopic, "partition 7"},
		"inverted offsets":   {func(o *cloud.QueryOptions) { o.FromOffset, o.ToOffset = 10, 5 }, cloud.ErrEmptyRange, "[10, 5)"},
		"zero to-offset":     {func(o *cloud.QueryOptions) { o.ToOffset = 0 }, cloud.ErrEmptyRange, "[0, 0)"},
		"past the end":       {func(o *cloud.QueryOptions) { o.FromOffset = 1 << 40 }, cloud.ErrEmptyRange, "archived: partition 0 offsets 0-"},
		"inverted times":     {func(o *cloud.QueryOptions) { o.Since, o.Until = time.Now(), time.Now().Add(-time.Hour) }, cloud.ErrEmptyRange, "not before"},
		"after the last one": {func(o *cloud.QueryOptions) { o.Since = time.Now() }, cloud.ErrEmptyRange, "nothing archived"},
		"bad topic name":     {func(o *cloud.QueryOptions) { o.Topic = "a/b" }, cloud.ErrBadConfig, "a/b"},
	} {
		opts := cloud.NewQueryOptions(ar.topic)
		tc.edit(&opts)
		_, err := a.Query(ctx, opts, sink)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %v mentioning %q on one line", name, err, tc.want, tc.text)
		}
	}
	// Open: a missing bucket, wrong keys.
	_, err := cloud.Open(ctx, cloud.Config{Endpoint: ar.srv.Endpoint, Bucket: "missing", AccessKeyID: ar.srv.AccessKey, SecretAccessKey: ar.srv.SecretKey})
	if !errors.Is(err, cloud.ErrNoBucket) {
		t.Errorf("missing bucket: %v", err)
	}
	_, err = cloud.Open(ctx, cloud.Config{Endpoint: ar.srv.Endpoint, Bucket: ar.bucket, AccessKeyID: "nobody", SecretAccessKey: "wrong-secret"})
	if !errors.Is(err, cloud.ErrAccessDenied) {
		t.Errorf("wrong keys: %v", err)
	}
	_, err = cloud.Open(ctx, cloud.Config{Endpoint: ar.srv.Endpoint})
	if !errors.Is(err, cloud.ErrBadConfig) {
		t.Errorf("no bucket: %v", err)
	}
}

// batchAt is a batch of a segment: where it is and which offsets it holds.
type batchAt struct {
	pos, size   int64
	base, last  int64
	numRecords  int32
	maxTimestmp int64
}

// batchesOf splits a .log object into its batches.
func batchesOf(t *testing.T, data []byte) []batchAt {
	t.Helper()
	var out []batchAt
	pos := int64(0)
	err := batch.Split(data, func(b []byte) error {
		h, err := batch.Validate(b)
		if err != nil {
			return err
		}
		out = append(out, batchAt{pos: pos, size: int64(len(b)), base: h.BaseOffset, last: h.LastOffset(), numRecords: h.NumRecords, maxTimestmp: h.MaxTimestamp})
		pos += int64(len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyPrefix copies every object under the archive's prefix to dst, server-side.
func copyPrefix(t *testing.T, ar *archive, mc *minio.Client, dst string) {
	t.Helper()
	ctx := context.Background()
	for o := range mc.ListObjectsIter(ctx, ar.bucket, minio.ListObjectsOptions{Prefix: ar.prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		_, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: ar.bucket, Object: dst + strings.TrimPrefix(o.Key, ar.prefix)},
			minio.CopySrcOptions{Bucket: ar.bucket, Object: o.Key})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func getObject(t *testing.T, mc *minio.Client, bucket, key string) []byte {
	t.Helper()
	obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func putObject(t *testing.T, mc *minio.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// testCorrupt damages objects in a copy of the archive by re-putting modified bytes: a bit
// flip inside a batch (CRC), a broken length field (framing), a truncated object, and a
// garbage offset index. Without SkipCorrupt the query stops at the first with the object key
// and offset; with it, it returns every record but the damaged ones.
func testCorrupt(t *testing.T, ar *archive) {
	mc, err := ar.srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "corrupt-copy"
	copyPrefix(t, ar, mc, prefix)
	m := ar.manifest[0]
	logKey := func(i int) string { return m.Segments[i].Key(prefix, ar.topic, 0, ".log") }
	lost := map[int64]bool{}

	// A: a flipped byte inside the second batch of segment 3.
	dataA := getObject(t, mc, ar.bucket, logKey(3))
	bA := batchesOf(t, dataA)[1]
	modA := append([]byte{}, dataA...)
	modA[bA.pos+batch.HeaderSize+3] ^= 0x40
	putObject(t, mc, ar.bucket, logKey(3), modA)
	for o := bA.base; o <= bA.last; o++ {
		lost[o] = true
	}

	// B: the length field of the second batch of segment 6 broken: decoding picks up at the
	// next batch the offset index lists.
	dataB := getObject(t, mc, ar.bucket, logKey(6))
	batchesB := batchesOf(t, dataB)
	bB := batchesB[1]
	modB := append([]byte{}, dataB...)
	copy(modB[bB.pos+8:], []byte{0x7f, 0xff, 0xff, 0xff})
	putObject(t, mc, ar.bucket, logKey(6), modB)
	index := getObject(t, mc, ar.bucket, m.Segments[6].Key(prefix, ar.topic, 0, ".index"))
	resync := int64(len(dataB))
	for i := 0; i+8 <= len(index); i += 8 {
		pos := int64(uint32(index[i+4])<<24 | uint32(index[i+5])<<16 | uint32(index[i+6])<<8 | uint32(index[i+7]))
		if pos >= bB.pos+12 {
			resync = pos
			break
		}
	}
	for _, b := range batchesB {
		if b.pos >= bB.pos && b.pos < resync {
			for o := b.base; o <= b.last; o++ {
				lost[o] = true
			}
		}
	}

	// C: segment 9 cut to half its size.
	dataC := getObject(t, mc, ar.bucket, logKey(9))
	putObject(t, mc, ar.bucket, logKey(9), dataC[:len(dataC)/2])
	for o := m.Segments[9].BaseOffset; o <= m.Segments[9].LastOffset; o++ {
		lost[o] = true
	}

	// D: segment 12's offset index replaced by garbage of the same size.
	idxKey := m.Segments[12].Key(prefix, ar.topic, 0, ".index")
	putObject(t, mc, ar.bucket, idxKey, bytes.Repeat([]byte{0xff}, int(m.Segments[12].IndexSize)))

	a := ar.open(t, prefix)
	ctx := context.Background()
	opts := cloud.NewQueryOptions(ar.topic)
	opts.Partitions = []int32{0}
	var out []got
	_, err = a.Query(ctx, opts, collect(&out))
	var ce *cloud.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, cloud.ErrCorrupt) || !strings.HasSuffix(ce.Key, logKey(3)) ||
		ce.Offset != bA.base || ce.Pos != bA.pos || !strings.Contains(err.Error(), logKey(3)) {
		t.Fatalf("bit flip: %v (%+v), want a CorruptError for %s at byte %d, offset %d", err, ce, logKey(3), bA.pos, bA.base)
	}
	t.Logf("bit flip: %v", err)
	for _, r := range out {
		if r.offset >= bA.base {
			t.Fatalf("record at offset %d returned after the corrupt batch at %d", r.offset, bA.base)
		}
	}

	opts.FromOffset = m.Segments[5].BaseOffset
	_, err = a.Query(ctx, opts, cloud.SinkFunc(func(*cloud.Record) error { return nil }))
	if !errors.As(err, &ce) || ce.Pos != bB.pos || !strings.Contains(err.Error(), logKey(6)) {
		t.Fatalf("broken length: %v, want a CorruptError for %s at byte %d", err, logKey(6), bB.pos)
	}
	t.Logf("broken length: %v", err)

	opts.FromOffset = m.Segments[7].BaseOffset
	_, err = a.Query(ctx, opts, cloud.SinkFunc(func(*cloud.Record) error { return nil }))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), logKey(9)) || !strings.Contains(err.Error(), "the manifest lists") {
		t.Fatalf("truncated object: %v", err)
	}
	t.Logf("truncated object: %v", err)

	// Reading only sound segments works, with the garbage index ignored.
	opts.FromOffset, opts.ToOffset = m.Segments[12].BaseOffset+5, m.Segments[13].BaseOffset+5
	out = nil
	st, err := a.Query(ctx, opts, collect(&out))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, ar.topic, out, ar.filter(func(p produced) bool {
		return p.partition == 0 && p.offset >= opts.FromOffset && p.offset < opts.ToOffset
	}))
	if st.IndexesUnusable == 0 {
		t.Error("the garbage index was not reported unusable")
	}

	// With SkipCorrupt: everything but the damaged batches, each damage reported.
	opts = cloud.NewQueryOptions(ar.topic)
	opts.Partitions = []int32{0}
	opts.SkipCorrupt = true
	var reports []string
	opts.OnCorrupt = func(ce *cloud.CorruptError) { reports = append(reports, ce.Error()) }
	out = nil
	st, err = a.Query(ctx, opts, collect(&out))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, ar.topic, out, ar.filter(func(p produced) bool { return p.partition == 0 && !lost[p.offset] }))
	if len(reports) != 3 || st.CorruptSkipped != 3 {
		t.Errorf("reports (%d skipped): %q", st.CorruptSkipped, reports)
	}
	for i, key := range []string{logKey(3), logKey(6), logKey(9)} {
		if i < len(reports) && !strings.Contains(reports[i], key) {
			t.Errorf("report %d: %q, want %s", i, reports[i], key)
		}
	}
	t.Logf("skipped: %q; %d records lost", reports, len(lost))
}
