package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// topicName is the one compacted topic the benchmark writes.
const topicName = "compaction-bench"

// shape describes the generated log; the first fields are the options, the rest what was
// written.
type shape struct {
	Keys         int    `json:"keys"`
	ValueMin     int    `json:"value_min_bytes"`
	ValueMax     int    `json:"value_max_bytes"`
	BatchRecords int    `json:"batch_records"`
	Codec        string `json:"codec"`
	SegmentBytes int64  `json:"segment_bytes"`
	Seed         uint64 `json:"seed"`

	Records       int64   `json:"records"`
	Batches       int64   `json:"batches"`
	PayloadBytes  int64   `json:"payload_bytes"` // keys + values, uncompressed
	KeysWritten   int     `json:"keys_written"`  // distinct keys that got at least one record
	SealedKeys    int     `json:"sealed_keys"`   // distinct keys in the sealed segments (all but the last batch)
	UpdatesPerKey float64 `json:"updates_per_key"`
	Seconds       float64 `json:"seconds"`
}

// keyName is key k as an MQTT-topic-like string (the MQTT bridge's default record key).
func keyName(k int) []byte {
	b := make([]byte, 0, 32)
	b = append(b, "plant"...)
	b = strconv.AppendInt(b, int64(k%4), 10)
	b = append(b, "/line"...)
	if k%32 < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(k%32), 10)
	b = append(b, "/sensor"...)
	s := strconv.Itoa(k)
	for i := len(s); i < 6; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5a5a)) }

// valueGen writes JSON sensor readings.
type valueGen struct {
	rng  *rand.Rand
	size []int32 // target value length per key
	seq  []uint32
	buf  []byte
}

func newValueGen(sh *shape, rng *rand.Rand) *valueGen {
	g := &valueGen{rng: rng, size: make([]int32, sh.Keys), seq: make([]uint32, sh.Keys)}
	for k := range g.size {
		g.size[k] = int32(sh.ValueMin + rng.IntN(sh.ValueMax-sh.ValueMin+1))
	}
	return g
}

// value returns the next reading of key k (valid until the next call), about size[k] bytes:
//
//	{"id":"plant1/line07/sensor000123","seq":17,"ts":1763771234567,"fw":"2.4.1","ok":true,"v":[21.37,-3.10,...]}
func (g *valueGen) value(k int, key []byte, ts int64) []byte {
	target := int(g.size[k])
	g.seq[k]++
	b := append(g.buf[:0], `{"id":"`...)
	b = append(b, key...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, uint64(g.seq[k]), 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"fw":"2.4.1","ok":true,"v":[`...)
	first := true
	for len(b) < target-9 {
		if !first {
			b = append(b, ',')
		}
		first = false
		v := g.rng.IntN(20000) - 5000 // -50.00 .. 149.99
		if v < 0 {
			b = append(b, '-')
			v = -v
		}
		b = strconv.AppendInt(b, int64(v/100), 10)
		b = append(b, '.', byte('0'+v/10%10), byte('0'+v%10))
	}
	b = append(b, "]}"...)
	g.buf = b
	return b
}

// generate appends updates to partition 0 of the topic until about size bytes sit in sealed
// segments and the last batch alone in the active segment, which the cleaner never touches.
// It fills in the shape written and returns the offset where the active segment starts.
func generate(st *commitlog.Store, sh *shape, codec batch.Codec, size int64, logf func(string, ...any)) (activeBase int64, err error) {
	l := st.Topic(topicName).Partition(0)
	rng := newRand(sh.Seed)
	keys := make([][]byte, sh.Keys)
	for k := range keys {
		keys[k] = keyName(k)
	}
	firstBatch := make([]int64, sh.Keys) // batch number of a key's first record, -1: none
	for k := range firstBatch {
		firstBatch[k] = -1
	}
	vg := newValueGen(sh, rng)
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: codec})
	start, lastLog := time.Now(), time.Now()
	var written int64
	for {
		ts := time.Now().UnixMilli()
		for range sh.BatchRecords {
			k := rng.IntN(sh.Keys)
			v := vg.value(k, keys[k], ts)
			b.Add(ts, keys[k], v, nil)
			sh.PayloadBytes += int64(len(keys[k]) + len(v))
			if firstBatch[k] < 0 {
				firstBatch[k] = sh.Batches
			}
		}
		data, err := b.Build()
		if err != nil {
			return 0, err
		}
		segs := l.NumSegments()
		res, err := l.Append(data)
		if err != nil {
			return 0, fmt.Errorf("append batch %d: %w", sh.Batches, err)
		}
		sh.Batches++
		sh.Records += int64(sh.BatchRecords)
		written += int64(len(data))
		// Stop at the first roll once the sealed segments hold about size bytes: rolls come
		// every segment.bytes, so that is the roll nearest to size.
		if l.NumSegments() > segs && written-int64(len(data)) >= size-sh.SegmentBytes/2 {
			activeBase = res.BaseOffset // this batch is alone in the new active segment
			break
		}
		if time.Since(lastLog) >= 10*time.Second {
			logf("generate: %d MiB of %d", written>>20, size>>20)
			lastLog = time.Now()
		}
	}
	if err := l.Flush(); err != nil {
		return 0, err
	}
	sh.Seconds = time.Since(start).Seconds()
	for _, b := range firstBatch {
		if b >= 0 {
			sh.KeysWritten++
		}
		if b >= 0 && b < sh.Batches-1 {
			sh.SealedKeys++
		}
	}
	sh.UpdatesPerKey = float64(sh.Records) / float64(max(sh.KeysWritten, 1))
	return activeBase, nil
}
