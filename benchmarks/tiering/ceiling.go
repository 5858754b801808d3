package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/samsa-io/samsa/tiering/manifest"
)

// segmentFiles is one sealed segment of the benchmark partition as it lies in the agent's
// data directory: the files the agent uploads.
type segmentFiles struct {
	Base           int64 `json:"base"`
	LogBytes       int64 `json:"log_bytes"`
	IndexBytes     int64 `json:"index_bytes"`
	TimeIndexBytes int64 `json:"timeindex_bytes"`
	dir            string
}

func (s segmentFiles) path(ext string) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", s.Base, ext))
}

// partitionDir is where the agent keeps partition 0 of topic.
func partitionDir(dataDir, topic string) string {
	return filepath.Join(dataDir, "topics", topic, "0")
}

// listSegments returns the partition's segments in offset order, the active one last.
func listSegments(dir string) ([]segmentFiles, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segmentFiles
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(name) != 20 {
			continue
		}
		base, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		s := segmentFiles{Base: base, dir: dir}
		for _, f := range []struct {
			ext string
			n   *int64
		}{{".log", &s.LogBytes}, {".index", &s.IndexBytes}, {".timeindex", &s.TimeIndexBytes}} {
			fi, err := os.Stat(s.path(f.ext))
			if err != nil {
				return nil, err
			}
			*f.n = fi.Size()
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b segmentFiles) int { return int(a.Base - b.Base) })
	return out, nil
}

// loopResult is one run of a plain minio-go loop.
type loopResult struct {
	Seconds  float64 `json:"seconds"`
	Bytes    int64   `json:"bytes"`
	Requests int     `json:"requests"`
	MBPerSec float64 `json:"mb_per_s"`
	CPU      cpuUse  `json:"cpu"`
}

// putLoop uploads every segment's .log, .index and .timeindex, one object after the other,
// with PutObject and the options the agent's S3Store uses (16 MiB part size, a
// SectionReader of the file): the ceiling of the agent's sequential uploader. With man, it
// also PUTs after each segment the manifest listing the segments so far, like the agent
// (its bytes are not counted).
func putLoop(ctx context.Context, c *minio.Client, bucket, prefix, topic string, segs []segmentFiles, partSize uint64, man *manifest.Manifest) (loopResult, error) {
	var r loopResult
	start := time.Now()
	for i, s := range segs {
		if man != nil && i > 0 {
			m := man.Clone()
			m.Segments = m.Segments[:i]
			data := m.Encode()
			key := manifest.ManifestKey(prefix, topic, 0)
			if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: partSize}); err != nil {
				return r, fmt.Errorf("put %s: %w", key, err)
			}
			r.Requests++
		}
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			f, err := os.Open(s.path(ext))
			if err != nil {
				return r, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return r, err
			}
			key := manifest.SegmentKey(prefix, topic, 0, s.Base, 0, ext)
			_, err = c.PutObject(ctx, bucket, key, io.NewSectionReader(f, 0, fi.Size()), fi.Size(),
				minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: partSize})
			f.Close()
			if err != nil {
				return r, fmt.Errorf("put %s: %w", key, err)
			}
			r.Bytes += fi.Size()
			r.Requests++
		}
	}
	if man != nil {
		data := man.Encode()
		key := manifest.ManifestKey(prefix, topic, 0)
		if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: partSize}); err != nil {
			return r, fmt.Errorf("put %s: %w", key, err)
		}
		r.Requests++
	}
	r.Seconds = time.Since(start).Seconds()
	r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	return r, nil
}

// remoteObject is a .log object the agent uploaded, from its manifest.
type remoteObject struct {
	Key  string
	Size int64
}

// getLoop reads the objects one after the other: whole, with one GetObject each (chunk 0), or
// in chunk-byte ranged GETs (the agent's chunk size).
func getLoop(ctx context.Context, c *minio.Client, bucket string, objs []remoteObject, chunk int64) (loopResult, error) {
	var r loopResult
	buf := make([]byte, 256<<10)
	start := time.Now()
	for _, o := range objs {
		step := o.Size
		if chunk > 0 {
			step = chunk
		}
		for off := int64(0); off < o.Size; off += step {
			var opts minio.GetObjectOptions
			if chunk > 0 {
				if err := opts.SetRange(off, min(off+step, o.Size)-1); err != nil {
					return r, err
				}
			}
			obj, err := c.GetObject(ctx, bucket, o.Key, opts)
			if err != nil {
				return r, fmt.Errorf("get %s: %w", o.Key, err)
			}
			n, err := io.CopyBuffer(io.Discard, obj, buf)
			obj.Close()
			if err != nil {
				return r, fmt.Errorf("get %s at %d: %w", o.Key, off, err)
			}
			if want := min(step, o.Size-off); n != want {
				return r, fmt.Errorf("get %s at %d: %d bytes, want %d", o.Key, off, n, want)
			}
			r.Bytes += n
			r.Requests++
		}
	}
	r.Seconds = time.Since(start).Seconds()
	r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	return r, nil
}

// readManifest returns the partition's manifest under prefix.
func readManifest(ctx context.Context, c *minio.Client, bucket, prefix, topic string) (*manifest.Manifest, error) {
	key := manifest.ManifestKey(prefix, topic, 0)
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return manifest.Decode(data)
}

// checkManifest compares the manifest with the local segment files: the same segments, sizes
// and CRC-32C of every .log, so the bytes in the bucket are the bytes on disk.
func checkManifest(m *manifest.Manifest, segs []segmentFiles, crcs []uint32) error {
	if len(m.Segments) != len(segs) {
		return fmt.Errorf("manifest lists %d segments, the partition has %d sealed", len(m.Segments), len(segs))
	}
	for i, s := range m.Segments {
		l := segs[i]
		if s.BaseOffset != l.Base || s.Size != l.LogBytes || s.IndexSize != l.IndexBytes || s.TimeIndexSize != l.TimeIndexBytes || s.CRC32C != crcs[i] {
			return fmt.Errorf("manifest segment %+v differs from the local files %+v (crc32c %08x)", s, l, crcs[i])
		}
	}
	return nil
}

// fileCRCs returns the CRC-32C of every segment's .log file.
func fileCRCs(segs []segmentFiles) ([]uint32, error) {
	out := make([]uint32, len(segs))
	for i, s := range segs {
		f, err := os.Open(s.path(".log"))
		if err != nil {
			return nil, err
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out[i] = h.Sum32()
	}
	return out, nil
}
