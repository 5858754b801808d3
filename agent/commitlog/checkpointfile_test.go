package commitlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestOffsetFileFormat pins the bytes of an offset file and checks that it reads back.
func TestOffsetFileFormat(t *testing.T) {
	if got, want := string(encodeOffsetFile(95)), "offset-checkpoint v1\n95\ncrc32c 89d7a700\n"; got != want {
		t.Fatalf("offset file of 95:\n%q, want\n%q", got, want)
	}
	for _, n := range []int64{0, 1, 95, 1 << 40, math.MaxInt64} {
		got, checked, err := decodeOffsetFile(encodeOffsetFile(n))
		if err != nil || !checked || got != n {
			t.Fatalf("offset file of %d reads %d, checked %v, %v", n, got, checked, err)
		}
	}
}

// TestOffsetFileEveryBitFlipIsCaught: no single flipped bit, anywhere in an offset file, reads
// as an offset, checked or bare.
func TestOffsetFileEveryBitFlipIsCaught(t *testing.T) {
	for _, n := range []int64{0, 30, 95, 1_234_567, math.MaxInt64} {
		data := encodeOffsetFile(n)
		for i := range data {
			for bit := range 8 {
				damaged := bytes.Clone(data)
				damaged[i] ^= 1 << bit
				if got, checked, err := decodeOffsetFile(damaged); err == nil {
					t.Fatalf("%q with bit %d of byte %d flipped reads %d (checked %v)", data, bit, i, got, checked)
				}
			}
		}
	}
}

// TestOffsetFileDecode covers the old format (a bare number) and malformed files.
func TestOffsetFileDecode(t *testing.T) {
	withSum := func(body string) string { // a valid checksum line after body
		return string(sealOffsetLines(body))
	}
	cases := []struct {
		content string
		want    int64
		checked bool
		problem string // "" = loads
	}{
		{content: "95\n", want: 95},
		{content: "95", want: 95},
		{content: " 7 \n", want: 7},
		{content: "0\n", want: 0},
		{content: "", problem: "neither a checkpoint nor a bare offset"},
		{content: "-1\n", problem: "neither"},
		{content: "9x\n", problem: "neither"},
		{content: "\x00\x00\x00", problem: "neither"},
		{content: "offset-checkpoint v1\n95\ncrc32c 89d7a700\n", want: 95, checked: true},
		{content: "offset-checkpoint v1\n95\ncrc32c 89D7A700\n", problem: "malformed checksum line"},
		{content: "offset-checkpoint v1\n95\ncrc32c 89d7a700", problem: "no complete checksum line"},
		{content: "offset-checkpoint v1\n95\ncrc32c 89d7a700\n\n", problem: "1 bytes after the checksum line"},
		{content: "offset-checkpoint v1\n95", problem: "truncated after the format line"},
		{content: "offset-checkpoint v1\n", problem: "truncated"},
		{content: "offset-checkpoint v1", problem: "truncated after the format line"},
		{content: "offset-checkpoint v1 \n95\ncrc32c 89d7a700\n", problem: "unsupported format line"},
		{content: "offset-checkpoint v2\n95\ncrc32c 89d7a700\n", problem: "unsupported format line"},
		{content: "offset-checkpoint v1\n96\ncrc32c 89d7a700\n", problem: "checksum mismatch"},
		{content: withSum("offset-checkpoint v1\n-5\n"), problem: "not a non-negative decimal"},
		{content: withSum("offset-checkpoint v1\n007\n"), problem: "not a non-negative decimal"},
		{content: withSum("offset-checkpoint v1\n+7\n"), problem: "not a non-negative decimal"},
		{content: withSum("offset-checkpoint v1\n99999999999999999999\n"), problem: "not a non-negative decimal"},
		{content: withSum("offset-checkpoint v1\n\n"), problem: "not a non-negative decimal"},
	}
	for _, c := range cases {
		got, checked, err := decodeOffsetFile([]byte(c.content))
		switch {
		case c.problem == "" && (err != nil || got != c.want || checked != c.checked):
			t.Errorf("%q reads %d, checked %v, %v; want %d, checked %v", c.content, got, checked, err, c.want, c.checked)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%q: error %v, want one saying %q", c.content, err, c.problem)
		}
	}
}

// sealOffsetLines appends a valid checksum line to body.
func sealOffsetLines(body string) []byte {
	b := []byte(body)
	return fmt.Appendf(b, "%s%08x\n", offsetFileCRC, crc32.Checksum(b, crc32c))
}

// TestOffsetFilesWrittenWithChecksum: DeleteRecords writes both files checked, and a file of
// an earlier version that loads is rewritten with a checksum; one that is ignored is left as
// it was, for whoever looks into it.
func TestOffsetFilesWrittenWithChecksum(t *testing.T) {
	dir, pdir, base0 := deleteRecordsLog(t)
	for _, name := range []string{logStartName, deletedBelowName} {
		if data, err := os.ReadFile(filepath.Join(pdir, name)); err != nil || !bytes.Equal(data, encodeOffsetFile(30)) {
			t.Fatalf("%s after DeleteRecordsBefore(30): %q, %v", name, data, err)
		}
	}
	files := map[string]string{logStartName: "30\n", deletedBelowName: "25\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(pdir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t, dir, Options{})
	checkKept(t, s.Topic("t").Partition(0), 30)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{logStartName: 30, deletedBelowName: 25} {
		data, err := os.ReadFile(filepath.Join(pdir, name))
		if err != nil || !bytes.Equal(data, encodeOffsetFile(want)) {
			t.Fatalf("%s after loading %q: %q, %v; want it rewritten with a checksum", name, files[name], data, err)
		}
	}
	damaged := "offset-checkpoint v1\n70\ncrc32c 00000000\n"
	if err := os.WriteFile(filepath.Join(pdir, logStartName), []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l := s.Topic("t").Partition(0)
	checkKept(t, l, max(25, base0)) // the floor (25) and the first segment are all that hold the start
	if data, err := os.ReadFile(filepath.Join(pdir, logStartName)); err != nil || string(data) != damaged {
		t.Fatalf("damaged log-start-offset after open: %q, %v; want it left alone", data, err)
	}
}

// TestCleanerCheckpointFormat pins the bytes of cleaner-checkpoint.json, checks that it reads
// back and that a reader of first_dirty alone (as tools do) still decodes it.
func TestCleanerCheckpointFormat(t *testing.T) {
	ck := cleanerCheckpoint{FirstDirty: 500, TombstoneDeadline: 1_700_000_060_000, GapsBelow: 520,
		Cleaned: []cleanedRange{{End: 300, AtMs: 1_699_999_000_000}, {End: 500, AtMs: 1_700_000_000_000}}}
	data, err := encodeCleanerCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"first_dirty":500,"tombstone_deadline_ms":1700000060000,"gaps_below":520,` +
		`"cleaned":[{"end":300,"at_ms":1699999000000},{"end":500,"at_ms":1700000000000}],"crc32c":1753344847}` + "\n"
	if string(data) != want {
		t.Fatalf("cleaner checkpoint:\n%s\nwant\n%s", data, want)
	}
	got, err := decodeCleanerCheckpoint(data)
	if err != nil || got.unchecked || !reflect.DeepEqual(got, ck) {
		t.Fatalf("reads back %+v, %v", got, err)
	}
	var tool struct {
		FirstDirty int64 `json:"first_dirty"`
	}
	if err := json.Unmarshal(data, &tool); err != nil || tool.FirstDirty != 500 {
		t.Fatalf("first_dirty alone: %d, %v", tool.FirstDirty, err)
	}
	empty, err := encodeCleanerCheckpoint(cleanerCheckpoint{})
	if err != nil || string(empty) != `{"version":1,"first_dirty":0,"crc32c":4019400972}`+"\n" {
		t.Fatalf("empty checkpoint: %s, %v", empty, err)
	}
	// An earlier version's file: the same object without version and checksum.
	old := `{"first_dirty":500,"tombstone_deadline_ms":1700000060000,"gaps_below":520,"cleaned":[{"end":300,"at_ms":1699999000000},{"end":500,"at_ms":1700000000000}]}`
	got, err = decodeCleanerCheckpoint([]byte(old))
	ck.unchecked = true
	if err != nil || !reflect.DeepEqual(got, ck) {
		t.Fatalf("earlier version's checkpoint reads %+v, %v", got, err)
	}
}

// TestCleanerCheckpointEveryBitFlipIsCaught: no single flipped bit in cleaner-checkpoint.json
// reads as a checkpoint, checked or not.
func TestCleanerCheckpointEveryBitFlipIsCaught(t *testing.T) {
	for _, ck := range []cleanerCheckpoint{
		{},
		{FirstDirty: 2005, GapsBelow: 2005, TombstoneDeadline: 1_700_000_060_000, Cleaned: []cleanedRange{{End: 1000, AtMs: 5}, {End: 2005, AtMs: 1_700_000_000_000}}},
	} {
		data, err := encodeCleanerCheckpoint(ck)
		if err != nil {
			t.Fatal(err)
		}
		for i := range data {
			for bit := range 8 {
				damaged := bytes.Clone(data)
				damaged[i] ^= 1 << bit
				if got, err := decodeCleanerCheckpoint(damaged); err == nil {
					t.Fatalf("%s with bit %d of byte %d flipped reads %+v", data, bit, i, got)
				}
			}
		}
	}
}

// TestCleanerCheckpointValidation: what no pass writes is refused, checked or not.
func TestCleanerCheckpointValidation(t *testing.T) {
	// Semantic problems, refused with a valid checksum (sealed) as without one.
	semantic := []struct{ content, problem string }{
		{`{"first_dirty":5,"cleaned":[{"end":5,"at_ms":1},{"end":3,"at_ms":2}]}`, "unsorted or overlapping"},
		{`{"first_dirty":5,"cleaned":[{"end":3,"at_ms":1},{"end":3,"at_ms":2}]}`, "unsorted or overlapping"},
		{`{"first_dirty":-1}`, "negative first_dirty"},
		{`{"first_dirty":5,"gaps_below":-1}`, "negative gaps_below"},
		{`{"first_dirty":5,"tombstone_deadline_ms":-1}`, "negative tombstone_deadline_ms"},
		{`{"first_dirty":5,"cleaned":[{"end":-1,"at_ms":1}]}`, "negative end"},
		{`{"first_dirty":5,"cleaned":[{"end":5,"at_ms":-1}]}`, "negative end"},
		{`{"first_dirty":4,"cleaned":[{"end":5,"at_ms":1}]}`, "cleaned up to offset 5, but first_dirty is 4"},
		{`{"first_dirty":5,"cleaned":[` + strings.Repeat(`{"end":1,"at_ms":1},`, 33) + `{"end":2,"at_ms":1}]}`, "34 cleaned ranges"},
		{`{"first_dirty":5,"gaps_belov":4}`, "unknown field"},
		{`{"first_dirty":5,"cleaned":{"end":5}}`, "decode JSON"},
	}
	// Problems of the encoding.
	syntax := []struct{ content, problem string }{
		{`{"version":1,"first_dirty":5}`, "version 1 without its checksum field"},
		{`{"first_dirty":5}{}`, "data after the JSON object"},
		{`{"first_dirty":5`, "decode JSON"},
		{`null`, "not a JSON object"},
		{``, "not a JSON object"},
		{`{"version":1,"first_dirty":5,"crc32c":1}` + "\n", "checksum mismatch"},
		{`{"version":1,"first_dirty":5,"crc32c":01}` + "\n", "malformed checksum field"},
		{`{"version":1,"first_dirty":5,"crc32c":1}`, "malformed checksum field"},
		{`{"version":1,"first_dirty":5,"crc32c":99999999999}` + "\n", "malformed checksum field"},
	}
	check := func(content []byte, problem string) {
		t.Helper()
		if ck, err := decodeCleanerCheckpoint(content); err == nil || !strings.Contains(err.Error(), problem) {
			t.Errorf("%s: %+v, %v; want an error saying %q", content, ck, err, problem)
		}
	}
	for _, c := range semantic {
		check([]byte(c.content), c.problem)
		check(sealCleanerCheckpoint(c.content), c.problem)
	}
	for _, c := range syntax {
		check([]byte(c.content), c.problem)
	}
	for _, v := range []string{`{"version":2,"first_dirty":5}`, `{"version":0,"first_dirty":5}`} {
		if _, err := decodeCleanerCheckpoint(sealCleanerCheckpoint(v)); err == nil || !strings.Contains(err.Error(), "unsupported version") {
			t.Errorf("%s: %v, want unsupported version", sealCleanerCheckpoint(v), err)
		}
	}
}

// TestCleanerCheckpointClamp: after a recovery cut the log below a checked checkpoint, its
// progress is clamped to the log end (what is below still holds); an unchecked one past the
// end may be a damaged digit, and is reset.
func TestCleanerCheckpointClamp(t *testing.T) {
	checked := cleanerCheckpoint{FirstDirty: 900, GapsBelow: 950, TombstoneDeadline: 77,
		Cleaned: []cleanedRange{{End: 400, AtMs: 1}, {End: 900, AtMs: 2}}}
	ck := checked
	ck.Cleaned = append([]cleanedRange(nil), checked.Cleaned...)
	if !ck.clampTo(600) {
		t.Fatal("checkpoint past the end not clamped")
	}
	if want := (cleanerCheckpoint{FirstDirty: 600, GapsBelow: 600, TombstoneDeadline: 77,
		Cleaned: []cleanedRange{{End: 400, AtMs: 1}, {End: 600, AtMs: 2}}}); !reflect.DeepEqual(ck, want) {
		t.Fatalf("clamped to %+v, want %+v", ck, want)
	}
	if err := ck.validate(); err != nil {
		t.Fatalf("clamped checkpoint invalid: %v", err)
	}
	unchecked := checked
	unchecked.unchecked = true
	if !unchecked.clampTo(600) || !reflect.DeepEqual(unchecked, resetCleanerCheckpoint(600)) {
		t.Fatalf("unchecked checkpoint past the end became %+v, want reset", unchecked)
	}
	within := checked
	within.unchecked = true
	if within.clampTo(1000) {
		t.Fatalf("unchecked checkpoint within the log changed: %+v", within)
	}
}

// TestOldCleanerCheckpointIsUpgraded: an earlier version's checkpoint within the log loads as
// it is and is rewritten with a checksum.
func TestOldCleanerCheckpointIsUpgraded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	dir, pdir, want, end := compactedLog(t, clock)
	old := fmt.Sprintf(`{"first_dirty":%d,"tombstone_deadline_ms":1700000060000,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":1700000000000}]}`, end, end, end)
	s := reopenAfterCrash(t, dir, pdir, clock, func([]byte) []byte { return []byte(old) })
	defer s.Close()
	l := s.Topic("t").Partition(0)
	checkLatest(t, l, want)
	expect := cleanerCheckpoint{FirstDirty: end, TombstoneDeadline: 1_700_000_060_000, GapsBelow: end,
		Cleaned: []cleanedRange{{End: end, AtMs: 1_700_000_000_000}}}
	l.maintMu.Lock()
	ck, err := l.cleanerCheckpoint()
	l.maintMu.Unlock()
	expect.unchecked = true
	if err != nil || !reflect.DeepEqual(ck, expect) {
		t.Fatalf("checkpoint %+v, %v; want %+v", ck, err, expect)
	}
	expect.unchecked = false
	data, err := os.ReadFile(filepath.Join(pdir, cleanerCheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk, err := decodeCleanerCheckpoint(data); err != nil || !reflect.DeepEqual(onDisk, expect) {
		t.Fatalf("checkpoint on disk %s: %+v, %v; want %+v with a checksum", data, onDisk, err, expect)
	}
}
