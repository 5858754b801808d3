package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Producer state snapshots
//
// Like Kafka, a partition writes its producer state to %020d.snapshot, named by the offset it
// is valid at (everything below that offset is in it), when a segment rolls (at the new
// segment's base) and at a clean close (at the log end). The syncer writes a roll's snapshot
// with atomicfile after the data below it is fsynced, so a snapshot never covers offsets the
// disk might not have; the two newest are kept. At open, the newest snapshot at or below the
// log end is loaded and the batch headers after it are replayed (headers carry the producer
// id, epoch and sequence, so nothing is decompressed). Snapshots above the log end (recovery
// cut the tail they describe) are removed, and a damaged one (bad CRC) is skipped for the
// next older one, or for a replay of the whole log.
//
// File format, big-endian:
//
//	version   int16   snapshotVersion
//	crc       uint32  CRC-32C of everything after this field
//	offset    int64   the offset the state is valid at (the file name)
//	count     int32   producers, least recently used first
//	count x   id int64, epoch int16, last seen (ms) int64, batches uint8,
//	          batches x (first seq int32, last seq int32, first offset int64,
//	                     last offset int64, timestamp int64)

const (
	snapshotExt      = ".snapshot"
	snapshotVersion  = 1
	snapshotHeader   = 2 + 4 + 8 + 4
	snapshotEntry    = 8 + 2 + 8 + 1
	snapshotBatch    = 4 + 4 + 8 + 8 + 8
	snapshotsToKeep  = 2
	maxPendingWrites = snapshotsToKeep
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// pendingSnapshot is a snapshot taken under Log.mu, waiting for the syncer to write it.
type pendingSnapshot struct {
	offset int64
	data   []byte
}

// encodeSnapshot serialises ps as valid at offset.
func encodeSnapshot(ps *producerState, offset int64) []byte {
	size := snapshotHeader
	for e := ps.oldest; e != nil; e = e.newer {
		size += snapshotEntry + int(e.n)*snapshotBatch
	}
	be := binary.BigEndian
	b := make([]byte, 6, size)
	be.PutUint16(b, snapshotVersion)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(ps.len()))
	for e := ps.oldest; e != nil; e = e.newer {
		b = be.AppendUint64(b, uint64(e.id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint64(b, uint64(e.lastSeen))
		b = append(b, e.n)
		e.each(func(pb *producerBatch) {
			b = be.AppendUint32(b, uint32(pb.firstSeq))
			b = be.AppendUint32(b, uint32(pb.lastSeq))
			b = be.AppendUint64(b, uint64(pb.firstOffset))
			b = be.AppendUint64(b, uint64(pb.lastOffset))
			b = be.AppendUint64(b, uint64(pb.timestamp))
		})
	}
	be.PutUint32(b[2:], crc32.Checksum(b[6:], crc32c))
	return b
}

// decodeSnapshot loads a snapshot valid at offset into ps (which should be empty), skipping
// producers last seen at or before cutoff (ms): they have expired.
func decodeSnapshot(data []byte, offset int64, ps *producerState, cutoff int64) error {
	be := binary.BigEndian
	if len(data) < snapshotHeader {
		return fmt.Errorf("%d bytes, shorter than the header", len(data))
	}
	if v := be.Uint16(data); v != snapshotVersion {
		return fmt.Errorf("unknown version %d", v)
	}
	if sum := crc32.Checksum(data[6:], crc32c); sum != be.Uint32(data[2:]) {
		return fmt.Errorf("CRC mismatch (stored %08x, computed %08x)", be.Uint32(data[2:]), sum)
	}
	if off := int64(be.Uint64(data[6:])); off != offset {
		return fmt.Errorf("holds offset %d, its name says %d", off, offset)
	}
	count := int64(be.Uint32(data[14:]))
	b := data[snapshotHeader:]
	if count > int64(len(b)/snapshotEntry) {
		return fmt.Errorf("%d producers in %d bytes", count, len(b))
	}
	for ; count > 0; count-- {
		if len(b) < snapshotEntry {
			return errors.New("truncated producer entry")
		}
		id, epoch, seen, n := int64(be.Uint64(b)), int16(be.Uint16(b[8:])), int64(be.Uint64(b[10:])), int(b[18])
		b = b[snapshotEntry:]
		if id < 0 || epoch < 0 || n == 0 || n > producerWindow || len(b) < n*snapshotBatch {
			return fmt.Errorf("bad producer entry (id %d, epoch %d, %d batches)", id, epoch, n)
		}
		var e producerEntry
		for i := 0; i < n; i++ {
			pb := producerBatch{
				firstSeq: int32(be.Uint32(b)), lastSeq: int32(be.Uint32(b[4:])),
				firstOffset: int64(be.Uint64(b[8:])), lastOffset: int64(be.Uint64(b[16:])), timestamp: int64(be.Uint64(b[24:])),
			}
			b = b[snapshotBatch:]
			if pb.firstOffset < 0 || pb.lastOffset < pb.firstOffset || pb.lastOffset >= offset {
				return fmt.Errorf("producer %d: batch at offsets %d..%d (snapshot at %d)", id, pb.firstOffset, pb.lastOffset, offset)
			}
			e.push(pb)
		}
		if seen <= cutoff {
			continue // expired while the agent was down
		}
		if old := ps.byID[id]; old != nil {
			ps.remove(old) // not written by us; the later entry wins
		}
		ne := ps.insert(id)
		ne.epoch, ne.lastSeen, ne.n, ne.next, ne.batches = epoch, seen, e.n, e.next, e.batches
	}
	if len(b) != 0 {
		return fmt.Errorf("%d bytes after the last producer", len(b))
	}
	return nil
}

// listSnapshots returns the offsets of the partition's snapshot files, sorted.
func listSnapshots(dir string) ([]int64, error) {
	offs, _, err := scanSnapshots(dir)
	return offs, err
}

// scanSnapshots returns the offsets of the partition's snapshot files, sorted, and the
// temporary files of snapshot writes a crash interrupted.
func scanSnapshots(dir string) (offs []int64, stale []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots in %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), snapshotExt+".tmp-") {
			stale = append(stale, filepath.Join(dir, e.Name())) // atomicfile's temporary name
			continue
		}
		digits, ok := strings.CutSuffix(e.Name(), snapshotExt)
		if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		if off, err := strconv.ParseInt(digits, 10, 64); err == nil {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs, stale, nil
}

func snapshotPath(dir string, offset int64) string { return segmentPath(dir, offset, snapshotExt) }

// queueSnapshotLocked takes a snapshot valid at offset for the syncer to write. Caller holds mu.
func (l *Log) queueSnapshotLocked(offset int64) {
	snap := pendingSnapshot{offset: offset, data: encodeSnapshot(&l.producers, offset)}
	if len(l.pendingSnaps) >= maxPendingWrites {
		l.pendingSnaps = append(l.pendingSnaps[:0], l.pendingSnaps[1:]...) // only the newest are kept
	}
	l.pendingSnaps = append(l.pendingSnaps, snap)
}

// writeSnapshots writes snapshots (oldest first) and removes all but the newest kept ones.
// A failed write is logged, not fatal: the next start replays from an older snapshot.
// Caller holds flushMu.
func (l *Log) writeSnapshots(snaps []pendingSnapshot) {
	wrote := false
	for _, s := range snaps {
		path := snapshotPath(l.dir, s.offset)
		if err := writeFileAtomic(path, s.data, 0o644); err != nil {
			l.log.Warn("write producer snapshot; the next start replays more of the log", "file", path, "err", err)
			continue
		}
		wrote = true
		if s.offset > l.replayFrom {
			l.replayFrom = s.offset
		}
	}
	if wrote {
		l.pruneSnapshots()
	}
}

// pruneSnapshots removes all snapshots but the snapshotsToKeep newest.
func (l *Log) pruneSnapshots() {
	offs, err := listSnapshots(l.dir)
	if err != nil {
		l.log.Warn("prune producer snapshots", "err", err)
		return
	}
	for i := 0; i < len(offs)-snapshotsToKeep; i++ {
		if err := os.Remove(snapshotPath(l.dir, offs[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("remove old producer snapshot", "err", err)
		}
	}
}

// writeCloseSnapshot snapshots the producer state at the log end, so a clean restart replays
// nothing. It is skipped when a restart would replay nothing anyway.
func (l *Log) writeCloseSnapshot() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.RLock()
	if l.failed != nil || l.replayFrom >= l.leo {
		l.mu.RUnlock()
		return
	}
	snap := pendingSnapshot{offset: l.leo, data: encodeSnapshot(&l.producers, l.leo)}
	l.mu.RUnlock()
	l.writeSnapshots([]pendingSnapshot{snap})
}

// loadProducerState restores the producer state at open: the newest good snapshot at or below
// the log end, then the batch headers after it. Called before the log serves anything.
func (l *Log) loadProducerState() error {
	offs, stale, err := scanSnapshots(l.dir)
	if err != nil {
		return err
	}
	for _, path := range stale {
		l.removeSnapshot(path)
	}
	now := l.store.nowMs()
	cutoff := now - l.store.opts.ProducerIDExpiration.Milliseconds()
	l.producers.max, l.producers.evictions = l.store.opts.MaxProducers, &l.store.metrics.producersEvicted
	from := l.segments[0].base
	for i := len(offs) - 1; i >= 0; i-- {
		off, path := offs[i], snapshotPath(l.dir, offs[i])
		if off > l.leo {
			l.log.Warn("removing a producer snapshot past the log end (recovery cut the log below it)", "file", path, "log_end", l.leo)
			l.removeSnapshot(path)
			continue
		}
		data, err := os.ReadFile(path)
		if err == nil {
			if err = decodeSnapshot(data, off, &l.producers, cutoff); err == nil {
				from = off
				break
			}
		}
		l.log.Warn("producer snapshot unreadable; trying an older one", "file", path, "err", err)
		l.producers.reset()
		l.removeSnapshot(path)
	}
	l.replayFrom = from
	return l.replayProducers(from, now)
}

func (l *Log) removeSnapshot(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("remove producer snapshot", "file", path, "err", err)
	}
}

// replayProducers applies the idempotent batches at or after from, reading only their
// headers. Damage stops the walk of that segment (recovery has already cut a torn tail;
// what remains is reported by reads); an I/O error fails the open.
func (l *Log) replayProducers(from, now int64) error {
	var buf [batch.HeaderSize]byte
	for i := max(segmentFor(l.segments, from), 0); i < len(l.segments); i++ {
		s := l.segments[i]
		pos := int64(0)
		if from > s.base {
			if p, ok, err := s.findPos(from, s.size); err == nil && ok {
				pos = p
			} else if err == nil {
				continue // nothing at or after from in this segment
			}
		}
		for pos < s.size {
			h, err := s.readHeader(pos, s.size, &buf)
			if errors.Is(err, ErrStorage) {
				return fmt.Errorf("replay producer state: %w", err)
			}
			if err != nil {
				l.log.Warn("producer state replay stopped at damage in a segment", "file", s.path, "position", pos, "err", err)
				break
			}
			if h.ProducerID >= 0 && h.BaseOffset >= from && !h.Transactional() && !h.Control() {
				l.producers.apply(&h, now)
			}
			pos += int64(h.Size())
		}
	}
	return nil
}
