package cloud

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// ErrBadIndex means an uploaded .index or .timeindex object does not parse or contradicts
// itself or its segment. Indexes are only hints: a query that meets one reads the whole
// segment instead.
var ErrBadIndex = errors.New("bad index")

// Index entry sizes, as agent/commitlog writes them.
const (
	offsetEntrySize = 8  // relative offset uint32, file position uint32 (big-endian)
	timeEntrySize   = 12 // timestamp int64, relative offset uint32 (big-endian)
)

// offsetEntry is one .index entry: the batch with base offset segmentBase+rel starts at pos.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// offsetIndex is a parsed .index object: sparse, sorted by rel and by pos. The first batch
// (position 0) is never listed.
type offsetIndex []offsetEntry

// parseOffsetIndex parses a .index object of a segment whose .log has logSize bytes and whose
// last offset is base+lastRel. Entries must strictly increase in both offset and position,
// point inside the log after position 0, and stay within the segment's offsets. A tail of
// all-zero entries (unused preallocated space) ends the index.
func parseOffsetIndex(b []byte, logSize, lastRel int64) (offsetIndex, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte entries", ErrBadIndex, len(b), offsetEntrySize)
	}
	x := make(offsetIndex, 0, len(b)/offsetEntrySize)
	for i := 0; i < len(b); i += offsetEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if e == (offsetEntry{}) {
			if !allZero(b[i:]) {
				return nil, fmt.Errorf("%w: entry %d is zero but later ones are not", ErrBadIndex, len(x))
			}
			break
		}
		switch {
		case e.pos == 0 || int64(e.pos) >= logSize:
			return nil, fmt.Errorf("%w: entry %d points at position %d of a %d-byte log", ErrBadIndex, len(x), e.pos, logSize)
		case int64(e.rel) > lastRel:
			return nil, fmt.Errorf("%w: entry %d has relative offset %d beyond the segment's %d", ErrBadIndex, len(x), e.rel, lastRel)
		case len(x) > 0 && (e.rel <= x[len(x)-1].rel || e.pos <= x[len(x)-1].pos):
			return nil, fmt.Errorf("%w: entry %d (%d at %d) does not follow (%d at %d)", ErrBadIndex, len(x),
				e.rel, e.pos, x[len(x)-1].rel, x[len(x)-1].pos)
		}
		x = append(x, e)
	}
	return x, nil
}

// floor returns the position of the last indexed batch whose relative offset is <= rel, or 0
// (the segment start) when there is none: reading from there reaches offset rel.
func (x offsetIndex) floor(rel int64) int64 {
	i := sort.Search(len(x), func(i int) bool { return int64(x[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(x[i-1].pos)
}

// ceil returns the position of the first indexed batch whose relative offset is >= rel, and
// false when there is none. Every batch holding an offset below rel ends at or before it.
func (x offsetIndex) ceil(rel int64) (int64, bool) {
	i := sort.Search(len(x), func(i int) bool { return int64(x[i].rel) >= rel })
	if i == len(x) {
		return 0, false
	}
	return int64(x[i].pos), true
}

// after returns the position of the first indexed batch that starts after pos, and false when
// there is none: where a reader that lost the batch framing at pos can pick it up again.
func (x offsetIndex) after(pos int64) (int64, bool) {
	i := sort.Search(len(x), func(i int) bool { return int64(x[i].pos) > pos })
	if i == len(x) {
		return 0, false
	}
	return int64(x[i].pos), true
}

// timeEntry is one .timeindex entry: every batch of the segment whose base offset is below
// segmentBase+rel has timestamps <= ts.
type timeEntry struct {
	ts  int64
	rel uint32
}

// timeIndex is a parsed .timeindex object, sorted: timestamps strictly increase (an entry is
// added only when the running maximum grows), relative offsets never decrease.
//
// The agent adds an entry (T, O) next to an offset index entry for the batch at O, with T the
// maximum timestamp of the batches before O, and a last entry (T, O) when it seals the
// segment, with T the segment's maximum and O its last offset. Both say: batches with a base
// offset below O have no timestamp above T.
type timeIndex []timeEntry

// parseTimeIndex parses a .timeindex object of a segment whose last offset is base+lastRel.
// A tail of all-zero entries ends the index.
func parseTimeIndex(b []byte, lastRel int64) (timeIndex, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte entries", ErrBadIndex, len(b), timeEntrySize)
	}
	x := make(timeIndex, 0, len(b)/timeEntrySize)
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if e == (timeEntry{}) && len(x) > 0 {
			if !allZero(b[i:]) {
				return nil, fmt.Errorf("%w: entry %d is zero but later ones are not", ErrBadIndex, len(x))
			}
			break
		}
		switch {
		case int64(e.rel) > lastRel:
			return nil, fmt.Errorf("%w: entry %d has relative offset %d beyond the segment's %d", ErrBadIndex, len(x), e.rel, lastRel)
		case len(x) > 0 && (e.ts <= x[len(x)-1].ts || e.rel < x[len(x)-1].rel):
			return nil, fmt.Errorf("%w: entry %d (%d at %d) does not follow (%d at %d)", ErrBadIndex, len(x),
				e.ts, e.rel, x[len(x)-1].ts, x[len(x)-1].rel)
		}
		x = append(x, e)
	}
	return x, nil
}

// skipBefore returns the relative offset O of the last entry with a timestamp below ts, and
// false when there is none: batches with a base offset below O hold no timestamp >= ts, so a
// scan for timestamps >= ts may start at the batch holding O.
func (x timeIndex) skipBefore(ts int64) (int64, bool) {
	i := sort.Search(len(x), func(i int) bool { return x[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return int64(x[i-1].rel), true
}

// reaching returns the relative offset O of the first entry whose timestamp is >= ts, and
// false when there is none: the log's running maximum timestamp is at least ts from O on.
func (x timeIndex) reaching(ts int64) (int64, bool) {
	i := sort.Search(len(x), func(i int) bool { return x[i].ts >= ts })
	if i == len(x) {
		return 0, false
	}
	return int64(x[i].rel), true
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
