package manifest

import (
	"bytes"
	"errors"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error without ErrBadManifest: %v", err)
			}
			return
		}
		for i := 1; i < len(m.Segments); i++ {
			if m.Segments[i].BaseOffset < m.Segments[i-1].EndOffset() {
				t.Fatal("decoded overlapping segments")
			}
		}
		if _, err := Decode(m.Encode()); err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
	})
}
