//go:build linux

package commitlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIndexPreallocatedNotSparse: a writable index gets real blocks, so stores through its
// mapping cannot fault on a full disk.
func TestIndexPreallocatedNotSparse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.index")
	const capacity = 4096 // 32 KiB
	x, err := openIndexFile(path, offsetEntrySize, capacity, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != capacity*offsetEntrySize {
		t.Fatalf("index is %d bytes, want %d", st.Size, capacity*offsetEntrySize)
	}
	if allocated := st.Blocks * 512; allocated < st.Size {
		if err := fallocate(x.f, st.Size); errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("filesystem of %s cannot preallocate", path)
		}
		t.Fatalf("index of %d bytes has %d bytes of blocks: sparse", st.Size, allocated)
	}
}

// TestIndexPreallocateNoSpace: on a full filesystem a writable index cannot grow. It opens
// anyway, keeping the entries it has and taking no more (lookups past them scan the log), and
// leaves no unallocated tail behind; once there is room it grows again.
func TestIndexPreallocateNoSpace(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(1<<20)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs on %s: %v (CI runs the tests as root)", dir, err)
		}
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	const capacity = (256 << 10) / offsetEntrySize // more than is free
	path := filepath.Join(dir, "x.index")
	x, err := openIndexFile(path, offsetEntrySize, 2, true, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := (offsetIndex{x}).add(uint32(i+1), uint32(100*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	x.close()
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{1}, 1<<20-64<<10), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		entries int
	}{{"existing index", 2}, {"new index", 0}} {
		p := path
		if tc.entries == 0 {
			p = filepath.Join(dir, "new.index")
		}
		x, err := openIndexFile(p, offsetEntrySize, capacity, true, false)
		if err != nil {
			t.Fatalf("%s on a full disk: %v, want it open and full", tc.name, err)
		}
		if x.len() != tc.entries || x.capacity != tc.entries {
			t.Fatalf("%s on a full disk: %d entries, room for %d; want %d and no more", tc.name, x.len(), x.capacity, tc.entries)
		}
		if ok, err := x.append(make([]byte, offsetEntrySize)); ok || err != nil {
			t.Fatalf("%s on a full disk took an entry: %v %v", tc.name, ok, err)
		}
		if tc.entries > 0 {
			if pos, err := (offsetIndex{x}).lookup(5); err != nil || pos != 200 {
				t.Fatalf("lookup in the kept entries: %d, %v", pos, err)
			}
		}
		x.close()
		if st, err := os.Stat(p); err != nil || st.Size() != int64(tc.entries*offsetEntrySize) {
			t.Fatalf("%s left at %v bytes (%v), want %d", tc.name, st.Size(), err, tc.entries*offsetEntrySize)
		}
	}

	// With room again the index grows to its capacity.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	x, err = openIndexFile(path, offsetEntrySize, capacity, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	if x.len() != 2 || x.capacity != capacity {
		t.Fatalf("reopened with room: %d entries, room for %d; want 2 and %d", x.len(), x.capacity, capacity)
	}
	if err := (offsetIndex{x}).add(3, 300); err != nil {
		t.Fatal(err)
	}
}
