package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Log messages of the cleaner's recovery at open (agent/commitlog/swap.go).
const (
	msgRemovedRewrite  = "removed an unfinished cleaner rewrite"
	msgFinishedRewrite = "finished a cleaner rewrite interrupted by a restart"
)

// TestCompactionKill9DuringCleaning kills an fsync=always agent with SIGKILL while its
// cleaner, throttled by cleaner.io_bytes_per_second so that a pass takes a while, compacts a
// topic of keyed updates, many times over. Each cycle:
//
//   - starts the agent with the cleaner idle (cleaner.backoff 1h): recovery must have removed
//     every *.cleaned and *.swap file, and logged what it did with the ones the kill left;
//     reading the whole partition, for every key the last record is its latest acknowledged
//     value or a later one whose acknowledgement the kill prevented, no value appears twice,
//     and the part the cleaner had finished (below the checkpoint's first dirty offset) holds
//     each key at most once; then stops it cleanly;
//   - starts it with the cleaner busy (backoff 50ms), produces a round of 600-1200 updates
//     over 300 keys with acks=all, and kills it at a varying point (see killModes): mostly
//     when the pass in flight reaches a random progress (samsa_cleaner_pass_progress_ratio)
//     or has read everything and is committing; some while producing; every fifth cycle
//     after a pass has finished, so that compaction progresses and the backlog stays small.
//
// The test fails if no restart ever found a rewrite to remove or finish (kills that never
// land inside a rewrite would not test anything), or if no pass ever finished.
func TestCompactionKill9DuringCleaning(t *testing.T) {
	const cycles = 15 // about 10s; fewer would make a cycle without a kill inside a rewrite likely
	dataDir := t.TempDir()
	const topic = "kv"
	common := []string{"SAMSA_FSYNC=always", "SAMSA_DISK_MIN_FREE_BYTES=0", "SAMSA_DISK_MIN_FREE_PERCENT=0"}
	workEnv := append([]string{"SAMSA_CLEANER_BACKOFF=50ms", "SAMSA_CLEANER_IO_BYTES_PER_SECOND=" + strconv.Itoa(crashCleanerBytesPerSec)}, common...)
	checkEnv := append([]string{"SAMSA_CLEANER_BACKOFF=1h"}, common...)
	partDir := partitionDirOf(dataDir, topic)
	m := newKVModel(300)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var restartsRemoved, restartsFinished, killsInPass int
	var maxFirstDirty int64
	for cycle := 0; ; cycle++ {
		leftovers := cleanerLeftovers(t, dataDir)
		if len(leftovers) > 0 {
			t.Logf("cycle %d: the kill left %d cleaner files: %v", cycle, len(leftovers), baseNames(leftovers))
		}
		firstDirty := cleanerFirstDirty(t, partDir)
		maxFirstDirty = max(maxFirstDirty, firstDirty)
		p := startCrashAgent(t, dataDir, checkEnv)
		removed, finished := checkRecoveryLogs(t, p.Logs(), leftovers)
		if removed {
			restartsRemoved++
		}
		if finished {
			restartsFinished++
		}
		if rest := cleanerLeftovers(t, dataDir); len(rest) > 0 {
			t.Fatalf("cycle %d: cleaner files left after the restart: %v\n%s", cycle, rest, p.Logs())
		}
		if cycle > 0 {
			m.verify(t, p.kafkaAddr, topic, firstDirty, cycle)
		}
		if err := p.stop(t); err != nil {
			t.Fatalf("cycle %d: exit after SIGTERM: %v\n%s", cycle, err, p.Logs())
		}
		if cycle == cycles {
			break
		}

		p = startCrashAgent(t, dataDir, workEnv)
		if cycle == 0 {
			adm := kadm.NewClient(newClient(t, p.kafkaAddr))
			createTopicWith(t, adm, topic, map[string]string{
				"cleanup.policy": "compact", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01",
			})
		}
		mode := killModes[1+rng.IntN(len(killModes)-1)]
		switch {
		case cycle%5 == 4:
			mode = killAfterPass // let compaction finish now and then: progress, and a bounded backlog
		case cycle >= cycles-3 && restartsRemoved+restartsFinished == 0:
			mode = killInRewrite // no kill has left a rewrite yet: aim at one
		}
		if m.runCycle(t, p, topic, mode, rng, cycle) {
			killsInPass++
		}
	}
	t.Logf("%d cycles: %d kills inside a cleaner pass; restarts that removed an unfinished rewrite: %d, finished a committed one: %d",
		cycles, killsInPass, restartsRemoved, restartsFinished)
	if restartsRemoved+restartsFinished == 0 {
		t.Fatalf("no kill in %d cycles landed inside a cleaner rewrite (no restart had a rewrite to remove or finish): the test did not exercise crash recovery of the cleaner", cycles)
	}
	if maxFirstDirty == 0 {
		t.Fatalf("no cleaner pass ever finished: the compacted part of the log was never checked")
	}
}

// Where runCycle kills the agent: after a pass has finished (with every update of the round
// acknowledged); while producing; when the pass in flight has read everything (it is
// fsyncing, committing and completing its last rewrite); at a random point inside a pass,
// most often in its rewrite half; at a random point of the rewrite half.
const (
	killAfterPass  = "after a pass"
	killProducing  = "while producing"
	killEndOfPass  = "at the end of a pass"
	killInsidePass = "inside a pass"
	killInRewrite  = "inside a pass's rewrite half"
)

// killModes are the modes, killAfterPass first; the rest are drawn at random, killInsidePass
// twice as often.
var killModes = []string{killAfterPass, killProducing, killEndOfPass, killInsidePass, killInsidePass}

// crashCleanerBytesPerSec throttles the cleaner of the crash test so that a pass over one
// cycle's updates takes a good fraction of a second.
const crashCleanerBytesPerSec = 1 << 20

// startCrashAgent starts an agent subprocess that is killed at the end of the test if it is
// still running.
func startCrashAgent(t *testing.T, dataDir string, env []string) *agentProcess {
	t.Helper()
	p := startAgentProcess(t, dataDir, env...)
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// cleanerLeftovers lists the *.cleaned and *.swap files under dir.
func cleanerLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".cleaned") || strings.HasSuffix(path, ".swap") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// baseNames strips the directories of paths.
func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// cleanerFirstDirty reads the first dirty offset of the partition's cleaner checkpoint (0
// when there is none): offsets below it have been compacted.
func cleanerFirstDirty(t *testing.T, partDir string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(partDir, "cleaner-checkpoint.json"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var ck struct {
		FirstDirty int64 `json:"first_dirty"`
	}
	if err := json.Unmarshal(data, &ck); err != nil {
		t.Fatalf("cleaner checkpoint %q: %v", data, err)
	}
	return ck.FirstDirty
}

// checkRecoveryLogs checks that the start logged what it did with each cleaner file a kill
// left: a .cleaned file removed, a .log.swap finished (index .swap files go with their .log
// or silently). It reports whether the start removed or finished a rewrite.
func checkRecoveryLogs(t *testing.T, logs string, leftovers []string) (removed, finished bool) {
	t.Helper()
	files := map[string]map[string]bool{msgRemovedRewrite: {}, msgFinishedRewrite: {}}
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		msg, _ := m["msg"].(string)
		file, _ := m["file"].(string)
		for prefix := range files {
			if strings.HasPrefix(msg, prefix) {
				files[prefix][file] = true
			}
		}
	}
	for _, f := range leftovers {
		switch {
		case strings.HasSuffix(f, ".cleaned") && !files[msgRemovedRewrite][f]:
			t.Fatalf("the kill left %s, the restart did not log %q for it:\n%s", f, msgRemovedRewrite, logs)
		case strings.HasSuffix(f, ".log.swap") && !files[msgFinishedRewrite][strings.TrimSuffix(f, ".swap")]:
			t.Fatalf("the kill left %s, the restart did not log %q for it:\n%s", f, msgFinishedRewrite, logs)
		}
	}
	return len(files[msgRemovedRewrite]) > 0, len(files[msgFinishedRewrite]) > 0
}

// kvModel is what the crash test produced: every value of every key in order, and the
// latest one acknowledged.
type kvModel struct {
	keys int
	mu   sync.Mutex
	seq  int
	// produced holds, per key, the sequence numbers sent (acknowledged or not), increasing.
	produced map[string][]int
	acked    map[string]int // key -> highest acknowledged sequence number
}

func newKVModel(keys int) *kvModel {
	return &kvModel{keys: keys, produced: map[string][]int{}, acked: map[string]int{}}
}

// kvValue is the value of update seq of key: "<key>|<seq>|" padded to 100 bytes.
func kvValue(key string, seq int) string {
	v := fmt.Sprintf("%s|%d|", key, seq)
	return v + strings.Repeat(string(rune('a'+seq%26)), 100-len(v))
}

// next assigns the next update of a random key.
func (m *kvModel) next(rng *rand.Rand) (string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := fmt.Sprintf("k%03d", rng.IntN(m.keys))
	m.seq++
	m.produced[key] = append(m.produced[key], m.seq)
	return key, m.seq
}

func (m *kvModel) ack(key string, seq int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq > m.acked[key] {
		m.acked[key] = seq
	}
}

// runCycle produces a round of updates with acks=all and kills the agent at a point chosen by
// mode (see killModes). It reports whether the kill landed while a pass was in flight.
func (m *kvModel) runCycle(t *testing.T, p *agentProcess, topic, mode string, rng *rand.Rand, cycle int) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafkaAddr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordRetries(0), kgo.MaxBufferedRecords(500))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close() // fails what is still outstanding after the kill; those stay unacknowledged
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	round := 600 + rng.IntN(600)
	var acked sync.WaitGroup
	var nAcked, nFailed int
	var countMu sync.Mutex
	done := make(chan struct{})
	keyRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) // the producer's own
	go func() {
		defer close(done)
		for i := 0; i < round && ctx.Err() == nil; i++ {
			key, seq := m.next(keyRng)
			acked.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(kvValue(key, seq))}, func(_ *kgo.Record, err error) {
				defer acked.Done()
				countMu.Lock()
				defer countMu.Unlock()
				if err != nil {
					nFailed++
					return
				}
				nAcked++
				m.ack(key, seq)
			})
		}
	}()
	acks := func() int { countMu.Lock(); defer countMu.Unlock(); return nAcked + nFailed }

	killAfter := rng.IntN(round) // acknowledgements, when killing while producing
	target := 1.0                // pass progress, when killing at the end of or inside a pass
	switch mode {
	case killInsidePass:
		target = 0.1 + 0.89*rng.Float64()
	case killInRewrite:
		// The first part of a pass maps the dirty records' keys; with a log mostly dirty that
		// is about half its progress. The rewrite, with its *.cleaned files, is the rest.
		target = 0.6 + 0.35*rng.Float64()
	}
	inPass := false
	deadline := time.Now().Add(maintFailAfter)
	var producedAt time.Time
	var maxRatio float64
	for {
		metrics, err := scrapeMetrics(p.httpAddr)
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		ratio, passes := metrics["samsa_cleaner_pass_progress_ratio"], metrics["samsa_cleaner_passes_total"]
		maxRatio = max(maxRatio, ratio)
		produced := acks() == round
		if produced && producedAt.IsZero() {
			producedAt = time.Now()
		}
		kill := false
		switch mode {
		case killProducing:
			kill = acks() >= killAfter
		case killAfterPass:
			kill = produced && passes > 0 && ratio == 0
		default:
			kill = ratio >= target
		}
		if kill {
			inPass = ratio > 0
			if mode == killEndOfPass {
				// The pass is fsyncing its output, then commits and completes the swap: vary
				// where in that sequence the kill lands.
				time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
			}
			break
		}
		// Once every update is acknowledged a pass follows at once (cleaner.backoff is 50ms)
		// and takes about a second; if none reaches the target, kill anyway: this cycle then
		// tests a plain restart.
		if !producedAt.IsZero() && time.Since(producedAt) > 5*time.Second || time.Now().After(deadline) {
			t.Logf("cycle %d: no pass reached the kill point (%s, progress %.2f; highest seen %.2f); killing anyway", cycle, mode, target, maxRatio)
			break
		}
		time.Sleep(time.Millisecond) // polling the cleaner's progress; the kill point varies anyway
	}
	p.kill9(t)
	cancel()
	cl.Close()
	<-done
	acked.Wait()
	t.Logf("cycle %d: killed %s (progress target %.2f, in a pass: %v) after %d of %d updates acknowledged, %d failed",
		cycle, mode, target, inPass, nAcked, round, nFailed)
	return inPass
}

// verify reads the whole partition and checks the invariants of a compacted log after a
// crash: see TestCompactionKill9DuringCleaning. Offsets below firstDirty were compacted by a
// finished pass before the kill.
func (m *kvModel) verify(t *testing.T, addr, topic string, firstDirty int64, cycle int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, start, hw := readPartitionRaw(t, addr, topic)
	last := map[string]int{}        // key -> last sequence number seen
	compacted := map[string]int64{} // key -> its offset below firstDirty
	seen := map[string]int64{}      // value -> offset
	produced := map[string]map[int]bool{}
	for k, seqs := range m.produced {
		produced[k] = map[int]bool{}
		for _, s := range seqs {
			produced[k][s] = true
		}
	}
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("cycle %d: offset %d after %d", cycle, r.Offset, prev)
		}
		prev = r.Offset
		key, v := string(r.Key), string(r.Value)
		parts := strings.SplitN(v, "|", 3)
		seq, err := strconv.Atoi(parts[min(1, len(parts)-1)])
		if len(parts) != 3 || parts[0] != key || err != nil || v != kvValue(key, seq) || !produced[key][seq] {
			t.Fatalf("cycle %d: offset %d holds %q=%q, which was never produced", cycle, r.Offset, key, v)
		}
		if o, dup := seen[v]; dup {
			t.Fatalf("cycle %d: value %q at offsets %d and %d: duplicated", cycle, v, o, r.Offset)
		}
		seen[v] = r.Offset
		if seq <= last[key] {
			t.Fatalf("cycle %d: key %s: update %d at offset %d after update %d", cycle, key, seq, r.Offset, last[key])
		}
		last[key] = seq
		if r.Offset < firstDirty {
			if o, dup := compacted[key]; dup {
				t.Fatalf("cycle %d: key %s at offsets %d and %d, both below the first dirty offset %d: the compacted part holds a key twice",
					cycle, key, o, r.Offset, firstDirty)
			}
			compacted[key] = r.Offset
		}
	}
	for key, want := range m.acked {
		got, ok := last[key]
		if !ok {
			t.Fatalf("cycle %d: key %s is gone; update %d was acknowledged", cycle, key, want)
		}
		if got < want {
			t.Fatalf("cycle %d: key %s ends with update %d, but update %d was acknowledged: the latest value was lost", cycle, key, got, want)
		}
	}
	t.Logf("cycle %d: %d records in %d..%d (%d updates produced), %d keys, first dirty offset %d: latest values intact",
		cycle, len(recs), start, hw, m.seq, len(last), firstDirty)
}

// readPartitionRaw reads partition 0 of topic from its log start to its high watermark with
// raw Fetch requests, decoded by franz-go, stepping over offset gaps and emptied batches that
// compaction leaves. It returns the records, the log start and the high watermark.
func readPartitionRaw(t *testing.T, addr, topic string) ([]*kgo.Record, int64, int64) {
	t.Helper()
	ctx := maintCtx(t)
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	id := details[topic].ID
	start, err := startOffset(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := endOffset(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for offset := start; offset < hw; {
		rp := rawFetch(t, ctx, cl, topic, id, offset)
		if rp.ErrorCode != 0 {
			t.Fatalf("fetch %s-0 at %d (log %d..%d): %v", topic, offset, start, hw, kerr.ErrorForCode(rp.ErrorCode))
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: offset, Topic: topic}, &rp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatalf("decode %s-0 at %d: %v", topic, offset, fp.Err)
		}
		if next <= offset {
			t.Fatalf("fetch %s-0 at %d (high watermark %d) made no progress", topic, offset, hw)
		}
		out = append(out, fp.Records...)
		offset = next
	}
	return out, start, hw
}
