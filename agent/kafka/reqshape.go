package kafka

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Request shape checks
//
// Before kmsg decodes a request body, checkShape walks it with a small schema
// of the request (below, one per supported API key) and refuses it when:
//
//   - an array count or a tagged-field count is not backed by the bytes that
//     follow. kmsg's tag loop (`for num := b.Uvarint(); num > 0; num--`) keeps
//     spinning after its input runs out, so a 50-byte request announcing 4e9
//     tags costs ~10 s of CPU; and kmsg allocates a declared array length
//     before decoding its elements;
//   - the request holds more than maxRequestEntries array entries, which
//     bounds the memory decoding can take to a few MB whatever the frame size.
//
// The walk only needs to agree with kmsg while kmsg's input is good; it is
// lenient (nulls are accepted everywhere) because kmsg rejects what is
// malformed. The schemas follow the field order and version ranges of kmsg's
// generated readFrom functions.

// maxRequestEntries caps the array entries (topics, partitions, names, ...)
// of one request. A consumer fetching 30k partitions uses about 30k.
const maxRequestEntries = 100_000

type kind uint8

const (
	kInt8 kind = iota + 1
	kInt16
	kInt32
	kInt64
	kUUID
	kString      // string or nullable string: int16 length, compact when flexible
	kBytes       // bytes or nullable bytes: int32 length, compact when flexible
	kArray       // array of structs (each ends with a tag buffer when flexible)
	kInt32Array  // array of int32
	kStringArray // array of strings
)

// field is one field of a request, present in versions minV..maxV.
type field struct {
	k          kind
	minV, maxV int16
	elem       *shape // kArray
}

// shape is a struct: its fields and the known tagged fields that hold
// structs with tag buffers of their own.
type shape struct {
	fields []field
	tagged map[uint64]*shape
}

func f(k kind) field                    { return field{k: k, minV: 0, maxV: math.MaxInt16} }
func fv(k kind, minV, maxV int16) field { return field{k: k, minV: minV, maxV: maxV} }
func arr(elem ...field) field {
	return field{k: kArray, maxV: math.MaxInt16, elem: &shape{fields: elem}}
}
func arrv(minV, maxV int16, e ...field) field {
	return field{k: kArray, minV: minV, maxV: maxV, elem: &shape{fields: e}}
}

const vMax = math.MaxInt16

// requestShapes are the schemas of the request bodies we decode, by API key.
var requestShapes = map[int16]*shape{
	0: {fields: []field{ // Produce
		fv(kString, 3, vMax), // transactional id
		f(kInt16), f(kInt32), // acks, timeout
		arr(fv(kString, 0, 12), fv(kUUID, 13, vMax), arr(f(kInt32), f(kBytes))),
	}},
	1: {fields: []field{ // Fetch
		fv(kInt32, 0, 14), f(kInt32), f(kInt32), // replica id, max wait, min bytes
		fv(kInt32, 3, vMax), fv(kInt8, 4, vMax), // max bytes, isolation
		fv(kInt32, 7, vMax), fv(kInt32, 7, vMax), // session id, epoch
		arr(fv(kString, 0, 12), fv(kUUID, 13, vMax), arr(
			f(kInt32), fv(kInt32, 9, vMax), f(kInt64), // partition, leader epoch, offset
			fv(kInt32, 12, vMax), fv(kInt64, 5, vMax), f(kInt32))), // last fetched epoch, log start, max bytes
		arrv(7, vMax, fv(kString, 7, 12), fv(kUUID, 13, vMax), f(kInt32Array)), // forgotten
		fv(kString, 11, vMax), // rack
	}, tagged: map[uint64]*shape{1: {fields: []field{f(kInt32), f(kInt64)}}}}, // replica state
	2: {fields: []field{ // ListOffsets
		f(kInt32), fv(kInt8, 2, vMax),
		arr(f(kString), arr(f(kInt32), fv(kInt32, 4, vMax), f(kInt64), fv(kInt32, 0, 0))),
		fv(kInt32, 10, vMax),
	}},
	3: {fields: []field{ // Metadata
		arr(fv(kUUID, 10, vMax), f(kString)),
		fv(kInt8, 4, vMax), fv(kInt8, 8, 10), fv(kInt8, 8, vMax), // bools
	}},
	8: {fields: []field{ // OffsetCommit
		f(kString), fv(kInt32, 1, vMax), fv(kString, 1, vMax), fv(kString, 7, vMax), fv(kInt64, 2, 4), // group .. retention
		arr(fv(kString, 0, 9), fv(kUUID, 10, vMax), // topic, topic id
			arr(f(kInt32), f(kInt64), fv(kInt64, 1, 1), fv(kInt32, 6, vMax), f(kString))), // partition .. metadata
	}},
	9: {fields: []field{ // OffsetFetch
		fv(kString, 0, 7), arrv(0, 7, f(kString), f(kInt32Array)), // group, topics
		arrv(8, vMax, f(kString), fv(kString, 9, vMax), fv(kInt32, 9, vMax), // groups: group, member id, epoch,
			arr(fv(kString, 8, 9), fv(kUUID, 10, vMax), f(kInt32Array))), // topics
		fv(kInt8, 7, vMax), // require stable
	}},
	10: {fields: []field{fv(kString, 0, 3), fv(kInt8, 1, vMax), fv(kStringArray, 4, vMax)}}, // FindCoordinator
	11: {fields: []field{ // JoinGroup
		f(kString), f(kInt32), fv(kInt32, 1, vMax), f(kString), fv(kString, 5, vMax), f(kString), // group .. protocol type
		arr(f(kString), f(kBytes)), fv(kString, 8, vMax), // protocols, reason
	}},
	12: {fields: []field{f(kString), f(kInt32), f(kString), fv(kString, 3, vMax)}}, // Heartbeat
	13: {fields: []field{ // LeaveGroup
		f(kString), fv(kString, 0, 2), arrv(3, vMax, f(kString), f(kString), fv(kString, 5, vMax)),
	}},
	14: {fields: []field{ // SyncGroup
		f(kString), f(kInt32), f(kString), fv(kString, 3, vMax), fv(kString, 5, vMax), fv(kString, 5, vMax),
		arr(f(kString), f(kBytes)), // assignments
	}},
	15: {fields: []field{f(kStringArray), fv(kInt8, 3, vMax)}},                  // DescribeGroups
	16: {fields: []field{fv(kStringArray, 4, vMax), fv(kStringArray, 5, vMax)}}, // ListGroups
	18: {fields: []field{fv(kString, 3, vMax), fv(kString, 3, vMax)}},           // ApiVersions
	19: {fields: []field{ // CreateTopics
		arr(f(kString), f(kInt32), f(kInt16), arr(f(kInt32), f(kInt32Array)), arr(f(kString), f(kString))),
		f(kInt32), fv(kInt8, 1, vMax),
	}},
	20: {fields: []field{ // DeleteTopics
		fv(kStringArray, 0, 5), arrv(6, vMax, f(kString), f(kUUID)), f(kInt32),
	}},
	21: {fields: []field{ // DeleteRecords
		arr(f(kString), arr(f(kInt32), f(kInt64))), f(kInt32), // topics (partition, offset), timeout
	}},
	22: {fields: []field{ // InitProducerId
		f(kString), f(kInt32), fv(kInt64, 3, vMax), fv(kInt16, 3, vMax), // txn id, timeout, producer id, epoch
	}},
	32: {fields: []field{ // DescribeConfigs
		arr(f(kInt8), f(kString), f(kStringArray)), fv(kInt8, 1, vMax), fv(kInt8, 3, vMax),
	}},
	35: {fields: []field{arr(f(kString), f(kInt32Array))}}, // DescribeLogDirs (null topics: all)
	37: {fields: []field{ // CreatePartitions
		arr(f(kString), f(kInt32), arr(f(kInt32Array))), f(kInt32), f(kInt8),
	}},
	42: {fields: []field{f(kStringArray)}}, // DeleteGroups
	44: {fields: []field{ // IncrementalAlterConfigs
		arr(f(kInt8), f(kString), arr(f(kString), f(kInt8), f(kString))), f(kInt8),
	}},
	47: {fields: []field{f(kString), arr(f(kString), arr(f(kInt32)))}},      // OffsetDelete
	60: {fields: []field{f(kInt8), fv(kInt8, 1, vMax), fv(kInt8, 2, vMax)}}, // DescribeCluster
}

// checkShape walks body, a request of key at version, and returns why it
// must not be decoded, or nil. Keys without a schema pass.
func checkShape(key, version int16, flexible bool, body []byte) error {
	_, err := walkShape(key, version, flexible, body)
	return err
}

// walkShape is checkShape that also returns how many bytes the walk left.
func walkShape(key, version int16, flexible bool, body []byte) (rest int, err error) {
	s, ok := requestShapes[key]
	if !ok {
		return 0, nil
	}
	w := shapeWalker{b: body, v: version, flex: flexible}
	w.walk(s)
	return len(w.b), w.err
}

// shapeWalker walks Kafka primitives without decoding them; after the first
// failure every method is a no-op and err says what went wrong.
type shapeWalker struct {
	b       []byte
	v       int16
	flex    bool
	entries int
	err     error
}

func (w *shapeWalker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("request shape: "+format, args...)
	}
	w.b = nil
}

// walk walks one struct and, when flexible, its tag buffer.
func (w *shapeWalker) walk(s *shape) {
	for i := range s.fields {
		fd := &s.fields[i]
		if w.err != nil {
			return
		}
		if w.v >= fd.minV && w.v <= fd.maxV {
			w.field(fd)
		}
	}
	if w.flex {
		w.tags(s.tagged)
	}
}

func (w *shapeWalker) field(fd *field) {
	switch fd.k {
	case kInt8:
		w.skip(1)
	case kInt16:
		w.skip(2)
	case kInt32:
		w.skip(4)
	case kInt64:
		w.skip(8)
	case kUUID:
		w.skip(16)
	case kString:
		w.skip(w.length(2))
	case kBytes:
		w.skip(w.length(4))
	case kArray:
		for n := w.count(); n > 0 && w.err == nil; n-- {
			w.walk(fd.elem)
		}
	case kInt32Array:
		w.skip(4 * w.count())
	case kStringArray:
		for n := w.count(); n > 0 && w.err == nil; n-- {
			w.skip(w.length(2))
		}
	}
}

func (w *shapeWalker) skip(n int) {
	if w.err != nil {
		return
	}
	if n < 0 || n > len(w.b) {
		w.fail("a field of %d bytes overruns the %d bytes left", n, len(w.b))
		return
	}
	w.b = w.b[n:]
}

func (w *shapeWalker) uvarint() int {
	if w.err != nil {
		return 0
	}
	v, n := binary.Uvarint(w.b)
	if n <= 0 || v > math.MaxInt32 {
		w.fail("bad uvarint")
		return 0
	}
	w.b = w.b[n:]
	return int(v)
}

// fixed reads a big-endian int16 or int32.
func (w *shapeWalker) fixed(size int) int {
	if w.err != nil {
		return 0
	}
	if len(w.b) < size {
		w.fail("a length overruns the frame")
		return 0
	}
	var v int
	if size == 2 {
		v = int(int16(binary.BigEndian.Uint16(w.b)))
	} else {
		v = int(int32(binary.BigEndian.Uint32(w.b)))
	}
	w.b = w.b[size:]
	return v
}

// length reads a string (size 2) or bytes (size 4) length; null is 0.
func (w *shapeWalker) length(size int) int {
	n := 0
	if w.flex {
		n = w.uvarint() - 1
	} else {
		n = w.fixed(size)
	}
	return max(n, 0)
}

// count reads an array count; every entry takes at least one byte, and the
// request may hold at most maxRequestEntries entries in all.
func (w *shapeWalker) count() int {
	n := 0
	if w.flex {
		n = w.uvarint() - 1
	} else {
		n = w.fixed(4)
	}
	if w.err != nil || n <= 0 {
		return 0
	}
	if n > len(w.b) {
		w.fail("array of %d entries in %d bytes", n, len(w.b))
		return 0
	}
	if w.entries += n; w.entries > maxRequestEntries {
		w.fail("more than %d array entries", maxRequestEntries)
		return 0
	}
	return n
}

// tags walks a tag buffer; known tags holding structs are walked too.
func (w *shapeWalker) tags(known map[uint64]*shape) {
	n := w.uvarint()
	if n > len(w.b)/2 { // a tag takes at least two bytes
		w.fail("%d tagged fields in %d bytes", n, len(w.b))
		return
	}
	for ; n > 0 && w.err == nil; n-- {
		tag := uint64(w.uvarint())
		size := w.uvarint()
		if w.err != nil || size > len(w.b) {
			w.fail("tagged field of %d bytes overruns the frame", size)
			return
		}
		if s, ok := known[tag]; ok {
			sub := shapeWalker{b: w.b[:size], v: w.v, flex: w.flex, entries: w.entries}
			sub.walk(s)
			if sub.err != nil {
				w.fail("tag %d: %v", tag, sub.err)
				return
			}
			w.entries = sub.entries
		}
		w.b = w.b[size:]
	}
}
