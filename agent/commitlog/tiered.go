package commitlog

import (
	"fmt"
	"io"
)

// The tiering side of a partition log: which closed segments may be uploaded, read access to
// their files while they are uploaded, and how far the uploaded copy reaches, which lets local
// retention (local.retention.ms/bytes) delete local copies of remote.storage.enable topics.

// SealedSegment describes a closed, fsynced segment wholly below the high watermark.
type SealedSegment struct {
	Base         int64 // first offset it may hold
	Next         int64 // the next segment's base: offsets [Base, Next)
	MaxTimestamp int64 // -1 if unknown
	Size         int64
	LeaderEpoch  int32
}

// SealedSegments lists the segments that could be uploaded now: closed, fsynced and wholly
// below the high watermark, with a base at or above from, oldest first.
func (l *Log) SealedSegments(from int64) []SealedSegment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []SealedSegment
	for _, s := range l.segments[:len(l.segments)-1] {
		if !s.synced || s.next > l.hw {
			break
		}
		if s.base < from || s.size == 0 {
			continue
		}
		out = append(out, SealedSegment{Base: s.base, Next: s.next, MaxTimestamp: s.maxTs, Size: s.size, LeaderEpoch: l.epoch})
	}
	return out
}

// PinnedSegment gives read access to a sealed segment's files until Release; retention may
// delete the files meanwhile, the open handles stay valid.
type PinnedSegment struct {
	SealedSegment
	Log       *io.SectionReader
	Index     *io.SectionReader // the sparse offset index (8-byte entries)
	TimeIndex *io.SectionReader // the time index (12-byte entries)
	seg       *segment
}

// Release lets the segment files go.
func (p *PinnedSegment) Release() {
	if p.seg != nil {
		p.seg.release()
		p.seg = nil
	}
}

// PinSegment pins the sealed segment with that base. A segment that is gone (retention) or not
// sealed and synced yet is ErrOffsetOutOfRange.
func (l *Log) PinSegment(base int64) (*PinnedSegment, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := segmentFor(l.segments, base)
	if i < 0 || i == len(l.segments)-1 || l.segments[i].base != base || !l.segments[i].synced {
		return nil, fmt.Errorf("pin segment %d of %s-%d: %w", base, l.topic, l.partition, ErrOffsetOutOfRange)
	}
	s := l.segments[i]
	s.acquire()
	ix, tix := s.index.indexFile, s.tindex.indexFile
	return &PinnedSegment{
		SealedSegment: SealedSegment{Base: s.base, Next: s.next, MaxTimestamp: s.maxTs, Size: s.size, LeaderEpoch: l.epoch},
		Log:           io.NewSectionReader(s.file, 0, s.size),
		Index:         io.NewSectionReader(ix.f, 0, int64(ix.len()*ix.entrySize)),
		TimeIndex:     io.NewSectionReader(tix.f, 0, int64(tix.len()*tix.entrySize)),
		seg:           s,
	}, nil
}

// SetTieredEnd records that every offset below end has been uploaded (and the manifest saying
// so written): local retention of a remote.storage.enable topic may then delete local
// segments below it. Until it is set, nothing is deleted for local retention.
func (l *Log) SetTieredEnd(end int64) {
	for {
		cur := l.tieredEnd.Load()
		if end <= cur || l.tieredEnd.CompareAndSwap(cur, end) {
			return
		}
	}
}

// TieredEnd is the end of the uploaded offsets, or -1 when unknown.
func (l *Log) TieredEnd() int64 { return l.tieredEnd.Load() }

// SizeFrom is the bytes of the segments with a base at or above offset (what is only local
// when offset is the tiered end).
func (l *Log) SizeFrom(offset int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		if s.base >= offset {
			n += s.size
		}
	}
	return n
}
