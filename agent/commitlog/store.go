package commitlog

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// FsyncMode says when appended data is fsynced.
type FsyncMode int

const (
	// FsyncInterval fsyncs every Options.FsyncInterval (and on flush.messages/flush.ms).
	FsyncInterval FsyncMode = iota
	// FsyncAlways fsyncs before acknowledging; one fdatasync covers every waiting append.
	FsyncAlways
	// FsyncNever leaves flushing to the OS (and to flush.messages/flush.ms).
	FsyncNever
)

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "interval", "":
		return FsyncInterval, nil
	case "always":
		return FsyncAlways, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("fsync mode %q: allowed: always, interval, never", s)
}

// Options configures a Store. Zero values get defaults: fsync interval mode every second.
type Options struct {
	Dir           string            // data directory (required)
	Fsync         FsyncMode         // default FsyncInterval
	FsyncInterval time.Duration     // default 1s
	TopicDefaults map[string]string // Kafka topic config keys applied to every topic
	Logger        *slog.Logger      // default slog.Default()
	ForcePread    bool              // use pread for indexes even on 64-bit (tests)
	MaxPartitions int32             // per topic; default 10000

	// ProducerIDExpiration is Kafka's producer.id.expiration.ms: a partition forgets an
	// idempotent producer id idle this long. Default 24h.
	ProducerIDExpiration time.Duration
	// MaxProducers caps the producer ids one partition tracks; past it the least recently
	// used is forgotten. Default 10000.
	MaxProducers int
	// Now is the clock of producer expiry, retention and compaction (tests); default time.Now.
	Now func() time.Time

	// AppendGate, when set, is asked before every append; a non-nil error refuses the append
	// with ErrStorage wrapping it (the disk guard). Retention and compaction are not gated.
	AppendGate func() error
	// UnderPressure, when set, reports that disk space is short (the disk guard refuses
	// appends): retention then also deletes local copies of segments already in object storage.
	UnderPressure func() bool
	// RetentionCheckInterval is how often retention (retention.ms, retention.bytes) runs:
	// Kafka's log.retention.check.interval.ms. Default 30s.
	RetentionCheckInterval time.Duration
	// CleanerBackoff is how long the log cleaner sleeps when no partition needs compaction:
	// Kafka's log.cleaner.backoff.ms. Default 15s.
	CleanerBackoff time.Duration
	// CleanerBufferBytes is the memory budget of the cleaner's key map (Kafka's
	// log.cleaner.dedupe.buffer.size). Each key takes 24 bytes. Default 16 MiB; minimum 64 KiB.
	CleanerBufferBytes int64
	// CleanerIOBytesPerSecond caps the bytes per second the cleaner reads plus writes, so
	// compaction does not starve producers of an SD card's bandwidth (0: unlimited).
	CleanerIOBytesPerSecond int64
}

func (o *Options) validate() error {
	if o.Dir == "" {
		return errors.New("commitlog: Options.Dir is required")
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxPartitions <= 0 {
		o.MaxPartitions = defaultMaxPartitions
	}
	if o.ProducerIDExpiration <= 0 {
		o.ProducerIDExpiration = defaultProducerIDExpiration
	}
	if o.MaxProducers <= 0 {
		o.MaxProducers = defaultMaxProducers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetentionCheckInterval <= 0 {
		o.RetentionCheckInterval = defaultRetentionCheckInterval
	}
	if o.CleanerBackoff <= 0 {
		o.CleanerBackoff = defaultCleanerBackoff
	}
	if o.CleanerBufferBytes == 0 {
		o.CleanerBufferBytes = defaultCleanerBufferBytes
	}
	if o.CleanerBufferBytes < minCleanerBufferBytes {
		return fmt.Errorf("commitlog: cleaner buffer of %d bytes is below the minimum %d", o.CleanerBufferBytes, int64(minCleanerBufferBytes))
	}
	if o.CleanerIOBytesPerSecond < 0 {
		return fmt.Errorf("commitlog: cleaner I/O limit %d bytes/s is negative", o.CleanerIOBytesPerSecond)
	}
	if err := ValidateTopicConfigs(o.TopicDefaults); err != nil {
		return fmt.Errorf("topic_defaults: %w", err)
	}
	return nil
}

// Retention and cleaner defaults.
const (
	defaultRetentionCheckInterval = 30 * time.Second
	defaultCleanerBackoff         = 15 * time.Second
	defaultCleanerBufferBytes     = 16 << 20
	minCleanerBufferBytes         = 64 << 10
)

// Producer state defaults.
const (
	defaultProducerIDExpiration = 24 * time.Hour // Kafka's producer.id.expiration.ms
	defaultMaxProducers         = 10000
)

const (
	defaultMaxPartitions = 10000
	cleanMarker          = ".clean_shutdown"
	lockName             = ".lock"
	metaName             = "meta.json"
	topicsDir            = "topics"
	topicMeta            = "topic.json"
)

// Store is the set of topics and partition logs in one data directory:
//
//	<dir>/meta.json                       cluster id
//	<dir>/producer_ids.json               end of the producer ids handed out so far
//	<dir>/topics/<topic>/topic.json       id, partition count, config overrides
//	<dir>/topics/<topic>/<p>/%020d.log    segments, with .index and .timeindex
type Store struct {
	opts      Options
	log       *slog.Logger
	lock      *os.File
	clusterID string

	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[[16]byte]*Topic
	closed bool

	chMu    sync.Mutex
	ch      chan struct{}
	chTaken atomic.Bool // someone holds ch: only then does a change replace it

	metrics storeMetrics
	fsync   fsyncer

	pids       producerIDs
	expiryStop chan struct{}
	expiryDone chan struct{}

	janitorStop chan struct{} // retention.go
	janitorDone chan struct{}
	janitorKick chan struct{}
	cleaner     *cleaner // cleaner.go
}

// fsyncer does a Store's fsyncs of segment files and partition directories. Tests replace
// defaultFsyncer before Open to observe or fail them.
type fsyncer struct {
	file func(f *os.File) error
	dir  func(dir string) error
}

var defaultFsyncer = fsyncer{file: datasync, dir: syncDir}

type storeMeta struct {
	ClusterID string `json:"cluster_id"`
}

// Open opens (creating if needed) a data directory and recovers every partition. After an
// unclean shutdown each partition's newest segments are CRC-scanned and torn tails cut.
func Open(opts Options) (*Store, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, log: opts.Logger, topics: map[string]*Topic{}, byID: map[[16]byte]*Topic{}, ch: make(chan struct{}), fsync: defaultFsyncer}
	if err := os.MkdirAll(filepath.Join(opts.Dir, topicsDir), 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", opts.Dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file in %s: %w", opts.Dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data dir %s is in use by another agent: %w", opts.Dir, err)
	}
	s.lock = lock
	if err := s.loadMeta(); err != nil {
		s.lock.Close()
		return nil, err
	}
	if err := s.pids.load(filepath.Join(opts.Dir, producerIDsName)); err != nil {
		s.lock.Close()
		return nil, err
	}
	clean := s.takeCleanMarker()
	if err := s.loadTopics(clean); err != nil {
		s.closeLogs()
		s.lock.Close()
		return nil, err
	}
	s.startExpiry()
	s.startMaintenance()
	s.log.Info("commit log open", "dir", opts.Dir, "clean_shutdown", clean, "topics", len(s.topics))
	return s, nil
}

func (s *Store) usePread() bool { return s.opts.ForcePread || is32bit }

func (s *Store) loadMeta() error {
	path := filepath.Join(s.opts.Dir, metaName)
	data, err := os.ReadFile(path)
	if err == nil {
		var m storeMeta
		if err := json.Unmarshal(data, &m); err != nil || m.ClusterID == "" {
			return fmt.Errorf("read %s: corrupt meta file (%v)", path, err)
		}
		s.clusterID = m.ClusterID
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	s.clusterID = base64.RawURLEncoding.EncodeToString(id)
	data, _ = json.Marshal(storeMeta{ClusterID: s.clusterID})
	return writeFileAtomic(path, data, 0o644)
}

// takeCleanMarker reports whether the last shutdown was clean and removes the marker, so that a
// crash from now on is detected.
func (s *Store) takeCleanMarker() bool {
	path := filepath.Join(s.opts.Dir, cleanMarker)
	if _, err := os.Stat(path); err != nil {
		return false
	}
	if err := os.Remove(path); err != nil {
		s.log.Warn("cannot remove clean shutdown marker; recovering as after a crash", "err", err)
		return false
	}
	if err := syncDir(s.opts.Dir); err != nil {
		s.log.Warn("sync data dir", "err", err)
	}
	return true
}

func (s *Store) loadTopics(clean bool) error {
	root := filepath.Join(s.opts.Dir, topicsDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("list topics in %s: %w", root, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), ".deleted-") {
			if err := os.RemoveAll(dir); err != nil {
				s.log.Warn("remove deleted topic dir", "dir", dir, "err", err)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, topicMeta)); errors.Is(err, os.ErrNotExist) {
			if err := s.removeIncompleteTopic(dir); err != nil {
				return err
			}
			continue
		}
		t, err := s.loadTopic(dir, clean)
		if err != nil {
			return err
		}
		if other := s.byID[t.id]; other != nil {
			t.closeLogs(ErrClosed)
			return fmt.Errorf("read topic %s: id %s is also topic %q's", filepath.Join(dir, topicMeta), hexID(t.id), other.name)
		}
		s.topics[t.name], s.byID[t.id] = t, t
	}
	return nil
}

// Close flushes every partition, closes the files and writes the clean shutdown marker.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stopExpiry()
	s.stopMaintenance()
	err := s.closeLogs()
	if err == nil {
		if werr := writeFileAtomic(filepath.Join(s.opts.Dir, cleanMarker), []byte("clean\n"), 0o644); werr != nil {
			err = werr
		}
	} else {
		s.log.Error("shutdown was not clean; the next start recovers", "err", err)
	}
	s.notifyChanged()
	s.lock.Close()
	return err
}

func (s *Store) closeLogs() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first error
	for _, t := range s.topics {
		if err := t.closeLogs(ErrClosed); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ClusterID is the data directory's cluster id, made on first start.
func (s *Store) ClusterID() string { return s.clusterID }

// Dir is the data directory.
func (s *Store) Dir() string { return s.opts.Dir }

// Changed returns a channel closed when any partition's high watermark next advances.
func (s *Store) Changed() <-chan struct{} {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	s.chTaken.Store(true)
	return s.ch
}

// notifyChanged wakes Changed's callers. With nobody waiting it costs one atomic load: it runs
// on every append.
func (s *Store) notifyChanged() {
	if !s.chTaken.Load() {
		return
	}
	s.chMu.Lock()
	if s.chTaken.Load() {
		close(s.ch)
		s.ch = make(chan struct{})
		s.chTaken.Store(false)
	}
	s.chMu.Unlock()
}

// Topic returns the named topic, or nil.
func (s *Store) Topic(name string) *Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.topics[name]
}

// TopicByID returns the topic with that id, or nil.
func (s *Store) TopicByID(id [16]byte) *Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

// Topics lists all topics sorted by name.
func (s *Store) Topics() []*Topic {
	s.mu.RLock()
	out := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ValidateTopicName applies Kafka's rules: 1–249 characters of [a-zA-Z0-9._-], not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %q is %d characters (max 249)", ErrInvalidTopic, name[:20]+"...", len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q (allowed: ASCII letters, digits, '.', '_', '-')", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func hexID(id [16]byte) string { return hex.EncodeToString(id[:]) }
