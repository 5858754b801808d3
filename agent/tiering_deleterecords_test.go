package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// TestDeleteRecordsOnTieredTopic: DeleteRecords below the local start of a tiered topic hides
// the records in object storage at once (low watermark, ListOffsets earliest, fetches below
// it out of range), remote retention then drops the remote segments wholly below it and
// writes it into the manifest as the log start (which samsa-cloud honours), and all of it
// survives a restart. A second DeleteRecords above the local start hides the whole bucket.
func TestDeleteRecordsOnTieredTopic(t *testing.T) {
	dir, archive := t.TempDir(), t.TempDir()
	mutate := func(c *agent.Config) {
		c.Tiering = agent.TieringConfig{Endpoint: "file://" + archive, Bucket: "bkt", CacheBytes: 16 << 20}
		c.RetentionCheckInterval = agent.Duration(100 * time.Millisecond)
	}
	a := startAgent(t, dir, mutate)
	const topic = "cold"
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "65536", "local.retention.bytes": "131072"})
	want := produceTierRecords(t, a.KafkaAddr(), topic, 10000, 7)
	hw, localMax := int64(len(want)), int64(131072+2*(65536+16384))
	p := waitTier(t, a.HTTPAddr(), topic, "uploaded and trimmed locally", uploadedAndTrimmed(hw, localMax)).Partitions[0]
	if p.LocalStart < 100 {
		t.Fatalf("local start %d: too little in object storage for the test", p.LocalStart)
	}

	// 1. Below the local start: only object storage holds the deleted records.
	cut := p.LocalStart / 2
	deleteTieredRecords(t, a.KafkaAddr(), topic, cut, cut)
	checkTieredStart(t, a.KafkaAddr(), topic, cut)
	expectOutOfRange(t, a.KafkaAddr(), topic, cut-1)
	readAllFrom(t, a.KafkaAddr(), topic, want, int(cut))
	m := waitManifestStart(t, archive, topic, cut)
	checkBucketMatchesManifest(t, archive, topic, m)
	if s := m.Segments[0]; s.BaseOffset > cut || s.EndOffset() <= cut {
		t.Errorf("first remote segment %d..%d does not hold the new start %d", s.BaseOffset, s.EndOffset(), cut)
	}

	a.Shutdown(context.Background())
	a = startAgent(t, dir, mutate)
	checkTieredStart(t, a.KafkaAddr(), topic, cut)
	expectOutOfRange(t, a.KafkaAddr(), topic, cut-1)
	readAllFrom(t, a.KafkaAddr(), topic, want, int(cut))

	// 2. Above the local start: nothing in object storage is served any more.
	local := tierStatus(t, a.HTTPAddr(), topic).Partitions[0].LocalStart
	cut2 := local + 10
	deleteTieredRecords(t, a.KafkaAddr(), topic, cut2, cut2)
	checkTieredStart(t, a.KafkaAddr(), topic, cut2)
	expectOutOfRange(t, a.KafkaAddr(), topic, cut)
	readAllFrom(t, a.KafkaAddr(), topic, want, int(cut2))
	deadline := time.Now().Add(tierFailAfter)
	for {
		m = readManifest(t, archive, topic)
		if len(m.Segments) == 0 || m.Segments[0].EndOffset() > cut2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote segments wholly below %d still listed after %s: first %d..%d", cut2, tierFailAfter, m.Segments[0].BaseOffset, m.Segments[0].EndOffset())
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkBucketMatchesManifest(t, archive, topic, m)
}

// deleteTieredRecords sends DeleteRecords for partition 0 before offset and checks the low
// watermark answered.
func deleteTieredRecords(t *testing.T, addr, topic string, offset, wantLow int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	rs, err := adminOf(t, addr).DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: offset}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rs.On(topic, 0, nil); err != nil || r.Err != nil || r.LowWatermark != wantLow {
		t.Fatalf("delete records before %d: %+v, %v; want low watermark %d", offset, r, err, wantLow)
	}
}

// checkTieredStart checks ListOffsets earliest of partition 0.
func checkTieredStart(t *testing.T, addr, topic string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	starts, err := adminOf(t, addr).ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := starts.Lookup(topic, 0); !ok || o.Err != nil || o.Offset != want {
		t.Fatalf("earliest offset of %s: %+v (found %v), want %d", topic, o, ok, want)
	}
}

// expectOutOfRange checks that a consumer without reset policy fetching at offset gets
// OFFSET_OUT_OF_RANGE and no records.
func expectOutOfRange(t *testing.T, addr, topic string, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	var fetchErr error
	for fetchErr == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no error fetching deleted offset %d", offset)
		}
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if n := fs.NumRecords(); n > 0 {
			t.Fatalf("a fetch at deleted offset %d returned %d records", offset, n)
		}
	}
	if !errors.Is(fetchErr, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch at deleted offset %d: %v, want OFFSET_OUT_OF_RANGE", offset, fetchErr)
	}
}

// readManifest decodes partition 0's manifest from the file:// archive.
func readManifest(t *testing.T, archive, topic string) *manifest.Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(archive, "bkt", topic, "0", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitManifestStart waits until the manifest's log start is want (remote retention ran).
func waitManifestStart(t *testing.T, archive, topic string, want int64) *manifest.Manifest {
	t.Helper()
	deadline := time.Now().Add(tierFailAfter)
	for {
		m := readManifest(t, archive, topic)
		if m.LogStartOffset == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest log start %d after %s, want %d", m.LogStartOffset, tierFailAfter, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkBucketMatchesManifest waits until every .log object of the partition is listed in the
// manifest m (objects go after the manifest that drops them), so the deleted segments' objects
// are gone.
func checkBucketMatchesManifest(t *testing.T, archive, topic string, m *manifest.Manifest) {
	t.Helper()
	listed := map[string]bool{}
	for _, s := range m.Segments {
		listed[s.Key("", topic, 0, ".log")] = true
	}
	deadline := time.Now().Add(tierFailAfter)
	for {
		var unlisted []string
		for _, k := range filesUnder(t, filepath.Join(archive, "bkt")) {
			if strings.HasSuffix(k, ".log") && !listed[k] {
				unlisted = append(unlisted, k)
			}
		}
		if len(unlisted) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("objects in the bucket but not in the manifest after %s: %v", tierFailAfter, unlisted)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
