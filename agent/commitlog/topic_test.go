package commitlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A crash during CreateTopic (partition dirs made, topic.json not yet written) must not keep
// the store from opening. A topic dir with data but no topic.json is an error naming the file.
func TestOpenWithTopicDirWithoutTopicFile(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	topic, _ := s.CreateTopic("t", 2, nil, false)
	topic.Partition(0).Append(makeBatch(t, 1, "x", 1))
	s.CreateTopic("u", 2, nil, false)
	s.Close()
	os.Remove(filepath.Join(dir, topicsDir, "u", topicMeta)) // u: as if CreateTopic crashed
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("open after an interrupted CreateTopic: %v", err)
	}
	if s.Topic("u") != nil || s.Topic("t") == nil {
		t.Fatalf("topics after open: %v", s.Topics())
	}
	if _, err := os.Stat(filepath.Join(dir, topicsDir, "u")); !os.IsNotExist(err) {
		t.Fatalf("incomplete topic dir left: %v", err)
	}
	if _, err := s.CreateTopic("u", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	meta := filepath.Join(dir, topicsDir, "t", topicMeta)
	os.Remove(meta) // t has data: refuse to guess
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), meta) {
		t.Fatalf("open with a topic dir holding data but no topic.json: %v, want an error naming %s", err, meta)
	}
}

// A damaged topic.json fails Open with an error naming it, never creating a million
// partitions or a topic under another name.
func TestOpenRejectsBadTopicFile(t *testing.T) {
	for name, content := range map[string]string{
		"negative partitions": `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":-1}`,
		"too many partitions": `{"name":"t","id":"000102030405060708090a0b0c0d0e0f","partitions":1000000000}`,
		"other name":          `{"name":"other","id":"000102030405060708090a0b0c0d0e0f","partitions":1}`,
		"bad name":            `{"name":"../t","id":"000102030405060708090a0b0c0d0e0f","partitions":1}`,
		"garbage":             "\x00\x01garbage",
		"empty":               "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			s.CreateTopic("t", 1, nil, false)
			s.Close()
			meta := filepath.Join(dir, topicsDir, "t", topicMeta)
			os.WriteFile(meta, []byte(content), 0o644)
			s, err := Open(Options{Dir: dir})
			if err == nil {
				s.Close()
				t.Fatalf("open succeeded with %s", content)
			}
			if !strings.Contains(err.Error(), meta) {
				t.Fatalf("error does not name %s: %v", meta, err)
			}
		})
	}
}

// CreatePartitions that fails half way leaves the topic as it was.
func TestCreatePartitionsFailureLeavesTopicUnchanged(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	os.WriteFile(filepath.Join(dir, topicsDir, "t", "2"), []byte("not a dir"), 0o644)
	if err := s.CreatePartitions("t", 3, false); err == nil {
		t.Fatal("CreatePartitions succeeded with a file in the way")
	}
	if n := topic.NumPartitions(); n != 1 {
		t.Fatalf("%d partitions after a failed CreatePartitions, want 1", n)
	}
}

// Admin operations racing DeleteTopic or Close must not resurrect a deleted topic or open
// partitions in a closed store.
func TestAdminAfterDeleteAndClose(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	topic, _ := s.CreateTopic("t", 1, nil, false)
	topic.mu.Lock() // CreatePartitions finds the topic, then waits for its lock
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.CreatePartitions("t", 2, false) }()
	time.Sleep(50 * time.Millisecond) // not an assertion: lets CreatePartitions look the topic up
	go func() { defer wg.Done(); s.DeleteTopic("t") }()
	time.Sleep(50 * time.Millisecond)
	topic.mu.Unlock()
	wg.Wait()
	if _, err := os.Stat(filepath.Join(dir, topicsDir, "t")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic dir is back: %v", err)
	}
	u, _ := s.CreateTopic("u", 1, nil, false)
	s.Close()
	if err := s.CreatePartitions("u", 2, false); err == nil {
		t.Fatal("CreatePartitions on a closed store succeeded")
	}
	if err := s.AlterTopicConfig("u", []ConfigOp{{Key: "retention.ms", Op: OpSet, Value: "5"}}, false); err == nil {
		t.Fatal("AlterTopicConfig on a closed store succeeded")
	}
	if u.NumPartitions() != 1 {
		t.Fatalf("closed topic has %d partitions", u.NumPartitions())
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	if s.Topic("t") != nil {
		t.Fatal("deleted topic came back after reopen")
	}
}

// CreatePartitions and Close race on the partition list (run with -race).
func TestCreatePartitionsRacesClose(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	s.CreateTopic("t", 1, nil, false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := int32(2); n < 50; n++ {
			if err := s.CreatePartitions("t", n, false); err != nil {
				return
			}
		}
	}()
	time.Sleep(5 * time.Millisecond)
	s.Close()
	<-done
}

// A flush.ms change reaches the syncer's timer.
func TestFlushMsChangeReachesSyncer(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncNever})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	l := topic.Partition(0)
	if err := s.AlterTopicConfig("t", []ConfigOp{{Key: "flush.ms", Op: OpSet, Value: "7"}}, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; l.tick.Load() != int64(7*time.Millisecond); i++ {
		if i > 1000 {
			t.Fatalf("syncer still ticks every %v", time.Duration(l.tick.Load()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = errors.Is
