package tiering

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

var errEOF = io.EOF

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// upload puts one closed segment's three files into the store, then a manifest listing it,
// and returns that manifest. Re-uploading after a crash writes the same keys again; the
// manifest is written last, so a segment counts as uploaded only once all of it is there.
func (t *Tierer) upload(ctx context.Context, top *commitlog.Topic, l *commitlog.Log, m *Manifest, seg commitlog.SealedSegment, now time.Time) (*Manifest, error) {
	p, err := l.PinSegment(seg.Base)
	if errors.Is(err, commitlog.ErrOffsetOutOfRange) {
		return m, nil // deleted by retention meanwhile: nothing to upload
	}
	if err != nil {
		return nil, err
	}
	defer p.Release()
	meta, err := describeSegment(p)
	if err != nil {
		return nil, fmt.Errorf("read segment %d of %s-%d for upload: %w", seg.Base, top.Name(), l.Partition(), err)
	}
	start := time.Now()
	files := []struct {
		ext string
		r   *io.SectionReader
	}{{".log", p.Log}, {".index", p.Index}, {".timeindex", p.TimeIndex}}
	for _, f := range files {
		key := meta.Key(t.cfg.Prefix, top.Name(), l.Partition(), f.ext)
		if err := t.store.Put(ctx, key, io.NewSectionReader(f.r, 0, f.r.Size()), f.r.Size()); err != nil {
			return nil, fmt.Errorf("upload %s: %w", key, err)
		}
	}
	meta.UploadedMs = t.cfg.Now().UnixMilli()
	next := m.Clone()
	next.Segments = append(next.Segments, meta)
	if err := t.putManifest(ctx, next); err != nil {
		return nil, err
	}
	t.m.uploads.Add(1)
	t.m.uploadBytes.Add(meta.Size + meta.IndexSize + meta.TimeIndexSize)
	t.log.Debug("segment uploaded", "topic", top.Name(), "partition", l.Partition(), "base", meta.BaseOffset,
		"last", meta.LastOffset, "bytes", meta.Size, "took", time.Since(start).Round(time.Millisecond))
	return next, nil
}

// describeSegment reads a pinned segment once: its CRC-32C, record count, first and max
// timestamps, last offset and codecs.
func describeSegment(p *commitlog.PinnedSegment) (SegmentMeta, error) {
	meta := SegmentMeta{BaseOffset: p.Base, LastOffset: p.Next - 1, FirstTimestamp: -1, MaxTimestamp: p.MaxTimestamp,
		Size: p.Log.Size(), IndexSize: p.Index.Size(), TimeIndexSize: p.TimeIndex.Size(), LeaderEpoch: p.LeaderEpoch}
	crc := crc32.New(castagnoli)
	r := bufio.NewReaderSize(io.TeeReader(io.NewSectionReader(p.Log, 0, p.Log.Size()), crc), 256<<10)
	var head [batch.HeaderSize]byte
	codecs := map[batch.Codec]bool{}
	for pos := int64(0); pos < meta.Size; {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return meta, fmt.Errorf("batch header at %d: %w", pos, err)
		}
		h, err := batch.ParseHeader(head[:])
		if err != nil {
			return meta, fmt.Errorf("batch header at %d: %w", pos, err)
		}
		if _, err := r.Discard(h.Size() - batch.HeaderSize); err != nil {
			return meta, fmt.Errorf("batch at %d: %w", pos, err)
		}
		if meta.FirstTimestamp < 0 {
			meta.FirstTimestamp = h.FirstTimestamp
		}
		meta.MaxTimestamp = max(meta.MaxTimestamp, h.MaxTimestamp)
		meta.Records += int64(h.NumRecords)
		codecs[h.Codec()] = true
		pos += int64(h.Size())
	}
	var names []string
	for c := range codecs {
		names = append(names, c.String())
	}
	sort.Strings(names)
	meta.Codecs = strings.Join(names, ",")
	meta.CRC32C = crc.Sum32()
	return meta, nil
}

// applyRetention deletes uploaded segments that retention.ms or retention.bytes (over the
// whole log: remote plus what is only local) have expired, or that lie wholly below the offset
// DeleteRecords moved the log start to (which also becomes the manifest's log start): first
// from the manifest, then the objects. A crash between leaves objects no manifest lists,
// removed at the next start.
func (t *Tierer) applyRetention(ctx context.Context, top *commitlog.Topic, l *commitlog.Log, m *Manifest, now time.Time) (*Manifest, error) {
	cfg := top.Config()
	if !cfg.Deletes() || len(m.Segments) == 0 {
		return m, nil
	}
	deleted := l.RecordsDeletedBelow() // DeleteRecords' floor
	total := m.Size() + l.SizeFrom(m.EndOffset())
	cut := 0
	for _, s := range m.Segments {
		expired := cfg.RetentionMs >= 0 && s.MaxTimestamp >= 0 && s.MaxTimestamp < now.UnixMilli()-cfg.RetentionMs
		over := cfg.RetentionBytes >= 0 && total-s.Size >= cfg.RetentionBytes
		if !expired && !over && s.EndOffset() > deleted {
			break
		}
		total -= s.Size
		cut++
	}
	next := m.Clone()
	gone := next.Segments[:cut]
	next.Segments = append([]SegmentMeta(nil), next.Segments[cut:]...)
	if cut > 0 {
		next.LogStartOffset = max(next.LogStartOffset, gone[len(gone)-1].EndOffset())
	}
	if len(next.Segments) > 0 {
		// Inside the segments left: readers of the bucket (samsa-cloud) skip the deleted
		// records too. Never past them: the manifest's end is where uploads resume.
		next.LogStartOffset = max(next.LogStartOffset, deleted)
	}
	if cut == 0 && next.LogStartOffset == m.LogStartOffset {
		return m, nil
	}
	if err := t.putManifest(ctx, next); err != nil {
		return nil, err
	}
	for _, s := range gone {
		for _, ext := range segmentExts {
			key := s.Key(t.cfg.Prefix, top.Name(), l.Partition(), ext)
			if err := t.store.Delete(ctx, key); err != nil {
				t.log.Warn("delete expired remote object; removed as a leftover at the next start", "key", key, "err", err)
			}
		}
		t.idx.drop(s.Key(t.cfg.Prefix, top.Name(), l.Partition(), ".index"))
		t.m.remoteDeleted.Add(1)
	}
	t.log.Info("remote retention applied", "topic", top.Name(), "partition", l.Partition(),
		"segments_deleted", cut, "log_start_offset", next.LogStartOffset)
	return next, nil
}
