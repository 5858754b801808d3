package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/internal/testminio"
)

const (
	bucket = "archive"
	prefix = "site-a/gw-1"
	topic  = "readings"
)

var codecs = map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

// archiveInfo describes what the agent uploaded.
type archiveInfo struct {
	Produced     int64    `json:"produced_records"`
	ProducedMB   float64  `json:"produced_value_mb"` // key+value bytes produced, 10^6
	Records      int64    `json:"archived_records"`
	Segments     int      `json:"archived_segments"`
	LogBytes     int64    `json:"archived_log_bytes"` // the .log objects a full scan reads
	Batches      int64    `json:"batches"`            // counted by the check query
	GenerateSecs float64  `json:"generate_seconds"`
	Keys         []string `json:"-"` // the .log object keys, partition by partition
	Sizes        []int64  `json:"-"` // their sizes
}

// generate runs an agent that tiers the topic to MinIO, produces records until about o.size
// bytes of closed segments exist, waits for their upload and stops the agent.
func generate(ctx context.Context, o options, srv *testminio.Server, dir string, logf func(string, ...any)) (archiveInfo, error) {
	start := time.Now()
	var info archiveInfo
	if err := createBucket(ctx, srv); err != nil {
		return info, err
	}
	cfg := agent.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "agent")
	cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tiering = agent.TieringConfig{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: prefix,
		AccessKeyID: srv.AccessKey, SecretAccessKey: agent.Secret(srv.SecretKey), CacheBytes: 16 << 20}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return info, err
	}
	if err := a.Start(); err != nil {
		return info, err
	}
	defer a.Shutdown(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codecs[o.codec]), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return info, err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(o.partitions), 1, map[string]*string{
		"remote.storage.enable": aws.String("true"), "segment.bytes": aws.String(fmt.Sprint(o.segmentBytes)),
		"retention.ms": aws.String("-1"),
	}, topic)
	if err != nil || resp.Err != nil {
		return info, fmt.Errorf("create topic: %v %v", err, resp.Err)
	}
	// The active segments stay local: produce until the closed ones hold o.size.
	target := o.size + int64(o.partitions)*o.segmentBytes
	perPart, err := produce(ctx, cl, o, cfg.DataDir, target, &info, logf)
	if err != nil {
		return info, err
	}
	logf("produced %d records (%.0f MB of keys and values) in %s; waiting for the uploads", info.Produced, info.ProducedMB, since(start))
	if err := waitUploaded(ctx, a.HTTPAddr(), perPart); err != nil {
		return info, err
	}
	a.Shutdown(context.Background())
	info.GenerateSecs = time.Since(start).Seconds()
	return info, nil
}

func createBucket(ctx context.Context, srv *testminio.Server) error {
	c, err := s3Client(ctx, srv)
	if err != nil {
		return err
	}
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	return err
}

// produce sends records round-robin over the partitions until the topic's segment files hold
// target bytes, and returns the records per partition.
func produce(ctx context.Context, cl *kgo.Client, o options, dataDir string, target int64, info *archiveInfo,
	logf func(string, ...any)) ([]int64, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	perPart := make([]int64, o.partitions)
	var failed atomic.Pointer[error]
	var bytes int64
	// Readings as JSON: a fixed shape with random numbers and a random id, padded with random
	// letters to about o.valueBytes. lz4 shrinks them about 2x (the report prints the ratio).
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	pad := make([]byte, max(0, o.valueBytes-150))
	every := int64(max(1000, min(50000, target/int64(o.valueBytes)/10))) // records between size checks
	for n := int64(0); ; n++ {
		if n%every == 0 {
			if err := cl.Flush(ctx); err != nil {
				return nil, err
			}
			if e := failed.Load(); e != nil {
				return nil, *e
			}
			size, err := segmentBytes(dataDir)
			if err != nil {
				return nil, err
			}
			if size >= target {
				break
			}
			if n > 0 && n%(20*every) == 0 {
				logf("produced %d records, %s of segments", n, fmtMiB(size))
			}
		}
		p := int32(n % int64(o.partitions))
		for i := range pad {
			pad[i] = letters[rng.IntN(len(letters))]
		}
		dev := rng.IntN(1000)
		key := fmt.Appendf(nil, "gw-1/device-%04d", dev)
		value := fmt.Appendf(nil, `{"device":"device-%04d","seq":%d,"temp":%.2f,"hum":%.1f,"volt":%.3f,"rssi":%d,"status":"ok","id":"%016x","pad":"%s"}`,
			dev, n, 15+rng.Float64()*20, 20+rng.Float64()*60, 3+rng.Float64()*0.4, -40-rng.IntN(60), rng.Uint64(), pad)
		bytes += int64(len(key) + len(value))
		perPart[p]++
		cl.Produce(ctx, &kgo.Record{Partition: p, Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	for _, c := range perPart {
		info.Produced += c
	}
	info.ProducedMB = float64(bytes) / 1e6
	return perPart, nil
}

// segmentBytes sums the sizes of the agent's .log files.
func segmentBytes(dataDir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".log") && strings.Contains(path, topic) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// waitUploaded polls the agent's tier status until every partition has all its records and
// no closed segment waits for upload.
func waitUploaded(ctx context.Context, httpAddr string, perPart []int64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var st agent.TierStatusResponse
		resp, err := http.Get("http://" + httpAddr + "/v1/tier/status?topic=" + topic)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		done := err == nil && len(st.Partitions) == len(perPart)
		for _, p := range st.Partitions {
			done = done && p.LocalEnd == perPart[p.Partition] && p.BacklogSegs == 0 && p.RemoteSegments > 0 && p.LastError == ""
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("segments not uploaded after 10 minutes: %v %+v", err, st.Partitions)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
