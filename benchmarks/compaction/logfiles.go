package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// partitionDir is where partition 0 of the benchmark topic keeps its segments.
func partitionDir(dataDir string) string {
	return filepath.Join(dataDir, "topics", topicName, "0")
}

// segmentFile is one %020d.log file of a partition.
type segmentFile struct {
	path string
	base int64
	size int64
}

// listSegments returns the partition's segment files in offset order.
func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segmentFile
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(name) != 20 {
			continue
		}
		base, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, segmentFile{path: filepath.Join(dir, e.Name()), base: base, size: info.Size()})
	}
	slices.SortFunc(out, func(a, b segmentFile) int { return int(a.base - b.base) })
	return out, nil
}

// sealed returns the segments below activeBase (those the cleaner may compact).
func sealed(segs []segmentFile, activeBase int64) []segmentFile {
	var out []segmentFile
	for _, s := range segs {
		if s.base < activeBase {
			out = append(out, s)
		}
	}
	return out
}

// logStats describes the segment files of a partition.
type logStats struct {
	Bytes          int64 `json:"bytes"`    // all segment files
	Segments       int   `json:"segments"` // all segment files
	Records        int64 `json:"records"`  // all segment files
	SealedBytes    int64 `json:"sealed_bytes"`
	SealedSegments int   `json:"sealed_segments"`
	SealedRecords  int64 `json:"sealed_records"`
	// DistinctKeys and DuplicateRecords are counted over the sealed segments only, and only
	// when the scan decodes records: a duplicate is a record whose key appeared earlier, which
	// a complete compaction leaves none of.
	DistinctKeys     int   `json:"distinct_keys"`
	DuplicateRecords int64 `json:"duplicate_records"`
}

// scanLog reads every segment of dir, counting batches' records from their headers; with
// decode it also decodes the sealed segments' records and counts their keys.
func scanLog(dir string, activeBase int64, decode bool) (logStats, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return logStats{}, err
	}
	var st logStats
	keys := map[string]struct{}{}
	for _, s := range segs {
		isSealed := s.base < activeBase
		st.Bytes += s.size
		st.Segments++
		if isSealed {
			st.SealedBytes += s.size
			st.SealedSegments++
		}
		err := eachBatch(s.path, func(b []byte, h batch.Header) error {
			st.Records += int64(h.NumRecords)
			if !isSealed {
				return nil
			}
			st.SealedRecords += int64(h.NumRecords)
			if !decode {
				return nil
			}
			return batch.Records(b, func(r *batch.Record) error {
				if _, dup := keys[string(r.Key)]; dup {
					st.DuplicateRecords++
				} else {
					keys[string(r.Key)] = struct{}{}
				}
				return nil
			})
		})
		if err != nil {
			return st, err
		}
	}
	st.DistinctKeys = len(keys)
	return st, nil
}

// eachBatch calls fn with every batch of a segment file, CRC checked.
func eachBatch(path string, fn func(b []byte, h batch.Header) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var buf []byte
	for pos := int64(0); ; {
		head, err := r.Peek(12)
		if errors.Is(err, io.EOF) && len(head) == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s at %d: %w", path, pos, err)
		}
		_, size, err := batch.PeekSize(head)
		if err != nil {
			return fmt.Errorf("%s at %d: %w", path, pos, err)
		}
		buf = slices.Grow(buf[:0], size)[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("%s at %d: %w", path, pos, err)
		}
		h, err := batch.Validate(buf)
		if err != nil {
			return fmt.Errorf("%s at %d: %w", path, pos, err)
		}
		if err := fn(buf, h); err != nil {
			return fmt.Errorf("%s at %d: %w", path, pos, err)
		}
		pos += int64(size)
	}
}

// readResult is one sequential read of the sealed segment files.
type readResult struct {
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	MBPerSec float64 `json:"mb_per_sec"`
	Cold     bool    `json:"cold"` // the page cache was dropped just before
}

// rawRead reads the files start to end with 1 MiB reads and throws the bytes away.
func rawRead(segs []segmentFile, cold bool) (readResult, error) {
	buf := make([]byte, 1<<20)
	start := time.Now()
	var n int64
	for _, s := range segs {
		f, err := os.Open(s.path)
		if err != nil {
			return readResult{}, err
		}
		for {
			m, err := f.Read(buf)
			n += int64(m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return readResult{}, fmt.Errorf("read %s: %w", s.path, err)
			}
		}
		f.Close()
	}
	d := time.Since(start).Seconds()
	return readResult{Bytes: n, Seconds: d, MBPerSec: float64(n) / d / 1e6, Cold: cold}, nil
}

// dropCaches writes dirty pages back and drops the clean page cache (needs root). It reports
// whether the cache was dropped.
func dropCaches() (bool, error) {
	syscall.Sync()
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	_, err = f.WriteString("1\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil, err
}

// readFirstDirty reads first_dirty from the partition's cleaner checkpoint (0 without one).
func readFirstDirty(dir string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cleaner-checkpoint.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var ck struct {
		FirstDirty int64 `json:"first_dirty"`
	}
	if err := json.Unmarshal(data, &ck); err != nil {
		return 0, fmt.Errorf("cleaner checkpoint: %w", err)
	}
	return ck.FirstDirty, nil
}
