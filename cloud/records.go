package cloud

import (
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// A fast reader of a batch's records.
//
// batch.Records (and batch.RecordsData) hand each record to a callback with its headers
// copied out (a string per header key), through an error-returning parse and a walker that
// checks each record: a quarter of a full scan's CPU. recordReader walks the same bytes in
// a loop of its caller with short paths for the varints of ordinary records (up to four
// bytes: lengths below 128 MiB), takes a record's fields as byte ranges and leaves its headers
// for later (records usually have none). It takes only records that batch.RecordsData would
// hand out, with the same fields, in the same order; at anything else (a bad record, a count
// that disagrees with the header, a varint longer than four bytes) it stops, and the caller
// walks the rest of the records area with batch.RecordsData, skipping the records already
// taken, which then hands out the records the reader left or reports the error: callers see
// exactly what batch.RecordsData gives, at a fraction of the cost.

// rawRecord is a record recordReader took: absolute offset and timestamp, its key and value
// as spans of the records area (n -1: null), and the byte range of its headers.
type rawRecord struct {
	offset, ts int64
	key, value span
	hdrs       span  // the headers after their count; n 0 when there are none
	nHdrs      int32 // number of headers
}

// recordReader walks the uncompressed records area of a batch.
type recordReader struct {
	data       []byte
	pos        int
	count      int32 // records taken
	prev       int64 // offset delta of the last record taken, -1 before the first
	numRecords int32
	lastDelta  int32
	base       int64
	firstTs    int64
	fixedTs    int64 // every record's timestamp with LogAppendTime
	logAppend  bool
	stopped    bool // stopped before the end: the rest needs batch.RecordsData
}

// newRecordReader returns a reader of data, the records area of the batch with header h.
func newRecordReader(h *batch.Header, data []byte) recordReader {
	return recordReader{data: data, prev: -1, numRecords: h.NumRecords, lastDelta: h.LastOffsetDelta,
		base: h.BaseOffset, firstTs: h.FirstTimestamp, fixedTs: h.MaxTimestamp, logAppend: h.LogAppendTime()}
}

// uvarint2 decodes a varint of one or two bytes at p[i:] (inlined: nearly every varint of a
// record); i is -1 for a longer one or when p ends first.
func uvarint2(p []byte, i int) (uint32, int) {
	if uint(i+1) < uint(len(p)) {
		b0 := uint32(p[i])
		if b0 < 0x80 {
			return b0, i + 1
		}
		if b1 := uint32(p[i+1]); b1 < 0x80 {
			return b0&0x7f | b1<<7, i + 2
		}
	}
	return 0, -1
}

// uvarint4 decodes the varint at p[i:end] if it takes at most four bytes; i is -1 otherwise.
func uvarint4(p []byte, i, end int) (uint32, int) {
	var x uint32
	for k := range 4 {
		if i+k >= end {
			break
		}
		b := uint32(p[i+k])
		if b < 0x80 {
			return x | b<<(7*k), i + k + 1
		}
		x |= (b & 0x7f) << (7 * k)
	}
	return 0, -1
}

// zigzag decodes a zigzag-encoded value.
func zigzag(u uint32) int32 { return int32(u>>1) ^ -int32(u&1) }

// bytesSpan reads a length varint at p[i:end] and that many bytes as a span; length -1 is
// null when nullable. i is -1 when malformed or past the fast path.
func bytesSpan(p []byte, i, end int, nullable bool) (span, int) {
	u, i := uvarint4(p, i, end)
	if i < 0 {
		return span{}, -1
	}
	n := zigzag(u)
	switch {
	case n >= 0 && int(n) <= end-i:
		return span{int32(i), n}, i + int(n)
	case n == -1 && nullable:
		return span{0, -1}, i
	}
	return span{}, -1
}

// next takes the next record into r. It returns false at the end of the records or when it
// stops (rr.stopped): the record at rr.pos is for batch.RecordsData. Its varints are decoded
// by hand (uvarint2, inlined; uvarint4 for the rest): a call per varint would cost a fifth.
func (rr *recordReader) next(r *rawRecord) bool {
	p, i := rr.data, rr.pos
	if i >= len(p) || rr.count >= rr.numRecords {
		rr.stopped = i < len(p) || rr.count != rr.numRecords
		return false
	}
	u, j := uvarint2(p, i)
	if j < 0 {
		u, j = uvarint4(p, i, len(p))
	}
	length := int(zigzag(u))
	if j < 0 || length < 1 || length > len(p)-j {
		rr.stopped = true
		return false
	}
	end := j + length
	i = j + 1 // attributes
	if u, j = uvarint2(p, i); j < 0 || j > end {
		u, j = uvarint4(p, i, end)
	}
	tsDelta := int64(zigzag(u))
	if i = j; i < 0 {
		rr.stopped = true
		return false
	}
	if u, j = uvarint2(p, i); j < 0 || j > end {
		u, j = uvarint4(p, i, end)
	}
	delta := int64(zigzag(u))
	if i = j; i < 0 || delta <= rr.prev || delta > int64(rr.lastDelta) {
		rr.stopped = true
		return false
	}
	if u, j = uvarint2(p, i); j < 0 || j > end {
		u, j = uvarint4(p, i, end)
	}
	if n := zigzag(u); j >= 0 && n >= 0 && int(n) <= end-j {
		r.key, i = span{int32(j), n}, j+int(n)
	} else if j >= 0 && n == -1 {
		r.key, i = span{0, -1}, j
	} else {
		rr.stopped = true
		return false
	}
	if u, j = uvarint2(p, i); j < 0 || j > end {
		u, j = uvarint4(p, i, end)
	}
	if n := zigzag(u); j >= 0 && n >= 0 && int(n) <= end-j {
		r.value, i = span{int32(j), n}, j+int(n)
	} else if j >= 0 && n == -1 {
		r.value, i = span{0, -1}, j
	} else {
		rr.stopped = true
		return false
	}
	if i < end && p[i] == 0 { // no headers: the usual case
		r.hdrs, r.nHdrs = span{int32(i + 1), 0}, 0
		i++
	} else if i = rr.skipHeaders(r, i, end); i < 0 {
		rr.stopped = true
		return false
	}
	if i != end {
		rr.stopped = true
		return false
	}
	r.offset = rr.base + delta
	if rr.logAppend {
		r.ts = rr.fixedTs
	} else {
		r.ts = rr.firstTs + tsDelta
	}
	rr.prev, rr.pos = delta, end
	rr.count++
	return true
}

// skipHeaders reads the header count at p[i:end] and checks the headers after it, noting
// them in r; it returns the index after them, -1 when malformed.
func (rr *recordReader) skipHeaders(r *rawRecord, i, end int) int {
	p := rr.data
	u, i := uvarint4(p, i, end)
	nh := zigzag(u)
	if i < 0 || nh < 0 || int(nh) > (end-i)/2 {
		return -1
	}
	r.hdrs, r.nHdrs = span{int32(i), int32(end - i)}, nh
	for range nh {
		if _, i = bytesSpan(p, i, end, false); i >= 0 {
			_, i = bytesSpan(p, i, end, true)
		}
		if i < 0 {
			return -1
		}
	}
	return i
}

// headersOf appends the headers of a record rr took (r.nHdrs > 0) to hs: their keys from
// keys (which keeps the distinct keys seen, so that repeated keys cost no allocation), their
// values slices of data.
func headersOf(hs []batch.RecordHeader, data []byte, r *rawRecord, keys *keyCache) []batch.RecordHeader {
	i, end := int(r.hdrs.off), int(r.hdrs.off+r.hdrs.n)
	for range r.nHdrs {
		var k, v span
		k, i = bytesSpan(data, i, end, false) // checked by next
		v, i = bytesSpan(data, i, end, true)
		hs = append(hs, batch.RecordHeader{Key: keys.get(data[k.off : k.off+k.n]), Value: spanBytes(data, v)})
	}
	return hs
}

// keyCache interns header keys: the few distinct keys of a topic become a string once.
type keyCache struct{ keys []string }

// maxCachedKeys bounds the keys a keyCache keeps.
const maxCachedKeys = 16

// get returns k as a string, reusing a string seen before.
func (c *keyCache) get(k []byte) string {
	for _, s := range c.keys {
		if s == string(k) {
			return s
		}
	}
	s := string(k)
	if len(c.keys) < maxCachedKeys {
		c.keys = append(c.keys, s)
	}
	return s
}
