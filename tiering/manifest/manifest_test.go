package manifest

import (
	"bytes"
	"errors"
	"math"
	"path"
	"testing"
)

func sample() *Manifest {
	return &Manifest{Version: Version, Topic: "t", TopicID: "00ff", Partition: 3, LogStartOffset: 5, Segments: []SegmentMeta{
		{BaseOffset: 0, LastOffset: 99, FirstTimestamp: 1, MaxTimestamp: 9, Records: 100, Size: 4096, IndexSize: 8, TimeIndexSize: 12, CRC32C: 7, Codecs: "lz4"},
		{BaseOffset: 100, LastOffset: 149, FirstTimestamp: 10, MaxTimestamp: 19, Records: 50, Size: 2048},
	}}
}

func TestRoundTripAndQueries(t *testing.T) {
	m := sample()
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), m.Encode()) {
		t.Fatal("encode/decode round trip differs")
	}
	if m.StartOffset() != 5 || m.EndOffset() != 150 || m.Size() != 6144 {
		t.Fatalf("start %d end %d size %d", m.StartOffset(), m.EndOffset(), m.Size())
	}
	if m.Find(99) != 0 || m.Find(100) != 1 || m.Find(150) != -1 {
		t.Fatalf("find: %d %d %d", m.Find(99), m.Find(100), m.Find(150))
	}
	if k := m.Segments[1].Key("site/gw", "t", 3, ".log"); k != "site/gw/t/3/00000000000000000100-0.log" {
		t.Fatalf("key %q", k)
	}
	base, epoch, ext, ok := ParseSegmentKey("site/gw/t/3/00000000000000000100-7.timeindex")
	if !ok || base != 100 || epoch != 7 || ext != ".timeindex" {
		t.Fatalf("parse: %d %d %q %v", base, epoch, ext, ok)
	}
	if ManifestKey("", "t", 0) != "t/0/manifest.json" {
		t.Fatalf("manifest key %q", ManifestKey("", "t", 0))
	}
}

func TestDecodeRefusesContradictions(t *testing.T) {
	for name, edit := range map[string]func(*Manifest){
		"version":  func(m *Manifest) { m.Version = 99 },
		"overlap":  func(m *Manifest) { m.Segments[1].BaseOffset = 50 },
		"backward": func(m *Manifest) { m.Segments[0].LastOffset = -1 },
		"size":     func(m *Manifest) { m.Segments[0].Size = -1 },
	} {
		m := sample()
		edit(m)
		if _, err := Decode(m.Encode()); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: %v, want ErrBadManifest", name, err)
		}
	}
}

// FuzzDecode: any input either fails with ErrBadManifest or decodes to a manifest whose
// segments are ordered and whose re-encoding decodes again.
func FuzzDecode(f *testing.F) {
	f.Add(sample().Encode())
	f.Add([]byte(`{"version":1,"segments":[]}`))
	f.Add([]byte(`{"version":1,"segments":[{"base_offset":5,"last_offset":4}]}`))
	f.Add([]byte(wrappingManifest))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error without ErrBadManifest: %v", err)
			}
			return
		}
		for i, s := range m.Segments {
			// Compared without EndOffset, which would wrap at MaxInt64.
			if s.BaseOffset < 0 || s.LastOffset < s.BaseOffset || i > 0 && s.BaseOffset <= m.Segments[i-1].LastOffset {
				t.Fatalf("decoded segment %d with offsets %d..%d after %+v", i, s.BaseOffset, s.LastOffset, m.Segments[:i])
			}
			if s.EndOffset() <= s.LastOffset {
				t.Fatalf("segment %d: end offset %d wraps", i, s.EndOffset())
			}
		}
		if end := m.EndOffset(); len(m.Segments) > 0 && end != m.Segments[len(m.Segments)-1].LastOffset+1 {
			t.Fatalf("end offset %d", end)
		}
		if _, err := Decode(m.Encode()); err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
	})
}

// wrappingManifest has a segment ending at the last offset there is, followed by one that
// overlaps it: its EndOffset wrapped to MinInt64, so Decode took the second for ordered.
const wrappingManifest = `{"version":1,"segments":[{"base_offset":0,"last_offset":9223372036854775807},{"base_offset":5,"last_offset":6}]}`

// TestDecodeRefusesWrappingEndOffset: found by tightening FuzzDecode's overlap check.
func TestDecodeRefusesWrappingEndOffset(t *testing.T) {
	if m, err := Decode([]byte(wrappingManifest)); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("decoded %+v, %v; want ErrBadManifest", m, err)
	}
	last := `{"version":1,"segments":[{"base_offset":0,"last_offset":9223372036854775806}]}`
	if m, err := Decode([]byte(last)); err != nil || m.EndOffset() != math.MaxInt64 {
		t.Fatalf("segment ending at MaxInt64-1: %v", err)
	}
}

// TestParseSegmentKeyOnlyOurNames: names SegmentKey never makes are not segment objects, so
// removeOrphans leaves them alone (found by FuzzParseSegmentKey).
func TestParseSegmentKeyOnlyOurNames(t *testing.T) {
	for _, name := range []string{
		"p/t/0/+0000000000000000005-0.log", "p/t/0/00000000000000000005-07.log", "p/t/0/00000000000000000005-+7.index",
		"p/t/0/00000000000000000005--0.log", "p/t/0/00000000000000000005-.log", "p/t/0/-0000000000000000005-1.log",
	} {
		if base, epoch, ext, ok := ParseSegmentKey(name); ok {
			t.Errorf("%s parsed as %d, %d, %q", name, base, epoch, ext)
		}
	}
	for _, epoch := range []int32{0, 7, -1, math.MaxInt32, math.MinInt32} {
		key := SegmentKey("p", "t", 0, 5, epoch, ".log")
		if base, e, ext, ok := ParseSegmentKey(key); !ok || base != 5 || e != epoch || ext != ".log" {
			t.Errorf("%s parsed as %d, %d, %q, %v", key, base, e, ext, ok)
		}
	}
}

// FuzzParseSegmentKey: a name that parses is exactly the name SegmentKey makes of what it
// parsed to (so removeOrphans deletes only what the uploader could have written), and what
// SegmentKey makes parses back.
func FuzzParseSegmentKey(f *testing.F) {
	for _, s := range []string{"site/gw/t/3/00000000000000000100-7.timeindex", "t/0/00000000000000000000--1.log",
		"+0000000000000000005-0.log", "00000000000000000005-07.index", "manifest.json", "9223372036854775807-2147483647.log"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		base, epoch, ext, ok := ParseSegmentKey(name)
		if !ok {
			return
		}
		key := SegmentKey("p", "t", 0, base, epoch, ext)
		if path.Base(key) != path.Base(name) {
			t.Fatalf("%q parsed as (%d, %d, %q), which SegmentKey names %q", name, base, epoch, ext, key)
		}
		if b, e, x, ok := ParseSegmentKey(key); !ok || b != base || e != epoch || x != ext {
			t.Fatalf("%q parsed as (%d, %d, %q, %v)", key, b, e, x, ok)
		}
	})
}
