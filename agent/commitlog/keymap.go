package commitlog

import (
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keyMapSlotBytes is the memory one keyMap slot takes: a 128-bit key hash
// and an 8-byte offset.
const keyMapSlotBytes = 24

// keyMapSlot is one entry of a keyMap. A slot whose hash is all zero is
// empty; stored hashes always have the low bit of hi set, so they never are.
type keyMapSlot struct {
	hi, lo uint64
	offset int64
}

// keyMap is a fixed-size open-addressing hash table from a 128-bit hash of a
// record key to the latest offset seen for that key, the cleaner's offset
// map. Its memory is one flat slice of 24-byte slots allocated up front;
// nothing is allocated per key and keys themselves are never stored.
//
// Two keys are the same key when their 128-bit hashes (two hash/maphash
// hashes with independent random seeds, one bit forced to mark used slots)
// are equal. With 127 effective bits, a collision among a billion keys has
// a probability around 10^-20; one would make the cleaner treat two keys as
// one and drop a live key's latest value. Hashes are seeded per map, so they
// are not stable across maps or processes.
//
// Probing is linear from a slot picked by the high hash; the table refuses
// new keys once it holds 90% of its slots, so a lookup always meets an empty
// slot. A nil and an empty key hash alike; the cleaner keeps records with
// null keys and never puts them. A keyMap is not safe for concurrent use.
type keyMap struct {
	slots    []keyMapSlot
	count    int
	limit    int // keys the map holds before it is full
	seedHi   maphash.Seed
	seedLo   maphash.Seed
	nslots64 uint64
	mapped   []byte // the mmapped memory behind slots, nil when slots is a Go slice
}

// allocSlots returns n zeroed slots, in anonymous mmapped memory when possible.
func allocSlots(n int) ([]keyMapSlot, []byte) {
	if n == 0 {
		return nil, nil
	}
	mem, err := unix.Mmap(-1, 0, n*keyMapSlotBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]keyMapSlot, n), nil
	}
	return unsafe.Slice((*keyMapSlot)(unsafe.Pointer(&mem[0])), n), mem
}

// release returns the map's memory; the map must not be used afterwards.
func (m *keyMap) release() {
	if m.mapped != nil {
		unix.Munmap(m.mapped)
		m.mapped = nil
	}
	m.slots, m.count, m.limit = nil, 0, 0
}

// keyMapLoadNum/keyMapLoadDen is the load limit: 0.9 of the slots.
const (
	keyMapLoadNum = 9
	keyMapLoadDen = 10
)

// keyMapMaxSlots caps the slots so that the slice length fits an int (on
// 32-bit platforms too); the configuration bounds the buffer far below it.
const keyMapMaxSlots = math.MaxInt / keyMapSlotBytes

// newKeyMap returns an empty keyMap using at most bufferBytes of memory:
// bufferBytes/24 slots, allocated at once. A budget below one slot gives a
// map that is always full.
//
// The slots live in anonymous mmapped memory, outside the Go heap, when the platform allows:
// the garbage collector then neither scans them nor lets the heap grow to twice the budget
// before collecting, so the cleaner's resident memory stays close to its budget. Call
// release when done with the map.
func newKeyMap(bufferBytes int64) *keyMap {
	n := min(max(bufferBytes/keyMapSlotBytes, 0), keyMapMaxSlots)
	slots, mapped := allocSlots(int(n))
	m := &keyMap{
		slots:    slots,
		mapped:   mapped,
		seedHi:   maphash.MakeSeed(),
		seedLo:   maphash.MakeSeed(),
		nslots64: uint64(n),
	}
	// n*9 cannot overflow: n is at most MaxInt64/24.
	m.limit = int(n * keyMapLoadNum / keyMapLoadDen)
	return m
}

// hash returns the 128-bit hash of key, with the low bit of hi set so that
// no stored hash is all zero.
func (m *keyMap) hash(key []byte) (hi, lo uint64) {
	return maphash.Bytes(m.seedHi, key) | 1, maphash.Bytes(m.seedLo, key)
}

// find returns the index of key's slot, or of the empty slot where it would
// go. The map must have at least one empty slot, which the load limit
// guarantees whenever there are slots at all.
func (m *keyMap) find(hi, lo uint64) int {
	// The top bits of lo pick the start slot (multiply-shift, no modulo);
	// hi's low bit is forced, so lo is the unbiased choice.
	i, _ := bits.Mul64(lo, m.nslots64)
	for {
		s := &m.slots[i]
		if (s.hi == hi && s.lo == lo) || s.hi == 0 {
			return int(i)
		}
		if i++; i == m.nslots64 {
			i = 0
		}
	}
}

// put records offset as key's latest offset, overwriting any earlier one
// (the cleaner scans in offset order, so the last put wins). It returns
// false, storing nothing, when key is new and the map is full.
func (m *keyMap) put(key []byte, offset int64) bool {
	if len(m.slots) == 0 {
		return false
	}
	hi, lo := m.hash(key)
	s := &m.slots[m.find(hi, lo)]
	if s.hi == 0 {
		if m.count >= m.limit {
			return false
		}
		s.hi, s.lo = hi, lo
		m.count++
	}
	s.offset = offset
	return true
}

// get returns the latest offset put for key, and whether there is one.
func (m *keyMap) get(key []byte) (int64, bool) {
	if len(m.slots) == 0 {
		return 0, false
	}
	s := &m.slots[m.find(m.hash(key))]
	if s.hi == 0 {
		return 0, false
	}
	return s.offset, true
}

// len returns the number of distinct keys in the map.
func (m *keyMap) len() int { return m.count }

// full reports whether the map is at its load limit: a new key would be refused.
func (m *keyMap) full() bool { return m.count >= m.limit }

// reset empties the map, keeping its memory and seeds.
func (m *keyMap) reset() {
	clear(m.slots)
	m.count = 0
}

// capacity returns the number of distinct keys the map holds before it is full.
func (m *keyMap) capacity() int { return m.limit }
