package kafka

import (
	"encoding/binary"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Fetch responses are encoded by hand so the record bytes never have to be
// in memory: the encoder produces the response's bytes with "holes" where
// each partition's records go, and the writer sends the bytes up to a hole,
// the hole's file range with sendfile, and so on.
//
// Layout (v4-v16; fields marked with the version that added them):
//
//	header          correlation_id int32, tags (v12+, response header v1)
//	throttle_ms     int32
//	error_code      int16                     v7+
//	session_id      int32                     v7+
//	topics          array
//	  topic         string (v4-v12) | uuid (v13+)
//	  partitions    array
//	    partition_index, error_code, high_watermark
//	    last_stable_offset int64              v4+
//	    log_start_offset   int64              v5+
//	    aborted_transactions nullable array   v4+ (always null here)
//	    preferred_read_replica int32          v11+ (-1)
//	    records       nullable bytes          (file ranges)
//	    tags                                  v12+
//	  tags                                    v12+
//	tags                                      v12+
//
// From v12 (flexible) arrays and strings are compact (uvarint length+1) and
// every struct ends with a tag buffer, here always empty.

// fetchPartResult is one partition of a Fetch response.
type fetchPartResult struct {
	partition int32
	errCode   int16
	hw        int64
	lso       int64
	logStart  int64
	read      commitlog.ReadResult // whole batches as file ranges; may be empty
	mem       [][]byte             // per range of read: its bytes when in a reused memory buffer, else nil
}

// fetchTopicResult is one topic of a Fetch response.
type fetchTopicResult struct {
	name  string
	id    [16]byte
	parts []fetchPartResult
}

// splice is a file range to send at position at of the encoded bytes: with sendfile, or,
// when mem is set, by writing mem (the range's bytes in a reused memory buffer).
type splice struct {
	at  int
	fr  commitlog.FileRange
	mem []byte
}

// fetchOut is an encoded Fetch response: bytes with file ranges spliced in.
// It owns the read results and releases them.
type fetchOut struct {
	buf     []byte
	splices []splice // in increasing at order
	topics  []fetchTopicResult
}

// encodeFetch encodes a Fetch response of version (4-16) for corrID.
func encodeFetch(version int16, corrID, throttleMs int32, errCode int16, topics []fetchTopicResult) *fetchOut {
	flex := version >= 12
	nparts := 0
	for _, t := range topics {
		nparts += len(t.parts)
	}
	out := &fetchOut{topics: topics, buf: make([]byte, 0, 32+24*len(topics)+64*nparts)}
	b := append(out.buf, 0, 0, 0, 0) // size, patched below
	b = appendInt32(b, corrID)
	if flex {
		b = append(b, 0) // response header tags
	}
	b = appendInt32(b, throttleMs)
	if version >= 7 {
		b = appendInt16(b, errCode)
		b = appendInt32(b, 0) // session_id: sessionless
	}
	var records int64
	b = appendArrayLen(b, len(topics), flex)
	for i := range topics {
		t := &topics[i]
		if version >= 13 {
			b = append(b, t.id[:]...)
		} else {
			b = appendString(b, t.name, flex)
		}
		b = appendArrayLen(b, len(t.parts), flex)
		for j := range t.parts {
			b = out.appendPartition(b, version, &t.parts[j], &records)
		}
		if flex {
			b = append(b, 0) // topic tags
		}
	}
	if flex {
		b = append(b, 0) // response tags
	}
	binary.BigEndian.PutUint32(b, uint32(int64(len(b)-4)+records))
	out.buf = b
	return out
}

// appendPartition encodes one partition, recording its ranges as splices.
func (out *fetchOut) appendPartition(b []byte, version int16, p *fetchPartResult, records *int64) []byte {
	flex := version >= 12
	b = appendInt32(b, p.partition)
	b = appendInt16(b, p.errCode)
	b = appendInt64(b, p.hw)
	b = appendInt64(b, p.lso) // v4+
	if version >= 5 {
		b = appendInt64(b, p.logStart)
	}
	if flex { // aborted_transactions: null
		b = append(b, 0)
	} else {
		b = appendInt32(b, -1)
	}
	if version >= 11 {
		b = appendInt32(b, -1) // preferred_read_replica
	}
	var n int64
	for _, fr := range p.read.Ranges {
		n += max(fr.Len, 0)
	}
	if flex {
		b = binary.AppendUvarint(b, uint64(n)+1)
	} else {
		b = appendInt32(b, int32(n))
	}
	for i, fr := range p.read.Ranges {
		if fr.Len > 0 {
			sp := splice{at: len(b), fr: fr}
			if i < len(p.mem) && p.mem[i] != nil {
				sp.mem = p.mem[i]
			}
			out.splices = append(out.splices, sp)
		}
	}
	*records += n
	if flex {
		b = append(b, 0) // partition tags
	}
	return b
}

// size is the number of bytes the response takes on the wire.
func (out *fetchOut) size() int64 {
	n := int64(len(out.buf))
	for _, sp := range out.splices {
		n += sp.fr.Len
	}
	return n
}

// write sends the bytes and the file ranges in order.
func (out *fetchOut) write(w *respWriter) error {
	prev := 0
	for _, sp := range out.splices {
		if err := w.writeBytes(out.buf[prev:sp.at]); err != nil {
			return err
		}
		if sp.mem != nil {
			if err := w.writeMem(sp.mem); err != nil {
				return err
			}
		} else if err := w.writeRange(sp.fr); err != nil {
			return err
		}
		prev = sp.at
	}
	return w.writeBytes(out.buf[prev:])
}

// release lets the segment files of every partition go.
func (out *fetchOut) release() { releaseFetch(out.topics) }

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// appendArrayLen appends an array length: int32, or compact uvarint n+1.
func appendArrayLen(b []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(b, uint64(n)+1)
	}
	return appendInt32(b, int32(n))
}

// appendString appends a non-null string: int16 length, or compact uvarint n+1.
func appendString(b []byte, s string, flex bool) []byte {
	if flex {
		b = binary.AppendUvarint(b, uint64(len(s))+1)
	} else {
		b = appendInt16(b, int16(len(s)))
	}
	return append(b, s...)
}
