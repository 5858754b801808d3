package cloud

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// outputRecords cover the encoding rules: text, binary, null and empty keys and values,
// repeated, binary and null header values, characters JSON must escape.
var outputRecords = []Record{
	{Topic: "t", Partition: 1, Offset: 42, Timestamp: 1767225600123, Key: []byte("k"), Value: []byte(`{"a":1}`)},
	{Topic: "t", Partition: 1, Offset: 43, Timestamp: 1767225600000, Key: []byte{0xff, 0x00}, Value: nil},
	{Topic: "t", Partition: 1, Offset: 44, Timestamp: 0, Key: nil, Value: []byte("line\nbreak \"q\" \\ \x01 \u2028 ü"),
		Headers: []batch.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "bin", Value: []byte{0x80}}, {Key: "h", Value: []byte("2")},
			{Key: "n", Value: nil}, {Key: "bin", Value: []byte{0x81}}, {Key: "x\xffy", Value: []byte{}}}},
	{Topic: "t", Partition: 1, Offset: 45, Timestamp: 1767225600001, Key: []byte{}, Value: []byte{}},
}

var wantJSONL = []string{
	`{"topic":"t","partition":1,"offset":42,"timestamp":"2026-01-01T00:00:00.123Z","key":"k","value":"{\"a\":1}","headers":{}}`,
	`{"topic":"t","partition":1,"offset":43,"timestamp":"2026-01-01T00:00:00Z","key_base64":"/wA=","value":null,"headers":{}}`,
	`{"topic":"t","partition":1,"offset":44,"timestamp":"1970-01-01T00:00:00Z","key":null,"value":"line\nbreak \"q\" \\ \u0001 \u2028 ü",` +
		`"headers":{"h":["1","2"],"n":null,"x\ufffdy":""},"headers_base64":{"bin":["gA==","gQ=="]}}`,
	`{"topic":"t","partition":1,"offset":45,"timestamp":"2026-01-01T00:00:00.001Z","key":"","value":"","headers":{}}`,
}

func writeAll(t *testing.T, format string) string {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, format)
	if err != nil {
		t.Fatal(err)
	}
	for i := range outputRecords {
		if err := w.WriteRecord(&outputRecords[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestJSONL(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(writeAll(t, FormatJSONL), "\n"), "\n")
	for i, line := range lines {
		if line != wantJSONL[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, line, wantJSONL[i])
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not JSON", i)
		}
	}
	if len(lines) != len(wantJSONL) {
		t.Fatalf("%d lines", len(lines))
	}
}

func TestCSV(t *testing.T) {
	rows, err := csv.NewReader(strings.NewReader(writeAll(t, FormatCSV))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		csvColumns,
		{"t", "1", "42", "2026-01-01T00:00:00.123Z", "k", "", `{"a":1}`, "", "", ""},
		{"t", "1", "43", "2026-01-01T00:00:00Z", "", "/wA=", "", "", "", ""},
		{"t", "1", "44", "1970-01-01T00:00:00Z", "", "", "line\nbreak \"q\" \\ \x01 \u2028 ü", "",
			`{"h":["1","2"],"n":null,"x\ufffdy":""}`, `{"bin":["gA==","gQ=="]}`},
		{"t", "1", "45", "2026-01-01T00:00:00.001Z", "", "", "", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %q", len(rows), rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	var empty bytes.Buffer
	w, _ := NewWriter(&empty, FormatCSV)
	if err := w.Flush(); err != nil || empty.String() != strings.Join(csvColumns, ",")+"\n" {
		t.Errorf("no records: %q %v", empty.String(), err)
	}
}

func TestRaw(t *testing.T) {
	want := "{\"a\":1}\n\nline\nbreak \"q\" \\ \x01 \u2028 ü\n\n"
	if got := writeAll(t, FormatRaw); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := NewWriter(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("unknown format accepted")
	}
}

// FuzzJSONString: appendJSONString always writes one valid JSON string, which decodes to the
// input when the input is UTF-8 (and to its U+FFFD-replaced form otherwise), for strings and
// byte slices alike.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" backslash \\ newline \n tab \t", "\x00\x1f\x7f", "\u2028\u2029",
		"ü€😀", "\xff\xfe", "a\xc3", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		if !bytes.Equal(b, appendJSONBytes(nil, []byte(s))) {
			t.Fatal("string and []byte encodings differ")
		}
		if utf8.ValidString(s) {
			want := appendJSONValidRef([]byte("x"), s)
			for _, room := range []int{0, 1, len(s), 2 * len(s), 7 * len(s)} {
				dst := append(make([]byte, 0, 1+room), 'x')
				if got := appendJSONValid(dst, []byte(s)); !bytes.Equal(got, want) {
					t.Fatalf("room %d: %q, want %q", room, got, want)
				}
			}
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = strings.ToValidUTF8(s, "\ufffd")
			// ToValidUTF8 folds a run of bad bytes into one U+FFFD; the encoder writes one per byte.
			if strings.ReplaceAll(got, "\ufffd", "") != strings.ReplaceAll(want, "\ufffd", "") {
				t.Fatalf("%q decodes to %q", s, got)
			}
			return
		}
		if got != want {
			t.Fatalf("%q decodes to %q", s, got)
		}
	})
}

// appendJSONValidRef is the previous appendJSONValid, which appended runs of plain bytes:
// the reference of FuzzJSONString.
func appendJSONValidRef(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				continue
			}
			b = append(b, s[start:i]...)
			b = appendJSONEscape(b, c)
			start = i + 1
			continue
		}
		if c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf])
			i += 2
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// BenchmarkJSONValue encodes a reading like benchmarks/cloudscan's as a JSON string.
func BenchmarkJSONValue(b *testing.B) {
	v := []byte(`{"device":"device-0123","seq":123456,"temp":21.53,"hum":40.2,"volt":3.210,"rssi":-71,"status":"ok","id":"0123456789abcdef","pad":"aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefghijklmn"}`)
	vs, buf := string(v), make([]byte, 0, 4096)
	b.Run("new", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			appendJSONValid(buf[:0], v)
		}
	})
	b.Run("previous", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			appendJSONValidRef(buf[:0], vs)
		}
	})
}
