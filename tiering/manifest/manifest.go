// Package manifest is the layout of tiered segments in a bucket and the partition manifest
// that lists them: what the agent's uploader writes and what samsa-cloud reads. It imports
// nothing of the agent, so cloud-side tools can use it alone.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Object layout in the bucket (DESIGN.md step 6):
//
//	<prefix>/<topic>/<partition>/<baseOffset %020d>-<leaderEpoch>.log   (.index, .timeindex)
//	<prefix>/<topic>/<partition>/manifest.json
//
// The manifest is the truth: a segment exists in object storage when the manifest lists it.
// Objects it does not list are leftovers of an interrupted upload or delete.

// Version is the manifest format written by this code.
const Version = 1

// Name is the manifest's object name inside a partition's prefix.
const Name = "manifest.json"

// Manifest lists a partition's segments in object storage, oldest first.
type Manifest struct {
	Version   int    `json:"version"`
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id,omitempty"` // hex Kafka topic id of the topic that uploaded
	Partition int32  `json:"partition"`
	// LogStartOffset is the first offset readers may ask for; at or below the first
	// segment's base unless remote retention moved it inside a segment.
	LogStartOffset int64         `json:"log_start_offset"`
	Segments       []SegmentMeta `json:"segments"`
	UpdatedMs      int64         `json:"updated_ms"`
}

// SegmentMeta describes one uploaded segment.
type SegmentMeta struct {
	BaseOffset     int64  `json:"base_offset"`
	LastOffset     int64  `json:"last_offset"` // inclusive: the next segment starts at LastOffset+1 or later
	FirstTimestamp int64  `json:"first_timestamp"`
	MaxTimestamp   int64  `json:"max_timestamp"`
	Records        int64  `json:"records"`
	Size           int64  `json:"size"`             // bytes of the .log object
	IndexSize      int64  `json:"index_size"`       // bytes of the .index object
	TimeIndexSize  int64  `json:"time_index_size"`  // bytes of the .timeindex object
	CRC32C         uint32 `json:"crc32c"`           // of the .log object
	LeaderEpoch    int32  `json:"leader_epoch"`     // part of the object names
	UploadedMs     int64  `json:"uploaded_ms"`      // when the upload finished
	Codecs         string `json:"codecs,omitempty"` // compression codecs seen, e.g. "lz4"
}

// EndOffset is the offset after the segment.
func (s SegmentMeta) EndOffset() int64 { return s.LastOffset + 1 }

// PartitionPrefix is the object key prefix of a partition (no trailing slash).
func PartitionPrefix(prefix, topic string, partition int32) string {
	return joinKey(prefix, topic, strconv.Itoa(int(partition)))
}

// ManifestKey is the object key of a partition's manifest.
func ManifestKey(prefix, topic string, partition int32) string {
	return PartitionPrefix(prefix, topic, partition) + "/" + Name
}

// SegmentKey is the object key of one of a segment's files; ext is ".log", ".index" or
// ".timeindex".
func SegmentKey(prefix, topic string, partition int32, base int64, epoch int32, ext string) string {
	return fmt.Sprintf("%s/%020d-%d%s", PartitionPrefix(prefix, topic, partition), base, epoch, ext)
}

// Key returns the object key of this segment's file with extension ext.
func (s SegmentMeta) Key(prefix, topic string, partition int32, ext string) string {
	return SegmentKey(prefix, topic, partition, s.BaseOffset, s.LeaderEpoch, ext)
}

func joinKey(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			kept = append(kept, p)
		}
	}
	return path.Join(kept...)
}

// ParseSegmentKey parses the base offset and epoch from a segment object's name (the part
// after the partition prefix), and its extension. It accepts exactly the names SegmentKey
// makes.
func ParseSegmentKey(name string) (base int64, epoch int32, ext string, ok bool) {
	name = path.Base(name)
	dot := strings.IndexByte(name, '.')
	if dot < 0 {
		return 0, 0, "", false
	}
	stem, ext := name[:dot], name[dot:]
	b, e, found := strings.Cut(stem, "-")
	if !found || len(b) != 20 || strings.Trim(b, "0123456789") != "" {
		return 0, 0, "", false
	}
	base, err1 := strconv.ParseInt(b, 10, 64)
	ep, err2 := strconv.ParseInt(e, 10, 32)
	// Only the names SegmentKey writes: an object named otherwise ("+0…0-07.log") is not ours,
	// and removeOrphans must not take it for a leftover.
	if err1 != nil || err2 != nil || strconv.FormatInt(ep, 10) != e {
		return 0, 0, "", false
	}
	switch ext {
	case ".log", ".index", ".timeindex":
		return base, int32(ep), ext, true
	}
	return 0, 0, "", false
}

// ErrBadManifest marks a manifest that does not parse or contradicts itself.
var ErrBadManifest = errors.New("bad manifest")

// Decode parses and checks a manifest: segments sorted, not overlapping, sizes and
// offsets sane.
func Decode(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if m.Version < 1 || m.Version > Version {
		return nil, fmt.Errorf("%w: version %d (this build reads 1..%d)", ErrBadManifest, m.Version, Version)
	}
	if m.Partition < 0 || m.LogStartOffset < 0 {
		return nil, fmt.Errorf("%w: partition %d, log start offset %d", ErrBadManifest, m.Partition, m.LogStartOffset)
	}
	prevEnd := int64(-1)
	for i, s := range m.Segments {
		switch {
		case s.BaseOffset < 0 || s.LastOffset < s.BaseOffset || s.LastOffset == math.MaxInt64: // EndOffset must not wrap
			return nil, fmt.Errorf("%w: segment %d has offsets %d..%d", ErrBadManifest, i, s.BaseOffset, s.LastOffset)
		case s.BaseOffset < prevEnd:
			return nil, fmt.Errorf("%w: segment %d starts at %d, before the previous one ends (%d)", ErrBadManifest, i, s.BaseOffset, prevEnd)
		case s.Size < 0 || s.IndexSize < 0 || s.TimeIndexSize < 0 || s.Records < 0:
			return nil, fmt.Errorf("%w: segment %d has negative sizes", ErrBadManifest, i)
		}
		prevEnd = s.EndOffset()
	}
	return &m, nil
}

// Encode serializes the manifest.
func (m *Manifest) Encode() []byte {
	data, _ := json.MarshalIndent(m, "", " ")
	return append(data, '\n')
}

// EndOffset is the offset after the last segment, or the log start when there is none.
func (m *Manifest) EndOffset() int64 {
	if len(m.Segments) == 0 {
		return m.LogStartOffset
	}
	return m.Segments[len(m.Segments)-1].EndOffset()
}

// StartOffset is the first readable offset, or -1 when the manifest lists no segment.
func (m *Manifest) StartOffset() int64 {
	if len(m.Segments) == 0 {
		return -1
	}
	return max(m.LogStartOffset, m.Segments[0].BaseOffset)
}

// Size is the bytes of the listed .log objects.
func (m *Manifest) Size() int64 {
	var n int64
	for _, s := range m.Segments {
		n += s.Size
	}
	return n
}

// Find returns the index of the first segment that ends after offset, or -1.
func (m *Manifest) Find(offset int64) int {
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].LastOffset >= offset })
	if i == len(m.Segments) {
		return -1
	}
	return i
}

// Clone returns a deep copy (manifests are replaced, never edited in place).
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Segments = append([]SegmentMeta(nil), m.Segments...)
	return &c
}
