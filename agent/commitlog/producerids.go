package commitlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// Producer ids
//
// InitProducerId hands out producer ids that must never repeat, across restarts too: a
// reused id would make a new producer's first batches look like an old one's retries. The
// store reserves them in blocks of producerIDBlock and persists the end of the reserved block
// (atomically, fsynced) before handing any id of it out; a restart starts after that end, so
// at most a block's unused remainder is skipped.

const (
	producerIDsName = "producer_ids.json"
	producerIDBlock = 1000
)

// producerIDs is the store's producer id allocator.
type producerIDs struct {
	mu   sync.Mutex
	path string
	next int64 // the next id to hand out
	end  int64 // ids below end are reserved on disk
}

type producerIDsFile struct {
	NextBlock int64 `json:"next_block"`
}

// load reads the persisted block end, if any.
func (p *producerIDs) load(path string) error {
	p.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var f producerIDsFile
	if err := json.Unmarshal(data, &f); err != nil || f.NextBlock < 0 {
		return fmt.Errorf("read %s: corrupt producer id file (%v); producer ids must not be reused, so it is not reset: "+
			"restore it, or write {\"next_block\": N} with N above every producer id ever handed out", path, err)
	}
	p.next, p.end = f.NextBlock, f.NextBlock
	return nil
}

// AllocateProducerID returns a producer id never handed out before by this data directory.
func (s *Store) AllocateProducerID() (int64, error) {
	p := &s.pids
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		if p.end > math.MaxInt64-producerIDBlock {
			return -1, fmt.Errorf("allocate producer id: %w: ids exhausted", ErrStorage)
		}
		end := p.end + producerIDBlock
		data, _ := json.Marshal(producerIDsFile{NextBlock: end})
		if err := writeFileAtomic(p.path, data, 0o644); err != nil {
			return -1, fmt.Errorf("allocate producer id: %w: %v", ErrStorage, err)
		}
		p.end = end
	}
	id := p.next
	p.next++
	return id, nil
}

// ProducerIDAllocated reports whether id may have been handed out by AllocateProducerID
// (now or before a restart).
func (s *Store) ProducerIDAllocated(id int64) bool {
	p := &s.pids
	p.mu.Lock()
	defer p.mu.Unlock()
	return id >= 0 && id < p.next
}

// nowMs is the producer state clock in milliseconds.
func (s *Store) nowMs() int64 { return s.opts.Now().UnixMilli() }

// ExpireProducers drops, in every partition, the producer ids idle longer than the producer
// id expiration, and returns how many. A background loop calls it periodically.
func (s *Store) ExpireProducers() int {
	cutoff := s.nowMs() - s.opts.ProducerIDExpiration.Milliseconds()
	n := 0
	for _, t := range s.Topics() {
		for p := int32(0); p < t.NumPartitions(); p++ {
			if l := t.Partition(p); l != nil {
				n += l.expireProducers(cutoff)
			}
		}
	}
	if n > 0 {
		s.metrics.producersExpired.Add(int64(n))
		s.log.Debug("expired idle producer ids", "count", n, "expiration", s.opts.ProducerIDExpiration)
	}
	return n
}

// expiryInterval is how often the expiry loop runs: half the expiration, within [1s, 10min]
// (Kafka checks every 10 minutes).
func (s *Store) expiryInterval() time.Duration {
	return min(max(s.opts.ProducerIDExpiration/2, time.Second), 10*time.Minute)
}

func (s *Store) startExpiry() {
	s.expiryStop, s.expiryDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.expiryDone)
		t := time.NewTicker(s.expiryInterval())
		defer t.Stop()
		for {
			select {
			case <-s.expiryStop:
				return
			case <-t.C:
				s.ExpireProducers()
			}
		}
	}()
}

func (s *Store) stopExpiry() {
	if s.expiryStop != nil {
		close(s.expiryStop)
		<-s.expiryDone
	}
}

// expireProducers drops the producers last seen at or before cutoff (ms).
func (l *Log) expireProducers(cutoff int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.producers.expire(cutoff)
}

// NumProducers is the number of idempotent producer ids the partition tracks.
func (l *Log) NumProducers() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.producers.len()
}
