package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// frameOf encodes req as a full request frame, the way clients send it.
func frameOf(req kmsg.Request, version int16, corrID int32) []byte {
	req.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("samsa-test")).AppendRequest(nil, req, corrID)
}

// testBatch builds one RecordBatch v2 with n small records.
func testBatch(t testing.TB, n int) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	for i := range n {
		b.Add(1_700_000_000_000+int64(i), []byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("value %d", i)), nil)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seedFrames are valid frames of the main APIs, plus broken ones.
func seedFrames(t testing.TB) map[string][]byte {
	apiv := kmsg.NewPtrApiVersionsRequest()
	apiv.ClientSoftwareName, apiv.ClientSoftwareVersion = "samsa-test", "1.0"
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("events")
	meta.Topics = []kmsg.MetadataRequestTopic{mt}
	meta.AllowAutoTopicCreation = true

	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "events"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = testBatch(t, 3)
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	prod.Topics = []kmsg.ProduceRequestTopic{pt}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 500, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "events", [16]byte{1, 2, 3}
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}

	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "events"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{lp}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}

	seeds := map[string][]byte{
		"apiversions_v0":  frameOf(apiv, 0, 1),
		"apiversions_v3":  frameOf(apiv, 3, 2),
		"apiversions_v5":  frameOf(apiv, 5, 3), // too new: answered with UNSUPPORTED_VERSION
		"metadata_v1":     frameOf(meta, 1, 4),
		"metadata_v12":    frameOf(meta, 12, 5),
		"produce_v3":      frameOf(prod, 3, 6),
		"produce_v11":     frameOf(prod, 11, 7),
		"fetch_v4":        frameOf(fetch, 4, 8),
		"fetch_v12":       frameOf(fetch, 12, 9),
		"fetch_v16":       frameOf(fetch, 16, 10),
		"listoffsets_v8":  frameOf(lo, 8, 11),
		"huge_size":       {0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0},
		"negative_size":   {0xff, 0xff, 0xff, 0xf0, 0, 18, 0, 0},
		"unsupported_key": frameOf(kmsg.NewPtrSASLHandshakeRequest(), 1, 12),
	}
	initPID := kmsg.NewPtrInitProducerIDRequest()
	seeds["initproducerid_v0"] = frameOf(initPID, 0, 16)
	initPID.ProducerID, initPID.ProducerEpoch = 1000, 3
	seeds["initproducerid_v5"] = frameOf(initPID, 5, 17)
	addGroupSeeds(seeds)
	addLogSeeds(seeds)
	full := frameOf(prod, 9, 13)
	seeds["truncated_produce"] = full[:len(full)/2]
	// Two requests back to back, as a pipelining client sends them.
	seeds["pipelined"] = append(frameOf(apiv, 3, 14), frameOf(meta, 9, 15)...)
	return seeds
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzReadRequest when
// SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadRequest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedFrames(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzReadRequest feeds arbitrary bytes as a connection stream: decoding must
// never panic, and whatever decodes must re-encode.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for range 64 {
			// A small frame limit keeps each exec's memory small: kmsg
			// allocates declared array lengths (bounded by the bytes left)
			// before decoding the elements.
			req, err := readRequest(r, 256<<10)
			if err != nil {
				return
			}
			if req.msg != nil {
				_ = req.msg.AppendTo(nil)
				resp := req.msg.ResponseKind()
				resp.SetVersion(req.version)
				_ = appendResponse(nil, req.corrID, resp)
			}
		}
	})
}

// TestReadRequestSeeds checks each seed decodes, or fails, as expected.
func TestReadRequestSeeds(t *testing.T) {
	seeds := seedFrames(t)
	for name, b := range seeds {
		req, err := readRequest(bytes.NewReader(b), 1<<20)
		var fe *frameError
		switch name {
		case "huge_size":
			if !errors.As(err, &fe) || fe.cat != causeTooLarge {
				t.Errorf("%s: err %v, want frame too large", name, err)
			}
		case "negative_size":
			if !errors.As(err, &fe) || fe.cat != causeBadFrame {
				t.Errorf("%s: err %v, want bad frame", name, err)
			}
		case "unsupported_key":
			if !errors.As(err, &fe) || fe.cat != causeUnsupported || fe.key != 17 {
				t.Errorf("%s: err %v, want unsupported key 17", name, err)
			}
		case "truncated_produce":
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: err %v, want unexpected EOF", name, err)
			}
		case "apiversions_v5":
			if err != nil || req.msg != nil || req.version != 5 {
				t.Errorf("%s: req %+v err %v, want undecoded too-new ApiVersions", name, req, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if req.msg == nil || req.clientID != "samsa-test" || req.size != int(binary.BigEndian.Uint32(b))+4 &&
				name != "pipelined" {
				t.Errorf("%s: decoded %+v", name, req)
			}
		}
	}
}

func TestReadRequestUnsupportedVersion(t *testing.T) {
	prod := kmsg.NewPtrProduceRequest()
	_, err := readRequest(bytes.NewReader(frameOf(prod, 2, 1)), 1<<20)
	var fe *frameError
	if !errors.As(err, &fe) || fe.cat != causeUnsupported || fe.key != 0 || fe.version != 2 {
		t.Fatalf("produce v2: err %v, want unsupported version", err)
	}
}

func TestReadRequestCleanEOF(t *testing.T) {
	if _, err := readRequest(bytes.NewReader(nil), 1<<20); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
}

func TestSupportedAPIsWithinKmsg(t *testing.T) {
	for _, a := range supportedAPIs {
		req := kmsg.RequestForKey(a.key)
		if req == nil {
			t.Errorf("key %d unknown to kmsg", a.key)
			continue
		}
		if a.max > req.MaxVersion() || a.min > a.max || a.min < 0 {
			t.Errorf("key %d: range %d-%d, kmsg max %d", a.key, a.min, a.max, req.MaxVersion())
		}
	}
}

// TestReadRequestMemoryBounds checks the shape limits that keep kmsg from
// allocating far more than a frame's size.
func TestReadRequestMemoryBounds(t *testing.T) {
	var fe *frameError
	meta := kmsg.NewPtrMetadataRequest()
	for range 150_000 {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("t")
		meta.Topics = append(meta.Topics, rt)
	}
	big := frameOf(meta, 9, 1)
	if _, err := readRequest(bytes.NewReader(big), 100<<20); !errors.As(err, &fe) || fe.cat != causeDecode ||
		!strings.Contains(err.Error(), "more than 100000 array entries") {
		t.Errorf("metadata request for 150k topics: %v, want refused", err)
	}

	// A produce request whose topic count is not backed by entries.
	body := []byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30} // null txn id, acks 1, timeout
	body = binary.BigEndian.AppendUint32(body, 900_000)
	body = append(body, make([]byte, 1000)...)
	if _, err := readRequest(bytes.NewReader(rawFrame(0, 7, body)), 100<<20); !errors.As(err, &fe) || fe.cat != causeDecode {
		t.Errorf("produce with a false topic count: %v, want decode error", err)
	}

	// A produce request with too many (real, empty) partition entries.
	body = []byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 1, 0, 1, 'x'}
	body = binary.BigEndian.AppendUint32(body, 150_000)
	for i := range 150_000 {
		body = binary.BigEndian.AppendUint32(body, uint32(i))
		body = binary.BigEndian.AppendUint32(body, 0xffffffff) // null records
	}
	_, err := readRequest(bytes.NewReader(rawFrame(0, 7, body)), 100<<20)
	if !errors.As(err, &fe) || fe.cat != causeDecode || !strings.Contains(err.Error(), "more than 100000") {
		t.Errorf("produce with 150k partition entries: %v, want decode error", err)
	}
}

// TestReadRequestTagBomb is the fuzzer's find: a 49-byte Metadata v12
// request announcing ~2e8 tagged fields, which kmsg's tag loop spins through
// for seconds after its input runs out. The shape check refuses it.
func TestReadRequestTagBomb(t *testing.T) {
	data := []byte("\x00\x00\x001\x00\x03\x00\f\x00\x00\x00\x05\x00\nsamsa-test\x00\x02\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\aev\xd5\xd5\xd5\xd5\xd5\xd5\xd5ents\x00\x01\x00\x00")
	_, err := readRequest(bytes.NewReader(data), 1<<20)
	var fe *frameError
	if !errors.As(err, &fe) || fe.cat != causeDecode || !strings.Contains(err.Error(), "tagged fields") {
		t.Fatalf("tag bomb: %v, want refused", err)
	}
}

// fill sets every field of v to a non-zero value: slices get two entries,
// pointers a value, tag buffers an unknown tag.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fd, name := v.Field(i), v.Type().Field(i).Name
			switch {
			case name == "Version" || !fd.CanSet():
			case name == "UnknownTags":
				fd.Addr().Interface().(*kmsg.Tags).Set(99, []byte("tag"))
			default:
				fill(fd, depth+1)
			}
		}
	case reflect.Slice:
		if depth < 8 {
			s := reflect.MakeSlice(v.Type(), 2, 2)
			for i := range 2 {
				fill(s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.String:
		v.SetString("abc")
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), depth+1)
		}
	}
}

// TestShapeAcceptsEveryVersion encodes a fully populated request of every
// supported key and version with kmsg: the shape check must accept it, and
// for every truncation it accepts, kmsg must decode quickly (no schema
// mismatch leaves the tag loop open).
func TestShapeAcceptsEveryVersion(t *testing.T) {
	for _, a := range supportedAPIs {
		for v := a.min; v <= a.max; v++ {
			for _, populated := range []bool{false, true} {
				req := kmsg.RequestForKey(a.key)
				if populated {
					fill(reflect.ValueOf(req).Elem(), 0)
				}
				req.SetVersion(v)
				body := req.AppendTo(nil)
				if rest, err := walkShape(a.key, v, req.IsFlexible(), body); err != nil || rest != 0 {
					t.Errorf("%s v%d (populated %v, %d bytes): %v, %d bytes left", kmsg.NameForKey(a.key), v, populated, len(body), err, rest)
					continue
				}
				dec := kmsg.RequestForKey(a.key)
				dec.SetVersion(v)
				if err := dec.ReadFrom(body); err != nil {
					t.Errorf("%s v%d: kmsg cannot decode its own encoding: %v", kmsg.NameForKey(a.key), v, err)
				}
				for cut := range len(body) {
					if checkShape(a.key, v, req.IsFlexible(), body[:cut]) == nil {
						dec := kmsg.RequestForKey(a.key)
						dec.SetVersion(v)
						_ = dec.ReadFrom(body[:cut])
					}
				}
			}
		}
	}
}

// rawFrame frames a hand-made request body (header v1, null client id).
func rawFrame(key, version int16, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(10+len(body)))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, 0xff, 0xff)
	return append(b, body...)
}

// TestFramePoolClasses checks every size class round-trips through its pool.
func TestFramePoolClasses(t *testing.T) {
	for _, n := range []int{1, minPooledFrame, minPooledFrame + 1, 1 << 20, 6 << 20, maxPooledFrame} {
		c := frameClass(n)
		if c < 0 || c >= len(framePools) || minPooledFrame<<c < n {
			t.Fatalf("size %d: class %d", n, c)
		}
		b := getFrameBuf(n)
		if len(b) != n || cap(b) != minPooledFrame<<c {
			t.Fatalf("size %d: len %d cap %d", n, len(b), cap(b))
		}
		putFrameBuf(b)
	}
	if frameClass(maxPooledFrame+1) != -1 {
		t.Fatal("a frame over the largest class is pooled")
	}
}
