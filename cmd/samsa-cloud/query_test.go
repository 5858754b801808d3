package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// TestCLI runs the samsa-cloud binary against segments a real agent uploaded to a real MinIO,
// with the agent stopped, and compares what it prints with what was produced.
func TestCLI(t *testing.T) {
	f := newFixture(t, 20000)
	if len(f.m.Segments) < 50 {
		t.Fatalf("%d segments archived; the test wants a large archive (50+)", len(f.m.Segments))
	}
	t.Run("ls", func(t *testing.T) { testLs(t, f) })
	t.Run("jsonl", func(t *testing.T) {
		r := f.query(t, f.prefix)
		checkJSONL(t, f, r.stdout, f.archived)
		if !strings.HasPrefix(r.stderr, "samsa-cloud: ") || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, fmt.Sprintf("%d records", len(f.archived))) {
			t.Errorf("stderr: %q", r.stderr)
		}
	})
	t.Run("csv", func(t *testing.T) {
		from, to := f.m.Segments[10].BaseOffset+3, f.m.Segments[12].LastOffset
		r := f.query(t, f.prefix, "--format", "csv", "--from-offset", fmt.Sprint(from), "--to-offset", fmt.Sprint(to))
		checkCSV(t, f, r.stdout, f.filter(func(r record) bool { return r.offset >= from && r.offset < to }))
	})
	t.Run("raw", func(t *testing.T) {
		r := f.query(t, f.prefix, "--format", "raw", "--to-offset", "500")
		var want bytes.Buffer
		for _, rec := range f.filter(func(r record) bool { return r.offset < 500 }) {
			want.Write(rec.value)
			want.WriteByte('\n')
		}
		if r.stdout != want.String() {
			t.Errorf("raw output differs: %d bytes, want %d", len(r.stdout), want.Len())
		}
	})
	t.Run("relative-times", func(t *testing.T) {
		// No record lies within half an hour of now-10h, so "10h" is unambiguous (the last
		// few hours are in the agent's active segment, not archived).
		r := f.query(t, f.prefix, "--since", "10h", "--quiet")
		checkJSONL(t, f, r.stdout, f.filter(func(r record) bool { return !time.UnixMilli(r.ts).Before(f.gapEnd) }))
		if r.stderr != "" {
			t.Errorf("--quiet printed %q", r.stderr)
		}
		since := time.UnixMilli(f.archived[len(f.archived)/3].ts)
		r = f.query(t, f.prefix, "--since", since.Format(time.RFC3339Nano), "--until", "10h")
		checkJSONL(t, f, r.stdout, f.filter(func(r record) bool {
			ts := time.UnixMilli(r.ts)
			return !ts.Before(since) && ts.Before(f.gapStart)
		}))
	})
	t.Run("keys", func(t *testing.T) {
		r := f.query(t, f.prefix, "--key", "k-3")
		checkJSONL(t, f, r.stdout, f.filter(func(r record) bool { return string(r.key) == "k-3" }))
		bin := []byte{0x00, 0xc3, 0x28, 1}
		r = f.query(t, f.prefix, "--key-base64", base64.StdEncoding.EncodeToString(bin), "--limit", "5")
		checkJSONL(t, f, r.stdout, f.filter(func(r record) bool { return bytes.Equal(r.key, bin) })[:5])
	})
	t.Run("narrow-window-fetches-at-most-10%", func(t *testing.T) { testNarrow(t, f) })
	t.Run("bad-input", func(t *testing.T) { testBadInput(t, f) })
	t.Run("corrupt", func(t *testing.T) { testCorrupt(t, f) })
}

func testLs(t *testing.T, f *fixture) {
	r := f.run(t, f.keys(), "ls", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix)
	if r.code != 0 {
		t.Fatalf("ls: %d %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != len(f.m.Segments)+2 || !strings.HasPrefix(lines[0], "TOPIC") {
		t.Fatalf("ls printed %d lines, want a header, %d segments and a total:\n%s", len(lines), len(f.m.Segments), r.stdout)
	}
	total := strings.Fields(lines[len(lines)-1])
	want := []string{f.topic, "0", "(" + fmt.Sprint(len(f.m.Segments)), "segments)", fmt.Sprintf("0-%d", f.m.EndOffset()-1)}
	if strings.Join(total[:5], " ") != strings.Join(want, " ") || !strings.Contains(lines[len(lines)-1], fmt.Sprint(len(f.archived))) {
		t.Errorf("total row %q, want it to start %q and count %d records", lines[len(lines)-1], want, len(f.archived))
	}
	seg := f.m.Segments[4]
	if !strings.Contains(r.stdout, fmt.Sprintf("%020d-0  ", seg.BaseOffset)) ||
		!strings.Contains(r.stdout, fmt.Sprintf("%d-%d", seg.BaseOffset, seg.LastOffset)) {
		t.Errorf("segment %d missing:\n%s", seg.BaseOffset, r.stdout)
	}
	r = f.run(t, f.keys(), "ls", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix, "--topic", f.topic, "--format", "json")
	var doc struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Segments []struct {
					Records int64 `json:"records"`
				} `json:"segments"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Topics) != 1 || len(doc.Topics[0].Partitions) != 1 ||
		len(doc.Topics[0].Partitions[0].Segments) != len(f.m.Segments) {
		t.Fatalf("ls --format json: %v\n%s", err, r.stdout)
	}
}

// jsonText renders bytes the way the JSON lines should: a string when UTF-8, else base64
// under name_base64.
func jsonBytes(fields map[string]json.RawMessage, name string) (b []byte, ok bool) {
	if raw, has := fields[name]; has {
		if string(raw) == "null" {
			return nil, true
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []byte(s), true
	}
	if raw, has := fields[name+"_base64"]; has {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(s)
		return b, err == nil && !utf8.Valid(b)
	}
	return nil, false
}

// wantHeaders is the JSON of a record's headers as the format documents them (the fixture's
// header keys are distinct): text values in "headers", others in "headers_base64".
func wantHeaders(r record) (text, bin string) {
	text, bin = "{", ""
	for _, h := range r.headers {
		if utf8.Valid(h.Value) {
			if len(text) > 1 {
				text += ","
			}
			text += fmt.Sprintf("%q:%q", h.Key, h.Value)
		} else {
			if bin == "" {
				bin = "{"
			} else {
				bin += ","
			}
			bin += fmt.Sprintf("%q:%q", h.Key, base64.StdEncoding.EncodeToString(h.Value))
		}
	}
	text += "}"
	if bin != "" {
		bin += "}"
	}
	return text, bin
}

func checkJSONL(t *testing.T, f *fixture, out string, want []record) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d records", len(lines), len(want))
	}
	for i, line := range lines {
		w := want[i]
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, line)
		}
		var topic, ts string
		var partition, offset int64
		json.Unmarshal(fields["topic"], &topic)
		json.Unmarshal(fields["partition"], &partition)
		json.Unmarshal(fields["offset"], &offset)
		json.Unmarshal(fields["timestamp"], &ts)
		parsed, err := time.Parse(time.RFC3339Nano, ts)
		if topic != f.topic || partition != 0 || offset != w.offset || err != nil || parsed.UnixMilli() != w.ts || !strings.HasSuffix(ts, "Z") {
			t.Fatalf("line %d: %s\nwant offset %d timestamp %d", i, line, w.offset, w.ts)
		}
		key, kok := jsonBytes(fields, "key")
		value, vok := jsonBytes(fields, "value")
		if !kok || !vok || (key == nil) != (w.key == nil) || !bytes.Equal(key, w.key) || (value == nil) != (w.value == nil) || !bytes.Equal(value, w.value) {
			t.Fatalf("line %d: %s\nwant key %q value %q", i, line, w.key, w.value)
		}
		text, bin := wantHeaders(w)
		if string(fields["headers"]) != text || string(fields["headers_base64"]) != bin {
			t.Fatalf("line %d: headers %s %s, want %s %s", i, fields["headers"], fields["headers_base64"], text, bin)
		}
	}
}

func checkCSV(t *testing.T, f *fixture, out string, want []record) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := "topic,partition,offset,timestamp,key,key_base64,value,value_base64,headers,headers_base64"
	if len(rows) == 0 || strings.Join(rows[0], ",") != header {
		t.Fatalf("header row %v", rows[:min(1, len(rows))])
	}
	rows = rows[1:]
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	cell := func(text, b64 string) []byte {
		if b64 != "" {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return []byte(text)
	}
	for i, row := range rows {
		w := want[i]
		ts, err := time.Parse(time.RFC3339Nano, row[3])
		if row[0] != f.topic || row[1] != "0" || row[2] != fmt.Sprint(w.offset) || err != nil || ts.UnixMilli() != w.ts ||
			!bytes.Equal(cell(row[4], row[5]), w.key) || !bytes.Equal(cell(row[6], row[7]), w.value) {
			t.Fatalf("row %d: %q, want offset %d key %q value %q", i, row, w.offset, w.key, w.value)
		}
		text, bin := wantHeaders(w)
		if len(w.headers) == 0 {
			text = ""
		}
		if row[8] != text || row[9] != bin {
			t.Fatalf("row %d: headers %q %q, want %q %q", i, row[8], row[9], text, bin)
		}
	}
}

// statsOf reads a --stats-json file.
func statsOf(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// testNarrow: narrow time windows fetch at most 10% of the bytes of a full scan, by the
// tool's own count (--stats-json and the summary line), and return exactly their records.
func testNarrow(t *testing.T, f *fixture) {
	dir := t.TempDir()
	full := f.query(t, f.prefix, "--stats-json", filepath.Join(dir, "full.json"), "--format", "raw")
	fullBytes := statsOf(t, filepath.Join(dir, "full.json"))["bytes_fetched"].(float64)
	if !strings.Contains(full.stderr, fmt.Sprintf("(%d bytes)", int64(fullBytes))) {
		t.Errorf("the summary line does not report the bytes of --stats-json (%d): %q", int64(fullBytes), full.stderr)
	}
	mid := f.archived[len(f.archived)/2]
	since, until := time.UnixMilli(mid.ts), time.UnixMilli(mid.ts).Add(30*time.Minute)
	last := f.archived[len(f.archived)-1]
	tail := time.UnixMilli(last.ts).Add(-40 * time.Minute)
	for name, tc := range map[string]struct {
		args []string
		keep func(r record) bool
	}{
		// Timestamps in this archive never go back, so a one-minute lateness is safe.
		"middle": {[]string{"--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano), "--max-lateness", "1m"},
			func(r record) bool { ts := time.UnixMilli(r.ts); return !ts.Before(since) && ts.Before(until) }},
		"tail (no assumption)": {[]string{"--since", tail.Format(time.RFC3339Nano)},
			func(r record) bool { return !time.UnixMilli(r.ts).Before(tail) }},
	} {
		file := filepath.Join(dir, "narrow.json")
		r := f.query(t, f.prefix, append(tc.args, "--stats-json", file)...)
		checkJSONL(t, f, r.stdout, f.filter(tc.keep))
		st := statsOf(t, file)
		narrow := st["bytes_fetched"].(float64)
		t.Logf("%s: %.0f of %.0f bytes (%.1f%%), %v of %v segments; %s", name, narrow, fullBytes, 100*narrow/fullBytes,
			st["segments"], st["archived_segments"], strings.TrimSpace(r.stderr))
		if narrow > fullBytes/10 {
			t.Errorf("%s: fetched %.0f bytes, more than 10%% of a full scan's %.0f", name, narrow, fullBytes)
		}
	}
}

func testBadInput(t *testing.T, f *fixture) {
	store := []string{"--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix}
	q := func(args ...string) []string { return append(append([]string{"query"}, store...), args...) }
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		text string
	}{
		{"no bucket flag", f.keys(), []string{"query", "--endpoint", f.srv.Endpoint, "--topic", f.topic}, 2, "--bucket is required"},
		{"no topic flag", f.keys(), q(), 2, "topic is required"},
		{"missing bucket", f.keys(), []string{"ls", "--endpoint", f.srv.Endpoint, "--bucket", "nope"}, 1, "no such bucket"},
		{"no credentials", nil, q("--topic", f.topic), 1, "no credentials"},
		{"wrong credentials", []string{"AWS_ACCESS_KEY_ID=someone", "AWS_SECRET_ACCESS_KEY=wrong-secret-key"}, q("--topic", f.topic), 1, "access denied"},
		{"unknown topic", f.keys(), q("--topic", "nope"), 1, `unknown topic "nope"`},
		{"inverted offsets", f.keys(), q("--topic", f.topic, "--from-offset", "10", "--to-offset", "5"), 1, "empty range"},
		{"past the end", f.keys(), q("--topic", f.topic, "--from-offset", "99999999"), 1, "nothing archived in offsets [99999999, end)"},
		{"after the last record", f.keys(), q("--topic", f.topic, "--since", "1m"), 1, "nothing archived in time"},
		{"inverted times", f.keys(), q("--topic", f.topic, "--since", "1h", "--until", "2h"), 1, "is not before until"},
		{"bad time", f.keys(), q("--topic", f.topic, "--since", "yesterday"), 2, "since: bad time"},
		{"bad offset", f.keys(), q("--topic", f.topic, "--to-offset", "-4"), 2, "to-offset \"-4\""},
		{"bad format", f.keys(), q("--topic", f.topic, "--format", "xml"), 2, "--format"},
		{"unknown flag", f.keys(), q("--topik", f.topic), 2, "topik"},
		{"unknown command", f.keys(), []string{"serve-me"}, 2, "unknown command"},
	} {
		r := f.run(t, tc.env, tc.args...)
		firstLine, _, _ := strings.Cut(r.stderr, "\n")
		if r.code != tc.code || !strings.Contains(firstLine, tc.text) || r.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, r.code, r.stderr, tc.code, tc.text)
		}
		if tc.name != "unknown command" && strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: stderr is not one line: %q", tc.name, r.stderr)
		}
	}
}

// testCorrupt: a .log object re-put with a flipped byte stops the query with the object key
// and offset (exit 1); with --skip-corrupt the query reports it and prints everything else.
func testCorrupt(t *testing.T, f *fixture) {
	mc := f.minio(t)
	ctx := context.Background()
	const prefix = "copy"
	for o := range mc.ListObjectsIter(ctx, f.bucket, minio.ListObjectsOptions{Prefix: f.prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: f.bucket, Object: prefix + strings.TrimPrefix(o.Key, f.prefix)},
			minio.CopySrcOptions{Bucket: f.bucket, Object: o.Key}); err != nil {
			t.Fatal(err)
		}
	}
	seg := f.m.Segments[20]
	key := seg.Key(prefix, f.topic, 0, ".log")
	obj, err := mc.GetObject(ctx, f.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if _, err := data.ReadFrom(obj); err != nil {
		t.Fatal(err)
	}
	obj.Close()
	b := data.Bytes()
	var pos, base, last int64
	var n int
	batch.Split(b, func(bt []byte) error { // the third batch
		if n++; n < 3 {
			pos += int64(len(bt))
			return nil
		}
		if n == 3 {
			h, _ := batch.ParseHeader(bt)
			base, last = h.BaseOffset, h.LastOffset()
		}
		return nil
	})
	b[pos+batch.HeaderSize+10] ^= 0x01
	if _, err := mc.PutObject(ctx, f.bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"query", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", prefix, "--topic", f.topic, "--format", "csv"}
	r := f.run(t, f.keys(), args...)
	wantMsg := fmt.Sprintf("%s at byte %d (batch at offset %d)", key, pos, base)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, wantMsg) {
		t.Fatalf("corrupt batch: exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, wantMsg)
	}
	t.Logf("without --skip-corrupt: %s", strings.TrimSpace(r.stderr))

	r = f.run(t, f.keys(), append(args, "--skip-corrupt")...)
	if r.code != 0 || !strings.Contains(r.stderr, "skipped corrupt data in") || !strings.Contains(r.stderr, wantMsg) ||
		!strings.Contains(r.stderr, "1 corrupt skipped") {
		t.Fatalf("--skip-corrupt: exit %d, stderr %q", r.code, r.stderr)
	}
	checkCSV(t, f, r.stdout, f.filter(func(r record) bool { return r.offset < base || r.offset > last }))
	t.Logf("with --skip-corrupt: %s", strings.TrimSpace(r.stderr))
}
