// Package storetest is the conformance suite every tiering.ObjectStore passes: the
// filesystem store in tiering/fsstore_test.go and the S3 store against a real MinIO server in
// tiering/minio_test.go. A behaviour the tiering code relies on belongs here, so that both
// stores are held to it.
//
// Semantics the suite pins down, beyond the interface's doc comments:
//   - Get(key, off, n): n < 0 reads to the end; a range reaching past the end is cut at the
//     end; off == size is an empty body (also for a zero-byte object), not an error;
//     off > size or off < 0 is ErrInvalidRange; a missing key is ErrNotFound whatever the
//     range.
//   - Put reads exactly size bytes and no further; a reader that ends early or fails, or a
//     context that ends, stores nothing and leaves an older object under the key as it was.
//     A reader that is an io.ReaderAt and io.Seeker is read from its current offset.
//   - List is sorted bytewise by key ("a/b-c" before "a/b/c") and the prefix need not end at
//     a slash.
//   - Delete of a missing key is not an error.
//   - A context that has ended fails every call with an error wrapping ctx.Err(); a Get body
//     read after its context ended fails.
//   - Keys with empty, "." or ".." segments, a leading or trailing slash, more than 1024
//     bytes or a segment of more than 255 are tiering.ErrInvalidKey on every call.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/tiering"
)

// Run runs the conformance suite. newStore must return an empty store, a new one on every
// call; the subtests run in parallel, so it must be safe to call concurrently.
func Run(t *testing.T, newStore func(t *testing.T) tiering.ObjectStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tiering.ObjectStore)
	}{
		{"PutGetWhole", testPutGetWhole},
		{"RangedGet", testRangedGet},
		{"ZeroByteObject", testZeroByte},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"List", testList},
		{"Delete", testDelete},
		{"CancelledContext", testCancelledContext},
		{"ReadAfterCancel", testReadAfterCancel},
		{"FailingReader", testFailingReader},
		{"ShortReader", testShortReader},
		{"LongReader", testLongReader},
		{"SeekedReaderAt", testSeekedReaderAt},
		{"KeyCharacters", testKeyCharacters},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// pattern returns n bytes that differ at every offset modulo 251, seeded so that two
// patterns with different seeds differ.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

func put(t *testing.T, s tiering.ObjectStore, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put %s (%d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s tiering.ObjectStore, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Get %s [%d, n=%d]: %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %s [%d, n=%d]: read: %v", key, off, n, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Get %s [%d, n=%d]: close: %v", key, off, n, err)
	}
	return b
}

// getErr expects Get to fail with target.
func getErr(t *testing.T, s tiering.ObjectStore, key string, off, n int64, target error) {
	t.Helper()
	rc, err := s.Get(t.Context(), key, off, n)
	if err == nil {
		b, rerr := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("Get %s [%d, n=%d] = %d bytes (read error %v), want %v", key, off, n, len(b), rerr, target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("Get %s [%d, n=%d]: %v, want %v", key, off, n, err, target)
	}
}

func list(t *testing.T, s tiering.ObjectStore, prefix string) []tiering.ObjectInfo {
	t.Helper()
	infos, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return infos
}

func keys(infos []tiering.ObjectInfo) []string {
	out := []string{}
	for _, o := range infos {
		out = append(out, o.Key)
	}
	return out
}

// wantKeys checks that List(prefix) returns exactly want, in this order.
func wantKeys(t *testing.T, s tiering.ObjectStore, prefix string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := keys(list(t, s, prefix)); !slices.Equal(got, want) {
		t.Fatalf("List %q = %q, want %q", prefix, got, want)
	}
}

func testPutGetWhole(t *testing.T, s tiering.ObjectStore) {
	data := pattern(100_000, 1)
	put(t, s, "topic/0/00000000000000000000-0.log", data)
	if got := get(t, s, "topic/0/00000000000000000000-0.log", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get whole: %d bytes, want the %d put", len(got), len(data))
	}
	infos := list(t, s, "")
	if len(infos) != 1 || infos[0].Key != "topic/0/00000000000000000000-0.log" || infos[0].Size != int64(len(data)) {
		t.Fatalf("List = %+v, want the one object of %d bytes", infos, len(data))
	}
	if infos[0].ModTime.IsZero() {
		t.Fatalf("List: zero ModTime")
	}
}

func testRangedGet(t *testing.T, s tiering.ObjectStore) {
	const size = 1000
	data := pattern(size, 2)
	put(t, s, "r", data)
	for _, c := range []struct{ off, n, from, to int64 }{
		{0, 10, 0, 10},          // start
		{0, -1, 0, size},        // whole
		{0, size, 0, size},      // exactly whole
		{500, 100, 500, 600},    // middle
		{990, -1, 990, size},    // to the end
		{990, 100, 990, size},   // past the end: cut at the end
		{0, 5000, 0, size},      // longer than the object
		{999, 1, 999, size},     // last byte
		{size, -1, size, size},  // at the end: empty
		{size, 10, size, size},  // at the end: empty
		{500, 0, 500, 500},      // n == 0: empty
		{size, 0, size, size},   // n == 0 at the end: empty
		{1, 1<<62 + 7, 1, size}, // huge n
		{123, size - 123, 123, size},
	} {
		got := get(t, s, "r", c.off, c.n)
		if want := data[c.from:c.to]; !bytes.Equal(got, want) {
			t.Fatalf("Get [%d, n=%d] = %d bytes, want bytes [%d, %d)", c.off, c.n, len(got), c.from, c.to)
		}
	}
	for _, c := range []struct{ off, n int64 }{{size + 1, -1}, {size + 1, 1}, {5000, 10}, {size + 1, 0}, {-1, 10}, {-1, -1}} {
		getErr(t, s, "r", c.off, c.n, tiering.ErrInvalidRange)
	}
}

func testZeroByte(t *testing.T, s tiering.ObjectStore) {
	put(t, s, "empty/obj", nil)
	for _, n := range []int64{-1, 0, 10} {
		if got := get(t, s, "empty/obj", 0, n); len(got) != 0 {
			t.Fatalf("Get [0, n=%d] of a zero-byte object = %d bytes", n, len(got))
		}
	}
	getErr(t, s, "empty/obj", 1, -1, tiering.ErrInvalidRange)
	getErr(t, s, "empty/obj", 1, 1, tiering.ErrInvalidRange)
	infos := list(t, s, "empty/")
	if len(infos) != 1 || infos[0].Size != 0 {
		t.Fatalf("List = %+v, want one zero-byte object", infos)
	}
}

func testOverwrite(t *testing.T, s tiering.ObjectStore) {
	long, short := pattern(5000, 3), pattern(300, 4)
	put(t, s, "a/manifest.json", long)
	put(t, s, "a/manifest.json", short)
	if got := get(t, s, "a/manifest.json", 0, -1); !bytes.Equal(got, short) {
		t.Fatalf("after overwrite: %d bytes, want the %d of the second put", len(got), len(short))
	}
	getErr(t, s, "a/manifest.json", 301, -1, tiering.ErrInvalidRange)
	infos := list(t, s, "a/")
	if len(infos) != 1 || infos[0].Size != int64(len(short)) {
		t.Fatalf("List after overwrite = %+v, want one object of %d bytes", infos, len(short))
	}
}

func testMissing(t *testing.T, s tiering.ObjectStore) {
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {10, 5}, {1 << 40, -1}} {
		getErr(t, s, "no/such/key", r[0], r[1], tiering.ErrNotFound)
	}
	put(t, s, "dir/obj", []byte("x"))
	// A prefix of an object's key is not an object.
	getErr(t, s, "dir", 0, -1, tiering.ErrNotFound)
	getErr(t, s, "di", 0, -1, tiering.ErrNotFound)
	// Below an object is nothing either.
	getErr(t, s, "dir/obj/below", 0, -1, tiering.ErrNotFound)
	wantKeys(t, s, "no/")
	wantKeys(t, s, "dir/obj/")
}

func testList(t *testing.T, s tiering.ObjectStore) {
	objs := map[string]int{
		"t/0/00000000000000000000-0.log":       10,
		"t/0/00000000000000000000-0.index":     2,
		"t/0/00000000000000000000-0.timeindex": 3,
		"t/0/00000000000000001000-1.log":       11,
		"t/0/manifest.json":                    4,
		"t/1/00000000000000000000-0.log":       12,
		"t/0a":                                 1,
		"t-x/a":                                5,
		"t.y":                                  6,
		"u/v/w/x/y/z":                          7,
	}
	for k, n := range objs {
		put(t, s, k, pattern(n, byte(n)))
	}
	all := []string{
		"t-x/a",
		"t.y",
		"t/0/00000000000000000000-0.index",
		"t/0/00000000000000000000-0.log",
		"t/0/00000000000000000000-0.timeindex",
		"t/0/00000000000000001000-1.log",
		"t/0/manifest.json",
		"t/0a",
		"t/1/00000000000000000000-0.log",
		"u/v/w/x/y/z",
	}
	infos := list(t, s, "")
	if got := keys(infos); !slices.Equal(got, all) {
		t.Fatalf("List \"\" = %q, want %q", got, all)
	}
	for _, o := range infos {
		if o.Size != int64(objs[o.Key]) {
			t.Fatalf("List: %s has size %d, want %d", o.Key, o.Size, objs[o.Key])
		}
	}
	for _, prefix := range []string{"t", "t/", "t/0", "t/0/", "t/0/0000", "t/0/00000000000000000000-0.", "t/0/m", "t/1/", "t-", "u/", "u/v/w/", "u/v/w/x/y/z", "v", "t/2/", "t/0/00000000000000000000-0.log/"} {
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		wantKeys(t, s, prefix, want...)
	}
}

func testDelete(t *testing.T, s tiering.ObjectStore) {
	put(t, s, "d/1/a", []byte("a"))
	put(t, s, "d/1/b", []byte("b"))
	put(t, s, "d/2/c", []byte("c"))
	if err := s.Delete(t.Context(), "d/1/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	getErr(t, s, "d/1/a", 0, -1, tiering.ErrNotFound)
	wantKeys(t, s, "", "d/1/b", "d/2/c")
	if err := s.Delete(t.Context(), "d/1/a"); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if err := s.Delete(t.Context(), "never/was"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	// A prefix of keys is not an object: deleting it deletes nothing.
	if err := s.Delete(t.Context(), "d/2"); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	wantKeys(t, s, "", "d/1/b", "d/2/c")
	for _, k := range []string{"d/1/b", "d/2/c"} {
		if err := s.Delete(t.Context(), k); err != nil {
			t.Fatalf("Delete %s: %v", k, err)
		}
	}
	wantKeys(t, s, "")
	// The key can be used again, also as a prefix.
	put(t, s, "d/1/a", []byte("again"))
	put(t, s, "d/2", []byte("now an object"))
	wantKeys(t, s, "d/", "d/1/a", "d/2")
}

func testCancelledContext(t *testing.T, s tiering.ObjectStore) {
	put(t, s, "c/existing", []byte("old"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a cancelled context: %v, want context.Canceled", op, err)
		}
	}
	check("Put", s.Put(ctx, "c/new", strings.NewReader("new"), 3))
	check("Put over", s.Put(ctx, "c/existing", strings.NewReader("new"), 3))
	rc, err := s.Get(ctx, "c/existing", 0, -1)
	if err == nil {
		rc.Close()
	}
	check("Get", err)
	_, err = s.List(ctx, "c/")
	check("List", err)
	check("Delete", s.Delete(ctx, "c/existing"))
	wantKeys(t, s, "", "c/existing")
	if got := get(t, s, "c/existing", 0, -1); string(got) != "old" {
		t.Fatalf("after cancelled calls: %q, want %q", got, "old")
	}
}

// testReadAfterCancel cancels the context of a Get after its first bytes: the rest of the
// body fails instead of arriving.
func testReadAfterCancel(t *testing.T, s tiering.ObjectStore) {
	const size = 8 << 20
	src := newGenerator(size)
	if err := s.Put(t.Context(), "big", src.reader(), size); err != nil {
		t.Fatalf("Put: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rc, err := s.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1)); err != nil {
		t.Fatalf("read first byte: %v", err)
	}
	cancel()
	n, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Fatalf("read %d more bytes after cancel without an error", n)
	}
}

var errBoom = errors.New("boom: the reader broke")

// failingReader returns n bytes of data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testFailingReader(t *testing.T, s tiering.ObjectStore) {
	old := pattern(1000, 5)
	put(t, s, "f/existing", old)
	const size = 1 << 20
	for _, key := range []string{"f/new", "f/existing"} {
		r := &failingReader{data: pattern(size/2, 6), err: errBoom}
		if err := s.Put(t.Context(), key, r, size); err == nil {
			t.Fatalf("Put %s from a reader that fails halfway: no error", key)
		}
	}
	// The context ends while Put reads.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := io.MultiReader(bytes.NewReader(pattern(size/2, 7)), readFunc(func(p []byte) (int, error) {
		cancel()
		return copy(p, pattern(len(p), 8)), nil
	}))
	if err := s.Put(ctx, "f/cancelled", r, size); err == nil {
		t.Fatalf("Put whose context ends halfway: no error")
	}
	// A reader that fails after more than a multipart part (16 MiB on S3): the parts
	// already uploaded make no object.
	const big = 20 << 20
	failLate := &failingReader{err: errBoom}
	late := io.MultiReader(io.LimitReader(newGenerator(big).reader(), 17<<20), failLate)
	if err := s.Put(t.Context(), "f/late", late, big); err == nil {
		t.Fatalf("Put from a reader that fails after 17 MiB: no error")
	}
	getErr(t, s, "f/new", 0, -1, tiering.ErrNotFound)
	getErr(t, s, "f/cancelled", 0, -1, tiering.ErrNotFound)
	getErr(t, s, "f/late", 0, -1, tiering.ErrNotFound)
	if got := get(t, s, "f/existing", 0, -1); !bytes.Equal(got, old) {
		t.Fatalf("a failed Put changed the existing object: %d bytes", len(got))
	}
	wantKeys(t, s, "", "f/existing")
}

type readFunc func(p []byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func testShortReader(t *testing.T, s tiering.ObjectStore) {
	old := pattern(100, 9)
	put(t, s, "s/existing", old)
	data := pattern(500, 10)
	readers := map[string]func() io.Reader{
		"plain reader":      func() io.Reader { return struct{ io.Reader }{bytes.NewReader(data)} },
		"io.ReaderAt":       func() io.Reader { return bytes.NewReader(data) },
		"empty plain":       func() io.Reader { return struct{ io.Reader }{strings.NewReader("")} },
		"empty io.ReaderAt": func() io.Reader { return strings.NewReader("") },
	}
	for name, r := range readers {
		for _, key := range []string{"s/new", "s/existing"} {
			if err := s.Put(t.Context(), key, r(), 1000); err == nil {
				t.Fatalf("Put %s of 1000 bytes from a %s of %d: no error", key, name, len(data))
			}
		}
	}
	if err := s.Put(t.Context(), "s/new", bytes.NewReader(data), -1); err == nil {
		t.Fatalf("Put with size -1: no error")
	}
	getErr(t, s, "s/new", 0, -1, tiering.ErrNotFound)
	if got := get(t, s, "s/existing", 0, -1); !bytes.Equal(got, old) {
		t.Fatalf("a short Put changed the existing object: %d bytes", len(got))
	}
	wantKeys(t, s, "", "s/existing")
}

// testLongReader: Put reads size bytes and stops, also from a reader with more.
func testLongReader(t *testing.T, s tiering.ObjectStore) {
	data := pattern(2000, 11)
	put := func(key string, r io.Reader) {
		t.Helper()
		if err := s.Put(t.Context(), key, r, 1000); err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
		if got := get(t, s, key, 0, -1); !bytes.Equal(got, data[:1000]) {
			t.Fatalf("Put %s of 1000 bytes from a longer reader stored %d bytes", key, len(got))
		}
	}
	plain := struct{ io.Reader }{bytes.NewReader(data)}
	put("l/plain", plain)
	put("l/readerat", bytes.NewReader(data))
	// The plain reader was read no further than 1000 bytes.
	rest, _ := io.ReadAll(plain)
	if !bytes.Equal(rest, data[1000:]) {
		t.Fatalf("Put read %d bytes past size from a plain reader", 1000-len(rest))
	}
}

// testSeekedReaderAt: a reader that is an io.ReaderAt and io.Seeker is read from its current
// offset, like any reader.
func testSeekedReaderAt(t *testing.T, s tiering.ObjectStore) {
	data := pattern(3000, 12)
	r := bytes.NewReader(data)
	if _, err := r.Seek(1000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", r, 1500); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := get(t, s, "k", 0, -1); !bytes.Equal(got, data[1000:2500]) {
		t.Fatalf("Put from a seeked reader stored %d bytes, not bytes [1000, 2500)", len(got))
	}
}

func testKeyCharacters(t *testing.T, s tiering.ObjectStore) {
	ks := []string{
		"site-a/gw_1/topic.name-2/7/00000000000000000042-3.log",
		"site-a/gw_1/topic.name-2/7/00000000000000000042-3.timeindex",
		"site-a/gw_1/topic.name-2/7/manifest.json",
		"a-b_c.d/0123456789",
		"UPPER/lower/MiXeD",
		"x/.hidden",
		"x/...three",
		"x/trailing.",
		"x/~tilde+plus=eq",
	}
	for i, k := range ks {
		put(t, s, k, pattern(10+i, byte(i)))
	}
	for i, k := range ks {
		if got := get(t, s, k, 0, -1); !bytes.Equal(got, pattern(10+i, byte(i))) {
			t.Fatalf("Get %s: %d bytes, want %d", k, len(got), 10+i)
		}
	}
	sorted := slices.Clone(ks)
	slices.Sort(sorted)
	wantKeys(t, s, "", sorted...)
	wantKeys(t, s, "site-a/gw_1/topic.name-2/7/", ks[:3]...)
	wantKeys(t, s, "x/.", "x/...three", "x/.hidden")
	wantKeys(t, s, "x/..", "x/...three")
}

func testInvalidKeys(t *testing.T, s tiering.ObjectStore) {
	put(t, s, "a/b", []byte("x"))
	for _, k := range []string{"", "/abs", "/", "a//b", "a/../b", "..", "../a", "a/..", ".", "./a", "a/./b", "a/", "a/b/", "bad\x00nul", "bad\xffutf8", `back\slash`, "a/ ../b", "a/. ", longKey(1025), "a/" + strings.Repeat("s", 256)} {
		if err := s.Put(t.Context(), k, strings.NewReader("x"), 1); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Fatalf("Put %q: %v, want ErrInvalidKey", k, err)
		}
		if rc, err := s.Get(t.Context(), k, 0, -1); !errors.Is(err, tiering.ErrInvalidKey) {
			if err == nil {
				rc.Close()
			}
			t.Fatalf("Get %q: %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(t.Context(), k); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Fatalf("Delete %q: %v, want ErrInvalidKey", k, err)
		}
	}
	for _, p := range []string{"/abs", "/", "a//", "../", "a/../", "./", "a/./b", "a//b", "../x", `a\`} {
		if _, err := s.List(t.Context(), p); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Fatalf("List %q: %v, want ErrInvalidKey", p, err)
		}
	}
	// A key of exactly 1024 bytes with segments of up to 255 bytes is fine.
	long := longKey(1024)
	put(t, s, long, []byte("long"))
	wantKeys(t, s, "", "a/b", long)
}

// longKey returns a key of n bytes made of segments of 200 bytes.
func longKey(n int) string {
	seg := strings.Repeat("k", 200) + "/"
	k := strings.Repeat(seg, n/len(seg))
	return k + strings.Repeat("z", n-len(k))
}

// testConcurrentOverwrite: readers racing with writers of one key see one whole version,
// never a mix or a partial object.
func testConcurrentOverwrite(t *testing.T, s tiering.ObjectStore) {
	const writers, puts, size = 4, 5, 256 << 10
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = pattern(size+i, byte(100+i))
	}
	put(t, s, "hot", versions[0])
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range puts {
				if err := s.Put(t.Context(), "hot", bytes.NewReader(versions[w]), int64(len(versions[w]))); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for r := range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads > 0 {
						return
					}
				default:
				}
				rc, err := s.Get(t.Context(), "hot", 0, -1)
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, b) }) {
					errs <- fmt.Errorf("reader %d: got %d bytes that are no version put", r, len(b))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantKeys(t, s, "", "hot")
}

// testLarge streams objects larger than a multipart part from a generator, from both kinds
// of reader the S3 store distinguishes, and checks them by hash and by ranged reads across
// part boundaries. No copy of the object is held in memory.
func testLarge(t *testing.T, s tiering.ObjectStore) {
	const size = 20<<20 + 12345
	g := newGenerator(size)
	want := g.sum(t)
	sources := map[string]io.Reader{
		"large/plain":    g.reader(),
		"large/readerat": io.NewSectionReader(g, 0, size),
	}
	for key, r := range sources {
		if err := s.Put(t.Context(), key, r, size); err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
	}
	for key := range sources {
		rc, err := s.Get(t.Context(), key, 0, -1)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || n != size {
			t.Fatalf("Get %s: read %d of %d bytes: %v", key, n, size, err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("Get %s: content differs from what was put", key)
		}
		for _, r := range [][2]int64{{0, 100}, {5<<20 - 10, 20}, {16<<20 - 1000, 2000}, {16 << 20, 1 << 20}, {size - 10, -1}, {size - 10, 100}} {
			got := get(t, s, key, r[0], r[1])
			end := int64(size)
			if r[1] >= 0 && r[0]+r[1] < size {
				end = r[0] + r[1]
			}
			want := make([]byte, end-r[0])
			g.ReadAt(want, r[0])
			if !bytes.Equal(got, want) {
				t.Fatalf("Get %s [%d, n=%d]: content differs", key, r[0], r[1])
			}
		}
	}
	infos := list(t, s, "large/")
	if len(infos) != 2 || infos[0].Size != size || infos[1].Size != size {
		t.Fatalf("List = %+v, want two objects of %d bytes", infos, size)
	}
}

// generator is a deterministic pseudo-random byte stream of a given size, readable at any
// offset without being held in memory.
type generator struct{ size int64 }

func newGenerator(size int64) *generator { return &generator{size: size} }

// ReadAt fills p with the stream's bytes from off.
func (g *generator) ReadAt(p []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	n := len(p)
	if rem := g.size - off; int64(n) > rem {
		n = int(rem)
	}
	for i := 0; i < n; {
		pos := off + int64(i)
		word := splitmix(uint64(pos >> 3))
		for b := pos & 7; b < 8 && i < n; b++ {
			p[i] = byte(word >> (8 * b))
			i++
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns the stream as a plain io.Reader (no ReaderAt, no Seeker).
func (g *generator) reader() io.Reader {
	return struct{ io.Reader }{io.NewSectionReader(g, 0, g.size)}
}

func (g *generator) sum(t *testing.T) []byte {
	h := sha256.New()
	if _, err := io.Copy(h, g.reader()); err != nil {
		t.Fatalf("generator: %v", err)
	}
	return h.Sum(nil)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
