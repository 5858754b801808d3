package cloud

import (
	"encoding/binary"
	"errors"
	"testing"
)

func offsetIndexBytes(entries ...[2]uint32) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, e[0])
		b = binary.BigEndian.AppendUint32(b, e[1])
	}
	return b
}

func timeIndexBytes(entries ...timeEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, e.rel)
	}
	return b
}

func TestOffsetIndex(t *testing.T) {
	b := offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{25, 2100}, [2]uint32{40, 3500})
	x, err := parseOffsetIndex(append(b, make([]byte, 16)...), 5000, 60) // zero tail: unused space
	if err != nil || len(x) != 3 {
		t.Fatalf("%v %v", x, err)
	}
	for rel, want := range map[int64]int64{0: 0, 9: 0, 10: 1000, 24: 1000, 25: 2100, 60: 3500} {
		if got := x.floor(rel); got != want {
			t.Errorf("floor(%d) = %d, want %d", rel, got, want)
		}
	}
	for rel, want := range map[int64]int64{0: 1000, 10: 1000, 11: 2100, 40: 3500} {
		if got, ok := x.ceil(rel); !ok || got != want {
			t.Errorf("ceil(%d) = %d %v, want %d", rel, got, ok, want)
		}
	}
	if _, ok := x.ceil(41); ok {
		t.Error("ceil past the last entry")
	}
	for pos, want := range map[int64]int64{0: 1000, 999: 1000, 1000: 2100, 3499: 3500} {
		if got, ok := x.after(pos); !ok || got != want {
			t.Errorf("after(%d) = %d %v, want %d", pos, got, ok, want)
		}
	}
	if _, ok := x.after(3500); ok {
		t.Error("after the last entry")
	}
	for name, bad := range map[string][]byte{
		"partial":      b[:7],
		"past the log": offsetIndexBytes([2]uint32{1, 6000}),
		"position 0":   offsetIndexBytes([2]uint32{1, 0}),
		"past the end": offsetIndexBytes([2]uint32{61, 100}),
		"unsorted":     offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{5, 2000}),
		"same pos":     offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{12, 1000}),
		"zero inside":  append(offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{0, 0}), offsetIndexBytes([2]uint32{12, 1200})...),
	} {
		if _, err := parseOffsetIndex(bad, 5000, 60); !errors.Is(err, ErrBadIndex) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTimeIndex(t *testing.T) {
	x, err := parseTimeIndex(timeIndexBytes(timeEntry{100, 10}, timeEntry{200, 25}, timeEntry{300, 25}, timeEntry{450, 60}), 60)
	if err != nil {
		t.Fatal(err)
	}
	for ts, want := range map[int64]int64{101: 10, 200: 10, 201: 25, 301: 25, 451: 60} {
		if got, ok := x.skipBefore(ts); !ok || got != want {
			t.Errorf("skipBefore(%d) = %d %v, want %d", ts, got, ok, want)
		}
	}
	if _, ok := x.skipBefore(100); ok {
		t.Error("skipBefore at the first entry")
	}
	for ts, want := range map[int64]int64{0: 10, 100: 10, 101: 25, 450: 60} {
		if got, ok := x.reaching(ts); !ok || got != want {
			t.Errorf("reaching(%d) = %d %v, want %d", ts, got, ok, want)
		}
	}
	if _, ok := x.reaching(451); ok {
		t.Error("reaching past the last entry")
	}
	for name, bad := range map[string][]byte{
		"partial":       timeIndexBytes(timeEntry{1, 1})[:11],
		"ts not rising": timeIndexBytes(timeEntry{100, 10}, timeEntry{100, 20}),
		"rel falling":   timeIndexBytes(timeEntry{100, 10}, timeEntry{200, 5}),
		"past the end":  timeIndexBytes(timeEntry{100, 61}),
	} {
		if _, err := parseTimeIndex(bad, 60); !errors.Is(err, ErrBadIndex) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseOffsetIndex: any input is rejected with ErrBadIndex or parses to entries strictly
// increasing in offset and position inside the log, and the lookups agree with them.
func FuzzParseOffsetIndex(f *testing.F) {
	f.Add(offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{25, 2100}), int64(5000), int64(60))
	f.Add(offsetIndexBytes([2]uint32{10, 1000}, [2]uint32{0, 0}), int64(1001), int64(10))
	f.Add([]byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, logSize, lastRel int64) {
		x, err := parseOffsetIndex(b, logSize, lastRel)
		if err != nil {
			if !errors.Is(err, ErrBadIndex) {
				t.Fatalf("error without ErrBadIndex: %v", err)
			}
			return
		}
		for i, e := range x {
			if e.pos == 0 || int64(e.pos) >= logSize || int64(e.rel) > lastRel || i > 0 && (e.rel <= x[i-1].rel || e.pos <= x[i-1].pos) {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if x.floor(int64(e.rel)) != int64(e.pos) {
				t.Fatalf("floor(%d) misses entry %d", e.rel, i)
			}
			if p, ok := x.ceil(int64(e.rel)); !ok || p != int64(e.pos) {
				t.Fatalf("ceil(%d) misses entry %d", e.rel, i)
			}
			if p, ok := x.after(int64(e.pos) - 1); !ok || p != int64(e.pos) {
				t.Fatalf("after(%d) misses entry %d", e.pos-1, i)
			}
		}
	})
}

// FuzzParseTimeIndex: any input is rejected with ErrBadIndex or parses to entries with rising
// timestamps and non-decreasing offsets within the segment, and the lookups agree.
func FuzzParseTimeIndex(f *testing.F) {
	f.Add(timeIndexBytes(timeEntry{100, 10}, timeEntry{200, 25}), int64(60))
	f.Add(timeIndexBytes(timeEntry{0, 0}, timeEntry{0, 0}), int64(0))
	f.Add(timeIndexBytes(timeEntry{-5, 3}), int64(3))
	f.Fuzz(func(t *testing.T, b []byte, lastRel int64) {
		x, err := parseTimeIndex(b, lastRel)
		if err != nil {
			if !errors.Is(err, ErrBadIndex) {
				t.Fatalf("error without ErrBadIndex: %v", err)
			}
			return
		}
		for i, e := range x {
			if int64(e.rel) > lastRel || i > 0 && (e.ts <= x[i-1].ts || e.rel < x[i-1].rel) {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if rel, ok := x.reaching(e.ts); !ok || rel != int64(e.rel) {
				t.Fatalf("reaching(%d) misses entry %d", e.ts, i)
			}
			if e.ts < 1<<62 {
				if rel, ok := x.skipBefore(e.ts + 1); !ok || rel != int64(e.rel) {
					t.Fatalf("skipBefore(%d) misses entry %d", e.ts+1, i)
				}
			}
		}
	})
}
