package kafka

// DescribeLogDirs (API key 35), versions 0–4.
//
// Version notes: v1 is v0 (throttling moved after the response), v2 is flexible, v3 added a
// top-level ErrorCode, v4 the volume's TotalBytes and UsableBytes (KIP-827). v5 (IsCordoned,
// KIP-1066) is not served.
//
// An agent has one log directory, the store's data directory, answered as an absolute path.
// Null Topics describes every partition of every topic (internal ones included); otherwise the
// named partitions that exist, each once; unknown ones are left out, as Kafka does. Topics with
// no partition to show are left out. A partition's size is the bytes of its segment files. Its
// offset lag is Kafka's max(high watermark - log end offset, 0), always 0 for a leader, and no
// partition is a future replica (AlterReplicaLogDirs is not served).
//
// Total and usable bytes come from statfs(2) on the data directory: usable is what an
// unprivileged writer may still use (f_bavail), as Java's FileStore.getUsableSpace. When statfs
// fails the directory is answered with KAFKA_STORAGE_ERROR and no topics.

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// handleDescribeLogDirs describes the data directory and the partitions in it.
func (s *Server) handleDescribeLogDirs(_ context.Context, req *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	resp.Version = req.Version
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir = s.store.Dir()
	if abs, err := filepath.Abs(d.Dir); err == nil {
		d.Dir = abs
	}
	total, usable, err := volumeBytes(d.Dir)
	if err != nil {
		s.log.Warn("describe log dirs: cannot stat the data directory", "dir", d.Dir, "err", err)
		d.ErrorCode = kerr.KafkaStorageError.Code
		resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d}
		return resp
	}
	d.TotalBytes, d.UsableBytes = total, usable
	if req.Topics == nil {
		d.Topics = s.describeAllLogDirTopics()
	} else {
		d.Topics = s.describeLogDirTopics(req.Topics)
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d}
	return resp
}

// describeAllLogDirTopics describes every partition of every topic, sorted by name.
func (s *Server) describeAllLogDirTopics() []kmsg.DescribeLogDirsResponseDirTopic {
	topics := s.store.Topics()
	out := make([]kmsg.DescribeLogDirsResponseDirTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Name()
		for p := range t.NumPartitions() {
			if rp, ok := describeLogDirPartition(t.Partition(p)); ok {
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		if len(rt.Partitions) > 0 {
			out = append(out, rt)
		}
	}
	return out
}

// describeLogDirTopics describes the requested partitions that exist, each once, sorted by
// topic and partition. The set lives for one request, so its size is bounded by the request
// size limit.
func (s *Server) describeLogDirTopics(req []kmsg.DescribeLogDirsRequestTopic) []kmsg.DescribeLogDirsResponseDirTopic {
	want := make(map[string][]int32, len(req))
	for _, rt := range req {
		want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]kmsg.DescribeLogDirsResponseDirTopic, 0, len(names))
	for _, name := range names {
		t := s.store.Topic(name)
		if t == nil {
			continue
		}
		parts := want[name]
		slices.Sort(parts)
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = name
		for _, p := range slices.Compact(parts) {
			if rp, ok := describeLogDirPartition(partitionLog(t, p)); ok {
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		if len(rt.Partitions) > 0 {
			out = append(out, rt)
		}
	}
	return out
}

// describeLogDirPartition describes one partition log; a nil log (gone meanwhile) is left out.
func describeLogDirPartition(l *commitlog.Log) (kmsg.DescribeLogDirsResponseDirTopicPartition, bool) {
	rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
	if l == nil {
		return rp, false
	}
	rp.Partition = l.Partition()
	rp.Size = l.Size()
	return rp, true
}

// volumeBytes returns the total and the unprivileged-usable bytes of the filesystem holding
// dir. Sizes past int64 are clamped to math.MaxInt64, as Kafka does.
func volumeBytes(dir string) (total, usable int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1, -1, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := int64(st.Bsize) // int32 on 32-bit ARM, uint32 on darwin
	return mulClamp(uint64(st.Blocks), bsize), mulClamp(uint64(st.Bavail), bsize), nil
}

// mulClamp is n*size, clamped to math.MaxInt64; a non-positive size gives -1 (unknown).
func mulClamp(n uint64, size int64) int64 {
	if size <= 0 {
		return -1
	}
	if n > uint64(math.MaxInt64/size) {
		return math.MaxInt64
	}
	return int64(n) * size
}
