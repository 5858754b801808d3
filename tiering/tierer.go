package tiering

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/internal/atomicfile"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// Config configures a Tierer. Zero values get the documented defaults.
type Config struct {
	// Prefix is prepended to every object key (e.g. "site-a/gw-1"); may be empty.
	Prefix string
	// CacheDir holds chunks of remote segments read back (required).
	CacheDir string
	// CacheBytes bounds the chunk cache on disk. Default 256 MiB; at least 4 chunks.
	CacheBytes int64
	// ChunkBytes is the size of one ranged GET of a remote segment. Default 4 MiB.
	ChunkBytes int64
	// ReadAheadBytes bounds the chunks of remote segments held in memory (readahead.go): the
	// chunks fetched for reads and ahead of sequential readers, sent from memory and written
	// to the disk cache only when they leave memory without having been read whole. Default
	// (0) DefaultReadAheadBytes, 32 MiB; negative: none, every chunk goes through the disk
	// cache. Below one chunk it holds none. Memory chunks need Linux (memfd).
	ReadAheadBytes int64
	// Interval is how often closed segments are looked for. Default 1s.
	Interval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed upload. Defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// Defaults of Config.
const (
	DefaultCacheBytes = 256 << 20
	DefaultChunkBytes = 4 << 20
)

func (c *Config) validate() error {
	if c.CacheDir == "" {
		return errors.New("tiering: cache_dir is required")
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.CacheBytes < 4*c.ChunkBytes {
		return fmt.Errorf("tiering: cache_bytes %d is below 4 chunks of %d bytes", c.CacheBytes, c.ChunkBytes)
	}
	if c.ReadAheadBytes == 0 {
		c.ReadAheadBytes = DefaultReadAheadBytes
	}
	if c.ReadAheadBytes < 0 {
		c.ReadAheadBytes = 0
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(time.Minute, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Tierer uploads closed segments of remote.storage.enable topics, keeps each partition's
// manifest, applies retention.ms/bytes to the uploaded segments and reads them back for
// fetches below the local log start.
type Tierer struct {
	store ObjectStore
	logs  *commitlog.Store
	cfg   Config
	log   *slog.Logger
	cache *chunkCache
	mem   *memPool
	idx   *indexCache

	mu    sync.Mutex
	parts map[partKey]*partState

	prefetchSlots chan struct{} // bounds background chunk loads

	kick  chan struct{}
	force atomic.Bool // the next sync ignores back-offs (Kick)
	stop  chan struct{}
	done  chan struct{}

	m metrics
}

type partKey struct {
	topic     string
	partition int32
}

// partState is what the Tierer knows of one partition. mu is held while the partition is
// synced (uploads, retention); manifest is read without it.
type partState struct {
	key      partKey
	mu       sync.Mutex
	manifest atomic.Pointer[Manifest] // nil until loaded from the store
	orphans  bool                     // leftovers of interrupted uploads were looked for
	retryAt  time.Time
	backoff  time.Duration
	lastErr  atomic.Pointer[string]
}

// New makes a Tierer over an object store and the agent's commit log.
func New(store ObjectStore, logs *commitlog.Store, cfg Config) (*Tierer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("tiering: create cache dir %s: %w", cfg.CacheDir, err)
	}
	cache, err := newChunkCache(filepath.Join(cfg.CacheDir, "chunks"), cfg.CacheBytes)
	if err != nil {
		return nil, err
	}
	t := &Tierer{store: store, logs: logs, cfg: cfg, log: cfg.Logger.With("component", "tiering"), cache: cache,
		mem: newMemPool(cfg.ReadAheadBytes, cfg.ChunkBytes),
		idx: newIndexCache(16 << 20), parts: map[partKey]*partState{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		prefetchSlots: make(chan struct{}, 3)}
	return t, nil
}

// Start loads the local copies of the manifests (so offsets in object storage are known at
// once, even while the store is unreachable) and runs the upload loop until Close.
func (t *Tierer) Start() {
	t.preload()
	go t.run()
}

// preload reads the local copy of every tiered partition's manifest, written after each
// successful manifest upload. The copy can only lag the bucket (a crash between the upload
// and the copy), which is safe: the uploader then re-uploads a segment under the same keys.
func (t *Tierer) preload() {
	for _, top := range t.logs.Topics() {
		if !top.Config().RemoteStorageEnable {
			continue
		}
		id := top.ID()
		for p := int32(0); p < top.NumPartitions(); p++ {
			data, err := os.ReadFile(t.localManifestPath(top.Name(), p))
			if err != nil {
				continue
			}
			m, err := manifest.Decode(data)
			if err != nil || m.TopicID != hex.EncodeToString(id[:]) {
				continue
			}
			st := t.state(top.Name(), p)
			st.manifest.CompareAndSwap(nil, m)
			if l := top.Partition(p); l != nil {
				l.SetTieredEnd(m.EndOffset())
			}
		}
	}
}

// localManifestPath is where the last manifest uploaded for a partition is copied: under a
// name for the bucket and prefix, so pointing the agent at another bucket or prefix never
// takes an old copy for the new place's state.
func (t *Tierer) localManifestPath(topic string, partition int32) string {
	id := t.cfg.Prefix
	if s, ok := t.store.(interface{ ID() string }); ok {
		id = s.ID() + "\x00" + id
	}
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(t.cfg.CacheDir, "manifests", hex.EncodeToString(sum[:8]), topic, strconv.Itoa(int(partition)), manifest.Name)
}

// Close stops the loop, waiting for an upload in flight to finish or fail, and frees the
// chunks held in memory (those a response still holds when it lets them go).
func (t *Tierer) Close() {
	select {
	case <-t.stop:
		return
	default:
	}
	close(t.stop)
	<-t.done
	t.mem.close()
}

// Kick asks for a sync of every tiered partition now, including those waiting out a back-off
// after a failure (the store is known to be back).
func (t *Tierer) Kick() {
	t.force.Store(true)
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Tierer) run() {
	defer close(t.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.stop
		cancel()
	}()
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		t.SyncAll(ctx, t.force.Swap(false))
		select {
		case <-t.stop:
			return
		case <-tick.C:
		case <-t.kick:
		}
	}
}

// SyncAll uploads what is due on every tiered partition and applies remote retention. Unless
// force is set, partitions in backoff after a failure are skipped. It returns the first error.
func (t *Tierer) SyncAll(ctx context.Context, force bool) error {
	var first error
	for _, top := range t.logs.Topics() {
		if !top.Config().RemoteStorageEnable {
			continue
		}
		for p := int32(0); p < top.NumPartitions(); p++ {
			l := top.Partition(p)
			if l == nil || ctx.Err() != nil {
				continue
			}
			if err := t.syncPartition(ctx, top, l, force); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// state returns (creating) the state of a partition.
func (t *Tierer) state(topic string, partition int32) *partState {
	k := partKey{topic, partition}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.parts[k]
	if st == nil {
		st = &partState{key: k}
		t.parts[k] = st
	}
	return st
}

// lookup returns the state of a partition if the Tierer has loaded its manifest.
func (t *Tierer) lookup(topic string, partition int32) *Manifest {
	t.mu.Lock()
	st := t.parts[partKey{topic, partition}]
	t.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.manifest.Load()
}

// syncPartition loads the manifest, cleans up leftovers once, uploads closed segments and
// applies remote retention.
func (t *Tierer) syncPartition(ctx context.Context, top *commitlog.Topic, l *commitlog.Log, force bool) error {
	st := t.state(top.Name(), l.Partition())
	st.mu.Lock()
	defer st.mu.Unlock()
	now := t.cfg.Now()
	if !force && now.Before(st.retryAt) {
		return nil
	}
	err := t.syncLocked(ctx, st, top, l, now)
	if err == nil {
		st.backoff, st.retryAt = 0, time.Time{}
		st.lastErr.Store(nil)
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	st.backoff = min(max(2*st.backoff, t.cfg.RetryMin), t.cfg.RetryMax)
	st.retryAt = now.Add(st.backoff)
	msg := err.Error()
	st.lastErr.Store(&msg)
	t.m.errors.Add(1)
	t.log.Warn("tiering failed; retrying with backoff", "topic", top.Name(), "partition", l.Partition(), "retry_in", st.backoff, "err", err)
	return err
}

func (t *Tierer) syncLocked(ctx context.Context, st *partState, top *commitlog.Topic, l *commitlog.Log, now time.Time) error {
	m := st.manifest.Load()
	if m == nil {
		loaded, foreign, err := t.loadManifest(ctx, top, l.Partition())
		if err != nil {
			return err
		}
		m = loaded
		st.orphans = st.orphans || foreign // an older topic's objects are not leftovers
		st.manifest.Store(m)
		l.SetTieredEnd(m.EndOffset())
	}
	if !st.orphans {
		if err := t.removeOrphans(ctx, top.Name(), l.Partition(), m); err != nil {
			return err
		}
		st.orphans = true
	}
	for _, seg := range l.SealedSegments(m.EndOffset()) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		next, err := t.upload(ctx, top, l, m, seg, now)
		if err != nil {
			return err
		}
		m = next
		st.manifest.Store(m)
		l.SetTieredEnd(m.EndOffset())
		t.m.lastSuccess.Store(t.cfg.Now().UnixMilli())
	}
	next, err := t.applyRetention(ctx, top, l, m, now)
	if err != nil {
		return err
	}
	st.manifest.Store(next)
	return nil
}

// loadManifest reads a partition's manifest, or starts an empty one. A manifest written for
// another topic of the same name (deleted and re-created) is set aside: the new topic starts
// a new one, and the old objects are left alone.
func (t *Tierer) loadManifest(ctx context.Context, top *commitlog.Topic, partition int32) (m *Manifest, foreign bool, err error) {
	id := top.ID()
	fresh := &Manifest{Version: manifest.Version, Topic: top.Name(), TopicID: hex.EncodeToString(id[:]), Partition: partition}
	key := ManifestKey(t.cfg.Prefix, top.Name(), partition)
	data, err := t.getAll(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return fresh, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read manifest %s: %w", key, err)
	}
	m, err = manifest.Decode(data)
	if err != nil {
		return nil, false, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if m.TopicID != "" && m.TopicID != fresh.TopicID {
		t.log.Warn("manifest in the bucket belongs to an older topic of the same name; starting a new one",
			"key", key, "manifest_topic_id", m.TopicID, "topic_id", fresh.TopicID)
		return fresh, true, nil
	}
	return m, false, nil
}

// getAll reads a whole (small) object.
func (t *Tierer) getAll(ctx context.Context, key string) ([]byte, error) {
	rc, err := t.store.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := rc.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if errors.Is(err, errEOF) {
				return buf, nil
			}
			return nil, err
		}
	}
}

// putManifest replaces a partition's manifest.
func (t *Tierer) putManifest(ctx context.Context, m *Manifest) error {
	m.UpdatedMs = t.cfg.Now().UnixMilli()
	data := m.Encode()
	key := ManifestKey(t.cfg.Prefix, m.Topic, m.Partition)
	if err := t.store.Put(ctx, key, bytesReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("write manifest %s: %w", key, err)
	}
	path := t.localManifestPath(m.Topic, m.Partition)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = atomicfile.WriteFile(path, data, 0o644)
	}
	if err != nil {
		t.log.Warn("keep a local copy of the manifest", "file", path, "err", err)
	}
	return nil
}

// removeOrphans deletes objects under the partition's prefix that the manifest does not list:
// leftovers of an upload or a delete that a crash interrupted.
func (t *Tierer) removeOrphans(ctx context.Context, topic string, partition int32, m *Manifest) error {
	prefix := PartitionPrefix(t.cfg.Prefix, topic, partition) + "/"
	objs, err := t.store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	listed := map[string]bool{ManifestKey(t.cfg.Prefix, topic, partition): true}
	for _, s := range m.Segments {
		for _, ext := range segmentExts {
			listed[s.Key(t.cfg.Prefix, topic, partition, ext)] = true
		}
	}
	for _, o := range objs {
		if listed[o.Key] {
			continue
		}
		if _, _, _, ok := ParseSegmentKey(o.Key); !ok {
			continue // not ours
		}
		if err := t.store.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete leftover %s: %w", o.Key, err)
		}
		t.m.orphansRemoved.Add(1)
		t.log.Info("removed an object no manifest lists (an interrupted upload or delete)", "key", o.Key)
	}
	return nil
}

var segmentExts = [...]string{".log", ".index", ".timeindex"}
