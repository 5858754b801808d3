package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// is32bit is true on 32-bit platforms (armv6/armv7), where indexes use pread/pwrite instead of
// mmap so that many partitions don't exhaust the small address space.
const is32bit = ^uint(0)>>32 == 0

const (
	offsetEntrySize = 8  // relative offset uint32, file position uint32
	timeEntrySize   = 12 // timestamp int64, relative offset uint32
)

// indexFile is a preallocated file of fixed-size entries, mmapped (64-bit) or read with pread
// (32-bit). One writer appends under the Log's lock; readers read entries below len()
// concurrently: an entry's bytes are written before the count that publishes it.
type indexFile struct {
	f         *os.File
	path      string
	entrySize int
	capacity  int // entries the file has room for
	n         atomic.Int64
	mm        []byte // nil in pread mode
}

// openIndexFile opens or creates an index. existing entries are the file's whole entries
// (callers reset() when they rebuild). A writable index is grown to capacity entries, with
// real blocks (see preallocate).
//
// When the filesystem has no room to grow it (ENOSPC, or EDQUOT under a quota), the index keeps its entries and takes
// no more: it is full, so lookups past its end scan the log, and a warning says so. It is not
// an error, because the open that hits it is most often the restart of an agent on a full
// disk, which must come up to serve reads and let retention free space; a segment roll on a
// full disk then gets an unindexed segment whose first write fails with ENOSPC anyway. The
// next start after space returns re-indexes the segment (its index no longer covers it).
func openIndexFile(path string, entrySize, capacity int, writable, usePread bool) (*indexFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat index %s: %w", path, err)
	}
	if st.Size() > math.MaxInt32 {
		f.Close()
		return nil, fmt.Errorf("open index %s: %d bytes is not an index (max %d)", path, st.Size(), math.MaxInt32)
	}
	x := &indexFile{f: f, path: path, entrySize: entrySize}
	existing := int(st.Size()) / entrySize
	x.n.Store(int64(existing))
	size := existing * entrySize
	if writable {
		if capacity < existing {
			capacity = existing
		}
		want := capacity * entrySize
		err := preallocate(f, int64(want), st.Size())
		switch {
		case err == nil:
			size = want
		case errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT):
			slog.Warn("no space to grow an index: it keeps its entries and takes no more; lookups past them scan the log",
				"file", path, "entries", existing, "want_bytes", want, "err", err)
		default:
			f.Close()
			return nil, fmt.Errorf("preallocate index %s to %d bytes: %w", path, want, err)
		}
	}
	x.capacity = size / entrySize
	if !usePread && size > 0 {
		mm, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("mmap index %s: %w", path, err)
		}
		x.mm = mm
	}
	return x, nil
}

// preallocate grows f from cur to size bytes with real blocks (fallocate), so that storing an
// entry through the mapping never lands in a hole the filesystem has no room for: on a full
// disk that store would raise SIGBUS and kill the process instead of returning an error. A
// filesystem without fallocate gets a sparse file (Truncate), as before. On failure (ENOSPC)
// the file is cut back to cur, so no zeroed tail passes for entries at the next open.
func preallocate(f *os.File, size, cur int64) error {
	if size < cur { // a partial entry at the end
		return f.Truncate(size)
	}
	err := fallocate(f, size)
	if errors.Is(err, errors.ErrUnsupported) {
		return f.Truncate(size)
	}
	if err != nil {
		if terr := f.Truncate(cur); terr != nil {
			return errors.Join(err, fmt.Errorf("cut back to %d bytes: %w", cur, terr))
		}
		return err
	}
	return nil
}

func (x *indexFile) len() int { return int(x.n.Load()) }

// reset forgets all entries (used when rebuilding from the log).
func (x *indexFile) reset() { x.n.Store(0) }

// append adds an entry; it reports false when the index is full (the index is sparse, so a
// full index only makes lookups scan further).
func (x *indexFile) append(entry []byte) (bool, error) {
	i := x.len()
	if i >= x.capacity {
		return false, nil
	}
	off := i * x.entrySize
	if x.mm != nil {
		copy(x.mm[off:off+x.entrySize], entry)
	} else if _, err := x.f.WriteAt(entry, int64(off)); err != nil {
		return false, fmt.Errorf("write index %s: %w", x.path, err)
	}
	x.n.Store(int64(i + 1))
	return true, nil
}

// entry reads entry i into buf (len entrySize) and returns it.
func (x *indexFile) entry(i int, buf []byte) ([]byte, error) {
	off := i * x.entrySize
	if x.mm != nil {
		return x.mm[off : off+x.entrySize], nil
	}
	if _, err := x.f.ReadAt(buf[:x.entrySize], int64(off)); err != nil {
		return nil, fmt.Errorf("read index %s entry %d: %w", x.path, i, err)
	}
	return buf[:x.entrySize], nil
}

// trim shrinks the file to its entries (on seal and clean close). The mapping stays valid for
// the entries below len().
func (x *indexFile) trim() error {
	size := int64(x.len() * x.entrySize)
	if err := x.f.Truncate(size); err != nil {
		return fmt.Errorf("trim index %s: %w", x.path, err)
	}
	x.capacity = x.len()
	return nil
}

func (x *indexFile) close() error {
	var err error
	if x.mm != nil {
		err = unix.Munmap(x.mm)
		x.mm = nil
	}
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// search returns the largest i with key(i) <= target, or -1. key must be non-decreasing.
func (x *indexFile) search(target int64, key func(e []byte) int64) (int, error) {
	var buf [timeEntrySize]byte
	lo, hi := 0, x.len()-1
	found := -1
	for lo <= hi {
		mid := int(uint(lo+hi) >> 1)
		e, err := x.entry(mid, buf[:])
		if err != nil {
			return -1, err
		}
		if key(e) <= target {
			found, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	return found, nil
}

// offsetIndex maps offsets (relative to the segment base) to file positions.
type offsetIndex struct{ *indexFile }

func offsetKey(e []byte) int64 { return int64(binary.BigEndian.Uint32(e[0:4])) }

func (x offsetIndex) add(rel uint32, pos uint32) error {
	var e [offsetEntrySize]byte
	binary.BigEndian.PutUint32(e[0:4], rel)
	binary.BigEndian.PutUint32(e[4:8], pos)
	_, err := x.append(e[:])
	return err
}

// lookup returns the position of the last indexed batch whose relative offset is <= rel (0 if none).
func (x offsetIndex) lookup(rel int64) (pos int64, err error) {
	i, err := x.search(rel, offsetKey)
	if err != nil || i < 0 {
		return 0, err
	}
	var buf [offsetEntrySize]byte
	e, err := x.entry(i, buf[:])
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint32(e[4:8])), nil
}

// lookupPos returns the position of the last indexed batch starting at or before pos.
func (x offsetIndex) lookupPos(pos int64) (int64, error) {
	i, err := x.search(pos, func(e []byte) int64 { return int64(binary.BigEndian.Uint32(e[4:8])) })
	if err != nil || i < 0 {
		return 0, err
	}
	var buf [offsetEntrySize]byte
	e, err := x.entry(i, buf[:])
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint32(e[4:8])), nil
}

// last returns the last entry, ok=false if empty.
func (x offsetIndex) last() (rel uint32, pos uint32, ok bool, err error) {
	n := x.len()
	if n == 0 {
		return 0, 0, false, nil
	}
	var buf [offsetEntrySize]byte
	e, err := x.entry(n-1, buf[:])
	if err != nil {
		return 0, 0, false, err
	}
	return binary.BigEndian.Uint32(e[0:4]), binary.BigEndian.Uint32(e[4:8]), true, nil
}

// timeIndex maps a running maximum timestamp to the relative offset of the batch at which it
// was reached: entry (T, O) says every batch up to and including O has timestamps <= T.
type timeIndex struct{ *indexFile }

func timeKey(e []byte) int64 { return int64(binary.BigEndian.Uint64(e[0:8])) }

func (x timeIndex) add(ts int64, rel uint32) error {
	var e [timeEntrySize]byte
	binary.BigEndian.PutUint64(e[0:8], uint64(ts))
	binary.BigEndian.PutUint32(e[8:12], rel)
	_, err := x.append(e[:])
	return err
}

// lookupBefore returns the relative offset of the last entry whose timestamp is < ts: scanning
// for the first record at or after ts may start there. ok=false: start at the segment start.
func (x timeIndex) lookupBefore(ts int64) (rel int64, ok bool, err error) {
	i, err := x.search(ts-1, timeKey)
	if err != nil || i < 0 {
		return 0, false, err
	}
	var buf [timeEntrySize]byte
	e, err := x.entry(i, buf[:])
	if err != nil {
		return 0, false, err
	}
	return int64(binary.BigEndian.Uint32(e[8:12])), true, nil
}

// last returns the last entry.
func (x timeIndex) last() (ts int64, rel uint32, ok bool, err error) {
	n := x.len()
	if n == 0 {
		return 0, 0, false, nil
	}
	var buf [timeEntrySize]byte
	e, err := x.entry(n-1, buf[:])
	if err != nil {
		return 0, 0, false, err
	}
	return int64(binary.BigEndian.Uint64(e[0:8])), binary.BigEndian.Uint32(e[8:12]), true, nil
}
