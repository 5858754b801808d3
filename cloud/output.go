package cloud

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Output formats of NewWriter.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
	FormatRaw   = "raw"
)

// Formats lists the output formats NewWriter knows.
var Formats = []string{FormatJSONL, FormatCSV, FormatRaw}

// RecordWriter is a Sink that encodes records onto a stream; Flush writes out what it buffers.
type RecordWriter interface {
	Sink
	Flush() error
}

// NewWriter returns a writer of records in format (FormatJSONL, FormatCSV or FormatRaw) to w.
// Writers buffer: call Flush at the end.
//
// FormatJSONL writes one JSON object per record and line:
//
//	{"topic":"t","partition":0,"offset":42,"timestamp":"2026-03-01T12:00:00.123Z",
//	 "key":"k","value":"v","headers":{"h":"x"}}
//
// The timestamp is RFC 3339 in UTC with as many fraction digits as needed (Go's
// RFC3339Nano). A key or value that is valid UTF-8 is a JSON string ("key", "value"); any
// other is base64 (standard, padded) under "key_base64" / "value_base64" instead, so exactly
// one of the two names appears; a null key or value is "key":null / "value":null. Headers
// follow the same rule: "headers" maps each header key to its value when the value is UTF-8
// (null for a null value), "headers_base64" (present only when needed) maps it to the base64
// of a value that is not; a header key that appears more than once in a record maps to an
// array of its values, in order. Header keys are Kafka strings: bytes that are not UTF-8 are
// replaced with U+FFFD.
//
// FormatCSV writes RFC 4180 CSV with a header row and the same fields as columns:
// topic, partition, offset, timestamp, key, key_base64, value, value_base64, headers,
// headers_base64; the header columns hold the JSON objects above (empty when there are none).
// CSV cannot tell a null from an empty field: both are empty.
//
// FormatRaw writes each record's value bytes exactly as stored, followed by a newline ("\n"),
// and nothing else: a null value is an empty line. Binary values pass through unchanged, so a
// value that itself holds newlines spans several lines; use jsonl or csv when that matters.
func NewWriter(w io.Writer, format string) (RecordWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case FormatJSONL:
		return &jsonlWriter{w: bw}, nil
	case FormatCSV:
		return &csvWriter{w: csv.NewWriter(bw), bw: bw}, nil
	case FormatRaw:
		return &rawWriter{w: bw}, nil
	}
	return nil, fmt.Errorf("%w: format %q (want %s)", ErrBadConfig, format, strings.Join(Formats, ", "))
}

// jsonlWriter writes JSON lines.
type jsonlWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (j *jsonlWriter) WriteRecord(r *Record) error {
	j.buf = appendJSONL(j.buf[:0], r)
	_, err := j.w.Write(j.buf)
	return err
}

// lineSink is a Sink that also takes whole JSON lines (appendJSONL's) when takesLines says
// so: a query's decoders then encode the records (see decode.go).
type lineSink interface {
	Sink
	takesLines() bool
	writeLines(b []byte) error
}

func (j *jsonlWriter) takesLines() bool { return true }

// writeLines writes JSON lines a query's decoders encoded with appendJSONL.
func (j *jsonlWriter) writeLines(b []byte) error {
	_, err := j.w.Write(b)
	return err
}

func (j *jsonlWriter) Flush() error { return j.w.Flush() }

// jsonlBatch is the JSON lines of a batch's records, encoded by a decode goroutine.
type jsonlBatch struct {
	out  []byte
	ends []int // where each record's line ends in out
	rec  Record
	hdrs []batch.RecordHeader // the headers of the record being encoded
	keys keyCache
}

func (b *jsonlBatch) reset() { b.out, b.ends = b.out[:0], b.ends[:0] }

// trim lets go of big buffers and of the last record's references.
func (b *jsonlBatch) trim() {
	if cap(b.out) > maxKeptPlain {
		b.out = nil
	}
	clear(b.hdrs[:cap(b.hdrs)]) // drop the header key strings and values
	b.rec = Record{}
	b.reset()
}

// add encodes a record.
func (b *jsonlBatch) add(env *decodeEnv, offset, ts int64, key, value []byte, headers []batch.RecordHeader) {
	r := &b.rec
	r.Topic, r.Partition, r.Offset, r.Timestamp = env.topic, env.partition, offset, ts
	r.Key, r.Value, r.Headers = key, value, headers
	b.out = appendJSONL(b.out, r)
	b.ends = append(b.ends, len(b.out))
}

// appendJSONL appends the JSON line of a record.
func appendJSONL(b []byte, r *Record) []byte {
	b = append(b, `{"topic":`...)
	b = appendJSONString(b, r.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"timestamp":"`...)
	b = r.Time().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendJSONBytesField(b, "key", r.Key)
	b = appendJSONBytesField(b, "value", r.Value)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, r.Headers, false)
	if hasBinaryHeader(r.Headers) {
		b = append(b, `,"headers_base64":`...)
		b = appendHeaders(b, r.Headers, true)
	}
	return append(b, "}\n"...)
}

// appendJSONBytesField appends ,"name":"text" for a UTF-8 value, ,"name_base64":"..." for
// another, and ,"name":null for nil.
func appendJSONBytesField(b []byte, name string, v []byte) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	switch {
	case v == nil:
		return append(b, `":null`...)
	case utf8.Valid(v):
		b = append(b, `":`...)
		return appendJSONValid(b, v)
	}
	b = append(b, `_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// hasBinaryHeader reports whether a header value is not UTF-8.
func hasBinaryHeader(hs []batch.RecordHeader) bool {
	for _, h := range hs {
		if h.Value != nil && !utf8.Valid(h.Value) {
			return true
		}
	}
	return false
}

// headerIsBinary reports whether a header goes to headers_base64.
func headerIsBinary(h batch.RecordHeader) bool { return h.Value != nil && !utf8.Valid(h.Value) }

// appendHeaders appends the JSON object of the record's UTF-8 (or null) header values, or
// with binary set, of the base64 of its other values. A repeated key gets an array.
func appendHeaders(b []byte, hs []batch.RecordHeader, binary bool) []byte {
	b = append(b, '{')
	first := true
	for i, h := range hs {
		if headerIsBinary(h) != binary || seenBefore(hs[:i], h.Key, binary) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, h.Key)
		b = append(b, ':')
		n := 0
		for _, o := range hs[i:] {
			if o.Key == h.Key && headerIsBinary(o) == binary {
				n++
			}
		}
		if n > 1 {
			b = append(b, '[')
		}
		k := 0
		for _, o := range hs[i:] {
			if o.Key != h.Key || headerIsBinary(o) != binary {
				continue
			}
			if k > 0 {
				b = append(b, ',')
			}
			k++
			b = appendHeaderValue(b, o.Value, binary)
		}
		if n > 1 {
			b = append(b, ']')
		}
	}
	return append(b, '}')
}

// seenBefore reports whether key occurred among hs in the same (binary or not) group.
func seenBefore(hs []batch.RecordHeader, key string, binary bool) bool {
	for _, h := range hs {
		if h.Key == key && headerIsBinary(h) == binary {
			return true
		}
	}
	return false
}

func appendHeaderValue(b, v []byte, binary bool) []byte {
	switch {
	case v == nil:
		return append(b, "null"...)
	case binary:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"')
	}
	return appendJSONBytes(b, v)
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8 become U+FFFD;
// control characters, quote and backslash are escaped, and so are U+2028 and U+2029 (which
// JavaScript treats as line ends).
func appendJSONString(b []byte, s string) []byte {
	return appendJSONBytes(b, unsafe.Slice(unsafe.StringData(s), len(s))) // only read
}

// appendJSONBytes is appendJSONString for bytes. (Not generic: a function generic over
// string and []byte indexes its argument several times slower.)
func appendJSONBytes(b, s []byte) []byte {
	if utf8.Valid(s) {
		return appendJSONValid(b, s)
	}
	return appendJSONInvalid(b, s)
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONEscape appends the escape of the ASCII byte c.
func appendJSONEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// jsonClass classifies the bytes of valid UTF-8 for appendJSONValid: 0 as they are, 1 a
// two-byte escape (jsonEscaped), 2 \u00XX, 3 the lead byte of U+2028 and U+2029.
var jsonClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 2
	}
	t['"'], t['\\'], t['\n'], t['\r'], t['\t'] = 1, 1, 1, 1, 1
	t[0xe2] = 3
	return t
}()

// jsonEscaped is the letter after the backslash of a two-byte escape.
var jsonEscaped = func() (t [256]byte) {
	t['"'], t['\\'], t['\n'], t['\r'], t['\t'] = '"', '\\', 'n', 'r', 't'
	return t
}()

// appendJSONValid is appendJSONString for valid UTF-8: only ASCII bytes and the three-byte
// encodings of U+2028 and U+2029 (E2 80 A8/A9) need escaping. It writes into b's spare room
// byte by byte, growing it only at escapes: JSON values are dense with quotes, and a copy
// (append) per run of plain bytes cost twice as much.
func appendJSONValid(b, s []byte) []byte {
	n := len(b)
	if cap(b)-n < len(s)+2 {
		b = append(b[:cap(b)], make([]byte, n+len(s)+2+len(s)/4-cap(b))...)
	}
	b = b[:cap(b)]
	b[n] = '"'
	n++
	for i := 0; i < len(s); i++ {
		c := s[i]
		k := jsonClass[c]
		if k == 0 {
			b[n] = c
			n++
			continue
		}
		if len(b)-n < len(s)-i+6 { // room for the escape and the rest of s unescaped
			b = append(b[:n], make([]byte, len(s)-i+6+len(s)/4)...)
			b = b[:cap(b)]
		}
		switch k {
		case 1:
			b[n], b[n+1] = '\\', jsonEscaped[c]
			n += 2
		case 2:
			b[n], b[n+1], b[n+2], b[n+3], b[n+4], b[n+5] = '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]
			n += 6
		default:
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				b[n], b[n+1], b[n+2], b[n+3], b[n+4], b[n+5] = '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf]
				n += 6
				i += 2
			} else {
				b[n] = c
				n++
			}
		}
	}
	if n == len(b) {
		return append(b, '"')
	}
	b[n] = '"'
	return b[:n+1]
}

// appendJSONInvalid is appendJSONString for input that is not valid UTF-8.
func appendJSONInvalid(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonSafe[c] {
				b = append(b, s[start:i]...)
				b = appendJSONEscape(b, c)
				start = i + 1
			}
			i++
			continue
		}
		var rb [utf8.UTFMax]byte
		n := copy(rb[:], s[i:min(i+utf8.UTFMax, len(s))])
		r, size := utf8.DecodeRune(rb[:n])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// csvWriter writes CSV with a header row.
type csvWriter struct {
	w       *csv.Writer
	bw      *bufio.Writer
	started bool
	row     [10]string
	buf     []byte
}

// csvColumns is the CSV header row.
var csvColumns = []string{"topic", "partition", "offset", "timestamp", "key", "key_base64", "value", "value_base64", "headers", "headers_base64"}

func (c *csvWriter) WriteRecord(r *Record) error {
	if !c.started {
		c.started = true
		if err := c.w.Write(csvColumns); err != nil {
			return err
		}
	}
	row := c.row[:]
	row[0] = r.Topic
	row[1] = strconv.FormatInt(int64(r.Partition), 10)
	row[2] = strconv.FormatInt(r.Offset, 10)
	row[3] = r.Time().Format(time.RFC3339Nano)
	row[4], row[5] = csvBytes(r.Key)
	row[6], row[7] = csvBytes(r.Value)
	row[8], row[9] = "", ""
	if len(r.Headers) > 0 {
		c.buf = appendHeaders(c.buf[:0], r.Headers, false)
		row[8] = string(c.buf)
		if hasBinaryHeader(r.Headers) {
			c.buf = appendHeaders(c.buf[:0], r.Headers, true)
			row[9] = string(c.buf)
		}
	}
	return c.w.Write(row)
}

// csvBytes returns the text and base64 cells of a key or value.
func csvBytes(v []byte) (text, b64 string) {
	if utf8.Valid(v) {
		return string(v), ""
	}
	return "", base64.StdEncoding.EncodeToString(v)
}

// Flush writes the header row if no record came, then everything buffered.
func (c *csvWriter) Flush() error {
	if !c.started {
		c.started = true
		if err := c.w.Write(csvColumns); err != nil {
			return err
		}
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// rawWriter writes values, each followed by a newline.
type rawWriter struct{ w *bufio.Writer }

func (rw *rawWriter) WriteRecord(r *Record) error {
	if _, err := rw.w.Write(r.Value); err != nil {
		return err
	}
	return rw.w.WriteByte('\n')
}

func (rw *rawWriter) Flush() error { return rw.w.Flush() }
