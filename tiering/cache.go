package tiering

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// chunkCache keeps chunks of remote segments (one ranged GET each) as files in a directory,
// at most limit bytes, least recently used out first. It starts empty: the directory is
// cleared at open. A chunk handed out stays readable after eviction (the open file outlives
// the unlink).
type chunkCache struct {
	dir   string
	limit int64

	mu      sync.Mutex
	entries map[string]*list.Element // of *chunkEntry
	lru     *list.List               // front: most recently used
	size    int64
	loading map[string]*chunkLoad
	seq     int64

	writes atomic.Int64 // chunks written
}

type chunkEntry struct {
	key  string
	path string
	size int64
}

type chunkLoad struct {
	done chan struct{}
	err  error
}

func newChunkCache(dir string, limit int64) (*chunkCache, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("tiering: clear chunk cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tiering: create chunk cache %s: %w", dir, err)
	}
	return &chunkCache{dir: dir, limit: limit, entries: map[string]*list.Element{}, lru: list.New(), loading: map[string]*chunkLoad{}}, nil
}

// open returns the cached chunk under key, opened for reading, loading it with load on a
// miss (one load per key at a time; concurrent callers wait for it). hit says whether it was
// there already.
func (c *chunkCache) open(key string, load func(w io.Writer) error) (f *os.File, hit bool, err error) {
	for {
		c.mu.Lock()
		if el, ok := c.entries[key]; ok {
			c.lru.MoveToFront(el)
			path := el.Value.(*chunkEntry).path
			f, err := os.Open(path)
			c.mu.Unlock()
			if err == nil {
				return f, true, nil
			}
			c.remove(key) // vanished from disk: load it again
			continue
		}
		if ld, ok := c.loading[key]; ok {
			c.mu.Unlock()
			<-ld.done
			if ld.err != nil {
				return nil, false, ld.err
			}
			continue
		}
		ld := &chunkLoad{done: make(chan struct{})}
		c.loading[key] = ld
		c.seq++
		tmp := filepath.Join(c.dir, fmt.Sprintf("load-%d.tmp", c.seq))
		c.mu.Unlock()
		f, err := c.fill(key, tmp, load)
		c.mu.Lock()
		delete(c.loading, key)
		ld.err = err
		close(ld.done)
		c.mu.Unlock()
		return f, false, err
	}
}

// fill loads a chunk into a temp file, moves it into place and opens it.
func (c *chunkCache) fill(key, tmp string, load func(w io.Writer) error) (*os.File, error) {
	w, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("tiering: chunk cache: %w", err)
	}
	err = load(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(c.dir, hex.EncodeToString(sum[:16])+".chunk")
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("tiering: chunk cache: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tiering: chunk cache: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tiering: chunk cache: %w", err)
	}
	c.writes.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = c.lru.PushFront(&chunkEntry{key: key, path: path, size: st.Size()})
	c.size += st.Size()
	for c.size > c.limit && c.lru.Len() > 1 {
		c.removeLocked(c.lru.Back().Value.(*chunkEntry).key)
	}
	return f, nil
}

func (c *chunkCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
}

func (c *chunkCache) removeLocked(key string) {
	el, ok := c.entries[key]
	if !ok {
		return
	}
	e := el.Value.(*chunkEntry)
	c.lru.Remove(el)
	delete(c.entries, key)
	c.size -= e.size
	os.Remove(e.path)
}

// has reports whether key is cached.
func (c *chunkCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}

// hasOrLoading reports whether key is cached or being loaded.
func (c *chunkCache) hasOrLoading(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	_, loading := c.loading[key]
	return ok || loading
}

// bytes is the cache's current size.
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// indexCache keeps whole remote index objects in memory, at most limit bytes.
type indexCache struct {
	limit   int64
	mu      sync.Mutex
	entries map[string]*list.Element // of *indexEntry
	lru     *list.List
	size    int64
}

type indexEntry struct {
	key  string
	data []byte
}

func newIndexCache(limit int64) *indexCache {
	return &indexCache{limit: limit, entries: map[string]*list.Element{}, lru: list.New()}
}

func (c *indexCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*indexEntry).data, true
}

func (c *indexCache) put(key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok || int64(len(data)) > c.limit {
		return
	}
	c.entries[key] = c.lru.PushFront(&indexEntry{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.limit {
		e := c.lru.Back().Value.(*indexEntry)
		c.lru.Remove(c.lru.Back())
		delete(c.entries, e.key)
		c.size -= int64(len(e.data))
	}
}

func (c *indexCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.size -= int64(len(el.Value.(*indexEntry).data))
		c.lru.Remove(el)
		delete(c.entries, key)
	}
}
