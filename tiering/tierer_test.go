package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// tieredLog is a commit log with one tiered topic over a filesystem object store.
type tieredLog struct {
	t     *testing.T
	dir   string
	logs  *commitlog.Store
	store *FSStore
	tier  *Tierer
	l     *commitlog.Log
	sent  [][]byte // the batches appended, as appended
}

func newTieredLog(t *testing.T, configs map[string]string) *tieredLog {
	t.Helper()
	dir := t.TempDir()
	store, err := NewFSStore(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	tl := &tieredLog{t: t, dir: dir, store: store}
	tl.open()
	cfg := map[string]string{"remote.storage.enable": "true", "segment.bytes": "4096"}
	for k, v := range configs {
		cfg[k] = v
	}
	top, err := tl.logs.CreateTopic("t", 1, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = top.Partition(0)
	return tl
}

func (tl *tieredLog) open() {
	t := tl.t
	logs, err := commitlog.Open(commitlog.Options{Dir: filepath.Join(tl.dir, "data"), RetentionCheckInterval: time.Hour, CleanerBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tier, err := New(tl.store, logs, Config{CacheDir: filepath.Join(tl.dir, "cache"), ChunkBytes: 1024, CacheBytes: 8192})
	if err != nil {
		t.Fatal(err)
	}
	tl.logs, tl.tier = logs, tier
	if top := logs.Topic("t"); top != nil {
		tl.l = top.Partition(0)
	}
	t.Cleanup(func() { tl.logs.Close() })
}

func (tl *tieredLog) restart() {
	if err := tl.logs.Close(); err != nil {
		tl.t.Fatal(err)
	}
	tl.open()
}

// produce appends n batches of 5 records with timestamp ts and flushes.
func (tl *tieredLog) produce(n int, ts int64) {
	for i := 0; i < n; i++ {
		b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: batch.Codec(i % 5)})
		for j := 0; j < 5; j++ {
			b.Add(ts, []byte(fmt.Sprintf("k%d", j)), []byte(fmt.Sprintf("value-%d-%d-%s", len(tl.sent), j, strings.Repeat("x", j*10))), nil)
		}
		data, err := b.Build()
		if err != nil {
			tl.t.Fatal(err)
		}
		if _, err := tl.l.Append(data); err != nil {
			tl.t.Fatal(err)
		}
		tl.sent = append(tl.sent, data) // stamped in place with its offset
	}
	if err := tl.l.Flush(); err != nil {
		tl.t.Fatal(err)
	}
}

func (tl *tieredLog) sync() {
	tl.t.Helper()
	if err := tl.tier.SyncAll(context.Background(), true); err != nil {
		tl.t.Fatal(err)
	}
}

// readFrom reads batches from offset to the high watermark: remote first, then local.
func (tl *tieredLog) readFrom(offset int64) []byte {
	tl.t.Helper()
	var out []byte
	for offset < tl.l.HighWatermark() {
		rr, err := tl.l.Read(offset, 1500, true, commitlog.ReadToHighWatermark)
		if errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			rr, err = tl.tier.Read(context.Background(), "t", 0, offset, 1500, true)
			if err == nil && rr.Bytes == 0 {
				rs, _ := tl.tier.RemoteStart("t", 0)
				tl.t.Fatalf("remote read at %d (remote %d..) returned nothing below the local start %d", offset, rs, tl.l.LogStartOffset())
			}
		}
		if err != nil {
			tl.t.Fatalf("read at %d: %v", offset, err)
		}
		for _, fr := range rr.Ranges {
			buf := make([]byte, fr.Len)
			if _, err := fr.File.ReadAt(buf, fr.Pos); err != nil && err != io.EOF {
				tl.t.Fatal(err)
			}
			out = append(out, buf...)
		}
		rr.Release()
		last := offset
		batch.Split(out, func(b []byte) error {
			h, _ := batch.ParseHeader(b)
			last = h.LastOffset() + 1
			return nil
		})
		offset = last
	}
	return out
}

func TestUploadReadBackAndLocalRetention(t *testing.T) {
	tl := newTieredLog(t, map[string]string{"local.retention.bytes": "8192"})
	tl.produce(200, time.Now().UnixMilli())
	tl.sync()
	m := tl.tier.lookup("t", 0)
	if m == nil || len(m.Segments) < 5 {
		t.Fatalf("manifest after sync: %+v", m)
	}
	if end := tl.l.TieredEnd(); end != m.EndOffset() {
		t.Fatalf("tiered end %d, manifest end %d", end, m.EndOffset())
	}
	// Local retention may now drop uploaded local copies beyond local.retention.bytes.
	tl.logs.RunRetention()
	if tl.l.LogStartOffset() == 0 || tl.l.Size() > 8192+4096 {
		t.Fatalf("local retention kept start %d, %d bytes", tl.l.LogStartOffset(), tl.l.Size())
	}
	want := bytes.Join(tl.sent, nil)
	if got := tl.readFrom(0); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes through remote and local, want the %d appended, byte-exact", len(got), len(want))
	}
	if tl.tier.m.cacheMisses.Load() == 0 {
		t.Fatal("no ranged GET was made")
	}
	// After a restart the manifest is read back from the store.
	tl.restart()
	tl.sync()
	if got := tl.readFrom(0); !bytes.Equal(got, want) {
		t.Fatal("read back after a restart differs")
	}
	off, ts, found, err := tl.tier.OffsetForTimestamp(context.Background(), "t", 0, 0)
	if err != nil || !found || off != 0 || ts <= 0 {
		t.Fatalf("remote offset for timestamp 0: %d %d %v %v", off, ts, found, err)
	}
}

func TestNothingIsDeletedLocallyBeforeUpload(t *testing.T) {
	tl := newTieredLog(t, map[string]string{"local.retention.bytes": "0"})
	tl.produce(100, time.Now().UnixMilli())
	tl.logs.RunRetention() // no manifest known yet: the tiered end is unknown
	if tl.l.LogStartOffset() != 0 {
		t.Fatalf("local segments deleted before upload: start %d", tl.l.LogStartOffset())
	}
	tl.sync()
	tl.logs.RunRetention()
	if tl.l.LogStartOffset() != tl.l.TieredEnd() {
		t.Fatalf("after upload, local start %d, want the tiered end %d", tl.l.LogStartOffset(), tl.l.TieredEnd())
	}
}

func TestRemoteRetentionAndOrphans(t *testing.T) {
	tl := newTieredLog(t, map[string]string{"retention.ms": "60000"})
	tl.produce(100, time.Now().Add(-time.Hour).UnixMilli())
	tl.sync() // uploads, then remote retention removes the expired segments
	m := tl.tier.lookup("t", 0)
	if len(m.Segments) != 0 || m.LogStartOffset == 0 {
		t.Fatalf("expired remote segments kept: %d segments, start %d", len(m.Segments), m.LogStartOffset)
	}
	objs, err := tl.store.List(context.Background(), "t/0/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || !strings.HasSuffix(objs[0].Key, manifest.Name) {
		t.Fatalf("objects left after remote retention: %v", objs)
	}
	// An object no manifest lists (an upload a crash interrupted) is removed at the next start.
	leftover := SegmentKey("", "t", 0, 999999, 0, ".log")
	if err := tl.store.Put(context.Background(), leftover, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	tl.restart()
	tl.sync()
	if _, err := tl.store.Get(context.Background(), leftover, 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("leftover object still there: %v", err)
	}
}

// A local manifest copy belongs to its bucket and prefix: an agent pointed at a new prefix
// uploads everything there instead of trusting the old prefix's copy.
func TestNewPrefixUploadsEverything(t *testing.T) {
	tl := newTieredLog(t, nil)
	tl.produce(100, time.Now().UnixMilli())
	tl.sync()
	before := len(tl.tier.lookup("t", 0).Segments)
	tier, err := New(tl.store, tl.logs, Config{Prefix: "elsewhere", CacheDir: filepath.Join(tl.dir, "cache"), ChunkBytes: 1024, CacheBytes: 8192})
	if err != nil {
		t.Fatal(err)
	}
	tier.preload()
	if err := tier.SyncAll(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if m := tier.lookup("t", 0); m == nil || len(m.Segments) != before {
		t.Fatalf("new prefix got %v segments, want the %d of the old one", m, before)
	}
	objs, err := tl.store.List(context.Background(), "elsewhere/t/0/")
	if err != nil || len(objs) != 3*before+1 {
		t.Fatalf("%d objects under the new prefix (%v), want %d", len(objs), err, 3*before+1)
	}
}
