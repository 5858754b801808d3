package commitlog

import (
	"strconv"
	"testing"
	"unsafe"
)

// testKey appends the test key for i to buf[:0].
func testKey(buf []byte, i int) []byte {
	return strconv.AppendInt(append(buf[:0], "sensor/"...), int64(i), 10)
}

// checkKeyMapInvariants checks that every used slot carries the marker bit
// and that len() counts exactly the used slots.
func checkKeyMapInvariants(t *testing.T, m *keyMap) {
	t.Helper()
	used := 0
	for _, s := range m.slots {
		switch {
		case s.hi&1 == 1:
			used++
		case s.hi != 0 || s.lo != 0 || s.offset != 0:
			t.Fatalf("slot %+v is neither empty nor marked used", s)
		}
	}
	if used != m.len() {
		t.Fatalf("%d used slots, len() = %d", used, m.len())
	}
}

func TestKeyMapManyKeysWithOverwrites(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	m := newKeyMap(int64(n) * keyMapSlotBytes * 12 / 10) // room for n keys under the load limit
	if m.capacity() < n {
		t.Fatalf("capacity %d for %d keys", m.capacity(), n)
	}
	want := make([]int64, n)
	var buf []byte
	offset := int64(0)
	// Three passes in offset order, like the cleaner's scan: every key, then
	// every third key, then every seventh, each time with a later offset.
	for _, step := range []int{1, 3, 7} {
		for i := 0; i < n; i += step {
			buf = testKey(buf, i)
			if !m.put(buf, offset) {
				t.Fatalf("put(%s) refused with %d of %d keys", buf, m.len(), m.capacity())
			}
			want[i] = offset
			offset++
		}
	}
	if m.len() != n {
		t.Fatalf("len %d, want %d", m.len(), n)
	}
	for i := range n {
		buf = testKey(buf, i)
		got, ok := m.get(buf)
		if !ok || got != want[i] {
			t.Fatalf("get(%s) = %d, %v; want %d", buf, got, ok, want[i])
		}
	}
	for i := n; i < n+n/10; i++ {
		buf = testKey(buf, i)
		if got, ok := m.get(buf); ok {
			t.Fatalf("get(%s) of a key never put = %d", buf, got)
		}
	}
	checkKeyMapInvariants(t, m)
}

func TestKeyMapFullAtLoadLimit(t *testing.T) {
	for _, slots := range []int{1, 2, 10, 100, 1001} {
		m := newKeyMap(int64(slots)*keyMapSlotBytes + keyMapSlotBytes - 1) // a partial slot is not a slot
		if len(m.slots) != slots {
			t.Fatalf("%d slots, want %d", len(m.slots), slots)
		}
		limit := slots * 9 / 10
		if m.capacity() != limit {
			t.Fatalf("%d slots: capacity %d, want %d", slots, m.capacity(), limit)
		}
		var buf []byte
		for i := range limit {
			if m.full() {
				t.Fatalf("%d slots: full with %d keys", slots, i)
			}
			if !m.put(testKey(buf, i), int64(i)) {
				t.Fatalf("%d slots: put %d refused", slots, i)
			}
		}
		if !m.full() || m.len() != limit {
			t.Fatalf("%d slots: full %v, len %d at the limit %d", slots, m.full(), m.len(), limit)
		}
		// A new key is refused and not stored; existing keys still update.
		if m.put(testKey(buf, limit), 99) {
			t.Fatalf("%d slots: put of a new key accepted when full", slots)
		}
		if _, ok := m.get(testKey(buf, limit)); ok || m.len() != limit {
			t.Fatalf("%d slots: refused key stored (len %d)", slots, m.len())
		}
		for i := range limit {
			if !m.put(testKey(buf, i), int64(1000+i)) {
				t.Fatalf("%d slots: overwrite of key %d refused when full", slots, i)
			}
		}
		for i := range limit {
			if got, ok := m.get(testKey(buf, i)); !ok || got != int64(1000+i) {
				t.Fatalf("%d slots: get(%d) = %d, %v after overwrite", slots, i, got, ok)
			}
		}
		if m.len() != limit {
			t.Fatalf("%d slots: len %d after overwrites", slots, m.len())
		}
		checkKeyMapInvariants(t, m)
	}
}

func TestKeyMapReset(t *testing.T) {
	m := newKeyMap(24 * 1000)
	mem := unsafe.SliceData(m.slots)
	var buf []byte
	for i := 0; !m.full(); i++ {
		m.put(testKey(buf, i), int64(i))
	}
	m.reset()
	if m.len() != 0 || m.full() || unsafe.SliceData(m.slots) != mem || len(m.slots) != 1000 {
		t.Fatalf("after reset: len %d, full %v, memory kept %v, %d slots", m.len(), m.full(), unsafe.SliceData(m.slots) == mem, len(m.slots))
	}
	for i := range m.capacity() {
		if _, ok := m.get(testKey(buf, i)); ok {
			t.Fatalf("key %d survived reset", i)
		}
	}
	checkKeyMapInvariants(t, m)
	for i := range m.capacity() {
		if !m.put(testKey(buf, i+5000), int64(i)) {
			t.Fatalf("put %d after reset refused", i)
		}
	}
	if !m.full() {
		t.Fatal("refilled map not full")
	}
}

func TestKeyMapEdgeCases(t *testing.T) {
	for _, b := range []int64{-100, 0, 1, 23} {
		m := newKeyMap(b)
		if m.capacity() != 0 || !m.full() || m.put([]byte("k"), 1) || m.put(nil, 1) || m.len() != 0 {
			t.Fatalf("newKeyMap(%d): capacity %d, full %v, len %d", b, m.capacity(), m.full(), m.len())
		}
		if _, ok := m.get([]byte("k")); ok {
			t.Fatalf("newKeyMap(%d): get found a key", b)
		}
		m.reset()
	}
	m := newKeyMap(24 * 100)
	// nil and empty keys do not crash; they hash alike.
	if !m.put(nil, 7) {
		t.Fatal("put(nil) refused")
	}
	if got, ok := m.get([]byte{}); !ok || got != 7 {
		t.Fatalf("get(empty) = %d, %v; want 7 (same key as nil)", got, ok)
	}
	// Keys that differ only slightly are distinct, and offsets may be any int64.
	keys := [][]byte{[]byte("a"), []byte("a\x00"), []byte("\x00a"), []byte("A"), []byte("ab"), []byte("ba")}
	for i, k := range keys {
		if !m.put(k, int64(-1-i)) {
			t.Fatalf("put(%q) refused", k)
		}
	}
	for i, k := range keys {
		if got, ok := m.get(k); !ok || got != int64(-1-i) {
			t.Fatalf("get(%q) = %d, %v; want %d", k, got, ok, -1-i)
		}
	}
	if m.len() != len(keys)+1 {
		t.Fatalf("len %d, want %d", m.len(), len(keys)+1)
	}
	checkKeyMapInvariants(t, m)
}

func TestKeyMapMemoryAndAllocations(t *testing.T) {
	if size := unsafe.Sizeof(keyMapSlot{}); size != keyMapSlotBytes {
		t.Fatalf("slot is %d bytes, want %d", size, keyMapSlotBytes)
	}
	const budget = 10<<20 + 17
	m := newKeyMap(budget)
	if got := int64(cap(m.slots)) * keyMapSlotBytes; got > budget || got <= budget-keyMapSlotBytes {
		t.Fatalf("table memory %d bytes for a budget of %d", got, budget)
	}
	if allocs := testing.AllocsPerRun(5, func() { newKeyMap(1 << 16) }); allocs > 2 {
		t.Fatalf("newKeyMap allocates %.0f times, want the map and one slot slice", allocs)
	}
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = testKey(nil, i)
	}
	i := 0
	if allocs := testing.AllocsPerRun(10000, func() {
		k := keys[i%len(keys)]
		m.put(k, int64(i))
		m.get(k)
		m.get(keys[(i*7)%len(keys)])
		m.full()
		i++
	}); allocs != 0 {
		t.Fatalf("put/get allocate %.2f times per call", allocs)
	}
	if allocs := testing.AllocsPerRun(5, m.reset); allocs != 0 {
		t.Fatalf("reset allocates %.0f times", allocs)
	}
}

// benchKeyMap returns a map of 1M slots holding n keys, and the keys.
func benchKeyMap(b *testing.B, n int) (*keyMap, [][]byte) {
	m := newKeyMap(1 << 20 * keyMapSlotBytes)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = testKey(nil, i)
		if !m.put(keys[i], int64(i)) {
			b.Fatalf("put %d refused", i)
		}
	}
	return m, keys
}

func BenchmarkKeyMapPut(b *testing.B) {
	for _, load := range []int{50, 89} {
		b.Run(strconv.Itoa(load)+"%", func(b *testing.B) {
			m, keys := benchKeyMap(b, (1<<20)*load/100)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.put(keys[i%len(keys)], int64(i))
				i++
			}
		})
	}
}

func BenchmarkKeyMapGet(b *testing.B) {
	for _, load := range []int{50, 89} {
		b.Run(strconv.Itoa(load)+"%", func(b *testing.B) {
			m, keys := benchKeyMap(b, (1<<20)*load/100)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.get(keys[i%len(keys)])
				i++
			}
		})
	}
}
