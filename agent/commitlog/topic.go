package commitlog

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Topic is one topic: name, id, partitions and config overrides.
type Topic struct {
	store *Store
	name  string
	id    [16]byte
	dir   string
	// createdMs is when the topic was created (Unix ms), 0 for a topic.json written before
	// it was recorded.
	createdMs int64

	mu        sync.RWMutex
	overrides map[string]string
	cfg       *TopicConfig
	parts     []*Log
	gone      error // ErrUnknownTopic once deleted, ErrClosed once the store closed
}

type topicFile struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	CreatedMs  int64             `json:"created_ms,omitempty"`
}

// Name is the topic name.
func (t *Topic) Name() string { return t.name }

// ID is the topic's UUID (Kafka topic id).
func (t *Topic) ID() [16]byte { return t.id }

// CreatedAt is when the topic was created: the Unix epoch for a topic created before
// creation times were recorded.
func (t *Topic) CreatedAt() time.Time { return time.UnixMilli(t.createdMs) }

// NumPartitions is the partition count.
func (t *Topic) NumPartitions() int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int32(len(t.parts))
}

// Partition returns partition p, or nil when out of range.
func (t *Topic) Partition(p int32) *Log {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

// Config is the effective configuration.
func (t *Topic) Config() TopicConfig {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return *t.cfg
}

// Overrides are the topic-level config keys set for this topic.
func (t *Topic) Overrides() map[string]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]string, len(t.overrides))
	for k, v := range t.overrides {
		out[k] = v
	}
	return out
}

// DescribeConfigs lists every topic config with its value and source, sorted by name.
func (t *Topic) DescribeConfigs() []ConfigEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return describeConfigs(t.store.opts.TopicDefaults, t.overrides)
}

func (t *Topic) save() error {
	tf := topicFile{Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.parts)), Configs: t.overrides, CreatedMs: t.createdMs}
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode topic %s: %w", t.name, err)
	}
	return writeFileAtomic(filepath.Join(t.dir, topicMeta), data, 0o644)
}

func (s *Store) loadTopic(dir string, clean bool) (*Topic, error) {
	path := filepath.Join(dir, topicMeta)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topic %s: %w", path, err)
	}
	var tf topicFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return nil, fmt.Errorf("read topic %s: %w", path, err)
	}
	if err := ValidateTopicName(tf.Name); err != nil {
		return nil, fmt.Errorf("read topic %s: %w", path, err)
	}
	if tf.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("read topic %s: name %q does not match its directory", path, tf.Name)
	}
	if limit := max(s.opts.MaxPartitions, defaultMaxPartitions); tf.Partitions < 1 || tf.Partitions > limit {
		return nil, fmt.Errorf("read topic %s: %w: %d (allowed: 1..%d)", path, ErrInvalidPartitions, tf.Partitions, limit)
	}
	idb, err := hex.DecodeString(tf.ID)
	if err != nil || len(idb) != 16 {
		return nil, fmt.Errorf("read topic %s: bad id %q", path, tf.ID)
	}
	if err := ValidateTopicConfigs(tf.Configs); err != nil {
		return nil, fmt.Errorf("read topic %s: %w", path, err)
	}
	t := &Topic{store: s, name: tf.Name, dir: dir, overrides: tf.Configs, createdMs: tf.CreatedMs}
	copy(t.id[:], idb)
	if t.overrides == nil {
		t.overrides = map[string]string{}
	}
	cfg := buildTopicConfig(s.opts.TopicDefaults, t.overrides)
	t.cfg = &cfg
	for p := int32(0); p < tf.Partitions; p++ {
		pdir := partitionDir(dir, p)
		if _, err := os.Stat(pdir); errors.Is(err, os.ErrNotExist) {
			s.log.Warn("partition directory missing; starting it empty", "dir", pdir)
		}
		l, err := openLog(s, t.name, p, pdir, t.cfg, clean)
		if err != nil {
			t.closeLogs(ErrClosed)
			return nil, fmt.Errorf("open %s-%d: %w", t.name, p, err)
		}
		t.parts = append(t.parts, l)
	}
	return t, nil
}

// removeIncompleteTopic deals with a topic directory without topic.json: what a crash in
// CreateTopic leaves (topic.json is written last). Without data it is removed; with data it
// is an error, for an operator to look at.
func (s *Store) removeIncompleteTopic(dir string) error {
	var data string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			if info, err := d.Info(); err == nil && info.Size() > 0 {
				data = path
				return fs.SkipAll
			}
		}
		return nil
	})
	meta := filepath.Join(dir, topicMeta)
	if data != "" {
		return fmt.Errorf("read topic %s: missing, but %s holds records; restore the file or remove the directory", meta, data)
	}
	s.log.Warn("removing a topic directory without topic.json (an interrupted topic creation)", "dir", dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove incomplete topic dir %s: %w", dir, err)
	}
	return nil
}

// CreateTopic creates a topic with Kafka config overrides. With validateOnly it checks
// everything and returns a topic that is not stored (no partitions open).
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if partitions < 1 || partitions > s.opts.MaxPartitions {
		return nil, fmt.Errorf("%w: %d partitions for %q (allowed: 1..%d)", ErrInvalidPartitions, partitions, name, s.opts.MaxPartitions)
	}
	if err := ValidateTopicConfigs(configs); err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.topics[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	overrides := make(map[string]string, len(configs))
	for k, v := range configs {
		overrides[k] = v
	}
	cfg := buildTopicConfig(s.opts.TopicDefaults, overrides)
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	t := &Topic{store: s, name: name, dir: filepath.Join(s.opts.Dir, topicsDir, name), overrides: overrides, cfg: &cfg,
		createdMs: s.opts.Now().UnixMilli()}
	rand.Read(t.id[:])
	if validateOnly {
		return t, nil
	}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create topic dir %s: %w", t.dir, err)
	}
	for p := int32(0); p < partitions; p++ {
		l, err := openLog(s, name, p, partitionDir(t.dir, p), t.cfg, true)
		if err != nil {
			t.closeLogs(ErrUnknownTopic)
			os.RemoveAll(t.dir)
			return nil, fmt.Errorf("create %s-%d: %w", name, p, err)
		}
		t.parts = append(t.parts, l)
	}
	if err := t.save(); err != nil {
		t.closeLogs(ErrUnknownTopic)
		os.RemoveAll(t.dir)
		return nil, err
	}
	if err := syncDir(filepath.Dir(t.dir)); err != nil {
		s.log.Warn("sync topics dir", "err", err)
	}
	s.topics[name], s.byID[t.id] = t, t
	s.log.Info("topic created", "topic", name, "partitions", partitions, "configs", overrides)
	return t, nil
}

// closeLogs closes the topic's partitions; admin operations on it fail with gone from now on.
func (t *Topic) closeLogs(gone error) error {
	t.mu.Lock()
	if t.gone == nil {
		t.gone = gone
	}
	parts := t.parts
	t.mu.Unlock()
	var first error
	for _, l := range parts {
		if err := l.close(); err != nil && first == nil {
			first = fmt.Errorf("close %s-%d: %w", t.name, l.partition, err)
		}
	}
	return first
}

// DeleteTopic removes a topic and its data.
func (s *Store) DeleteTopic(name string) error {
	s.mu.Lock()
	t, ok := s.topics[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("delete %q: %w", name, ErrUnknownTopic)
	}
	delete(s.topics, name)
	delete(s.byID, t.id)
	s.mu.Unlock()
	t.closeLogs(ErrUnknownTopic)
	tomb := filepath.Join(filepath.Dir(t.dir), ".deleted-"+name+"-"+hexID(t.id))
	if err := os.Rename(t.dir, tomb); err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(t.dir)); err != nil {
		s.log.Warn("sync topics dir", "err", err)
	}
	if err := os.RemoveAll(tomb); err != nil {
		s.log.Warn("remove deleted topic data; removed at next start", "dir", tomb, "err", err)
	}
	s.log.Info("topic deleted", "topic", name)
	return nil
}

// CreatePartitions grows a topic to count partitions.
func (s *Store) CreatePartitions(name string, count int32, validateOnly bool) error {
	t := s.Topic(name)
	if t == nil {
		return fmt.Errorf("create partitions for %q: %w", name, ErrUnknownTopic)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone != nil {
		return fmt.Errorf("create partitions for %q: %w", name, t.gone)
	}
	cur := int32(len(t.parts))
	if count <= cur || count > s.opts.MaxPartitions {
		return fmt.Errorf("%w: topic %q has %d partitions; new count %d must be more (max %d)", ErrInvalidPartitions, name, cur, count, s.opts.MaxPartitions)
	}
	if validateOnly {
		return nil
	}
	undo := func() {
		for p, l := range t.parts[cur:] {
			l.close()
			os.RemoveAll(partitionDir(t.dir, cur+int32(p)))
		}
		t.parts = slices.Clip(t.parts[:cur])
	}
	for p := cur; p < count; p++ {
		l, err := openLog(s, name, p, partitionDir(t.dir, p), t.cfg, true)
		if err != nil {
			undo()
			return fmt.Errorf("create %s-%d: %w", name, p, err)
		}
		t.parts = append(t.parts, l)
	}
	if err := t.save(); err != nil {
		undo()
		return err
	}
	return nil
}

// AlterTopicConfig applies IncrementalAlterConfigs operations to a topic and persists them.
func (s *Store) AlterTopicConfig(name string, ops []ConfigOp, validateOnly bool) error {
	t := s.Topic(name)
	if t == nil {
		return fmt.Errorf("alter configs of %q: %w", name, ErrUnknownTopic)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone != nil {
		return fmt.Errorf("alter configs of %q: %w", name, t.gone)
	}
	next, err := applyConfigOps(t.overrides, ops)
	if err != nil {
		return fmt.Errorf("topic %q: %w", name, err)
	}
	if cfg := buildTopicConfig(s.opts.TopicDefaults, next); cfg.check() != nil {
		return fmt.Errorf("topic %q: %w", name, cfg.check())
	}
	if validateOnly {
		return nil
	}
	prev := t.overrides
	t.overrides = next
	if err := t.save(); err != nil {
		t.overrides = prev
		return err
	}
	cfg := buildTopicConfig(s.opts.TopicDefaults, next)
	t.cfg = &cfg
	for _, l := range t.parts {
		l.setConfig(t.cfg)
	}
	s.log.Info("topic config altered", "topic", name, "configs", next)
	return nil
}
