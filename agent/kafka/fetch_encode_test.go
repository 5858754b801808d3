package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// materialize returns the bytes the writer would send for out: the encoded
// bytes with every file range read in at its splice.
func materialize(t *testing.T, out *fetchOut) []byte {
	t.Helper()
	var b bytes.Buffer
	prev := 0
	for _, sp := range out.splices {
		b.Write(out.buf[prev:sp.at])
		chunk := make([]byte, sp.fr.Len)
		if _, err := sp.fr.File.ReadAt(chunk, sp.fr.Pos); err != nil {
			t.Fatalf("read range: %v", err)
		}
		b.Write(chunk)
		prev = sp.at
	}
	b.Write(out.buf[prev:])
	return b.Bytes()
}

// rangeFile writes content to a temp file and returns it open.
func rangeFile(t *testing.T, content []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// wantFetchPart is what one encoded partition must decode to.
type wantFetchPart struct {
	partition      int32
	code           int16
	hw, lso, start int64
	records        []byte
	ranges         []commitlog.FileRange
}

// TestEncodeFetchAllVersions encodes responses with several topics and
// partitions (records from file ranges, errors, empty partitions) at every
// supported version and decodes them with kmsg.
func TestEncodeFetchAllVersions(t *testing.T) {
	content := make([]byte, 4096)
	for i := range content {
		content[i] = byte(i * 7)
	}
	f := rangeFile(t, content)
	parts := [][]wantFetchPart{
		{
			{partition: 0, hw: 100, lso: 100, start: 3, ranges: []commitlog.FileRange{{File: f, Pos: 0, Len: 300}, {File: f, Pos: 300, Len: 200}}},
			{partition: 1, hw: 7, lso: 7, start: 0}, // nothing new
			{partition: 5, code: kerr.OffsetOutOfRange.Code, hw: -1, lso: -1, start: -1},
		},
		{
			{partition: 2, hw: 1 << 40, lso: 1 << 40, start: 1 << 39, ranges: []commitlog.FileRange{{File: f, Pos: 1000, Len: 3096}}},
		},
		{}, // a topic with no partitions
	}
	for i := range parts {
		for j := range parts[i] {
			for _, r := range parts[i][j].ranges {
				parts[i][j].records = append(parts[i][j].records, content[r.Pos:r.Pos+r.Len]...)
			}
		}
	}
	for version := int16(4); version <= 16; version++ {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			var topics []fetchTopicResult
			for i, ps := range parts {
				tr := fetchTopicResult{name: fmt.Sprintf("topic-%d", i), id: [16]byte{byte(i + 1), 0xab, 15: byte(i)}}
				for _, p := range ps {
					tr.parts = append(tr.parts, fetchPartResult{partition: p.partition, errCode: p.code,
						hw: p.hw, lso: p.lso, logStart: p.start, read: commitlog.ReadResult{Ranges: p.ranges}})
				}
				topics = append(topics, tr)
			}
			topErr := int16(0)
			if version >= 7 {
				topErr = kerr.FetchSessionIDNotFound.Code
			}
			out := encodeFetch(version, 0x01020304, int32(version)*7, topErr, topics)
			resp, body := decodeFetchWire(t, version, out)
			if resp.ErrorCode != topErr || resp.SessionID != 0 || resp.ThrottleMillis != int32(version)*7 {
				t.Fatalf("top level: error %d session %d throttle %d", resp.ErrorCode, resp.SessionID, resp.ThrottleMillis)
			}
			if len(resp.Topics) != len(parts) {
				t.Fatalf("%d topics, want %d", len(resp.Topics), len(parts))
			}
			for i, rt := range resp.Topics {
				if version >= 13 {
					if rt.TopicID != topics[i].id {
						t.Errorf("topic %d id %x, want %x", i, rt.TopicID, topics[i].id)
					}
				} else if rt.Topic != topics[i].name {
					t.Errorf("topic %d name %q, want %q", i, rt.Topic, topics[i].name)
				}
				if len(rt.Partitions) != len(parts[i]) {
					t.Fatalf("topic %d: %d partitions, want %d", i, len(rt.Partitions), len(parts[i]))
				}
				for j := range rt.Partitions {
					checkFetchPart(t, version, &rt.Partitions[j], parts[i][j])
				}
			}
			// Cross-check against kmsg's own encoding of the decoded response.
			if again := resp.AppendTo(nil); !bytes.Equal(again, body) {
				t.Errorf("kmsg re-encoding differs from ours (%d vs %d bytes)", len(again), len(body))
			}
		})
	}
}

// decodeFetchWire materializes out, checks its framing and decodes the body.
func decodeFetchWire(t *testing.T, version int16, out *fetchOut) (*kmsg.FetchResponse, []byte) {
	t.Helper()
	wire := materialize(t, out)
	if int64(len(wire)) != out.size() {
		t.Fatalf("size() = %d, wire has %d bytes", out.size(), len(wire))
	}
	if got := binary.BigEndian.Uint32(wire); int(got) != len(wire)-4 {
		t.Fatalf("size prefix %d, frame has %d bytes", got, len(wire)-4)
	}
	if got := int32(binary.BigEndian.Uint32(wire[4:])); got != 0x01020304 {
		t.Fatalf("correlation id %#x", got)
	}
	body := wire[8:]
	if version >= 12 {
		if body[0] != 0 {
			t.Fatalf("response header tags %d", body[0])
		}
		body = body[1:]
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("kmsg decode: %v", err)
	}
	return resp, body
}

// checkFetchPart compares a decoded partition with what was encoded.
func checkFetchPart(t *testing.T, version int16, rp *kmsg.FetchResponseTopicPartition, w wantFetchPart) {
	t.Helper()
	if rp.Partition != w.partition || rp.ErrorCode != w.code || rp.HighWatermark != w.hw || rp.LastStableOffset != w.lso {
		t.Errorf("partition %d: got %+v", w.partition, rp)
	}
	if version >= 5 && rp.LogStartOffset != w.start {
		t.Errorf("partition %d: log start %d, want %d", w.partition, rp.LogStartOffset, w.start)
	}
	if rp.AbortedTransactions != nil {
		t.Errorf("aborted transactions %v, want null", rp.AbortedTransactions)
	}
	if version >= 11 && rp.PreferredReadReplica != -1 {
		t.Errorf("preferred read replica %d", rp.PreferredReadReplica)
	}
	if !bytes.Equal(rp.RecordBatches, w.records) || rp.RecordBatches == nil {
		t.Errorf("partition %d: %d record bytes, want %d (nil=%v)", w.partition,
			len(rp.RecordBatches), len(w.records), rp.RecordBatches == nil)
	}
	if rp.UnknownTags.Len() != 0 {
		t.Errorf("unexpected tags")
	}
}
