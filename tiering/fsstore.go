package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/samsa-io/samsa/internal/atomicfile"
)

// ErrInvalidKey reports a key or prefix that no ObjectStore accepts (see validateKey).
var ErrInvalidKey = errors.New("invalid object key")

// maxKeyLen is S3's limit on the length of an object key, and maxSegmentLen the limit of
// MinIO and of most filesystems on one segment (file name) of it, in bytes.
const (
	maxKeyLen     = 1024
	maxSegmentLen = 255
)

// fsTempPrefix starts the names of the temporary files FSStore.Put writes next to their
// target. Key segments may not start with it, and List never reports such files.
const fsTempPrefix = ".samsa-put-"

// validateKey checks that key is a slash-separated relative path that maps to the same object
// on every store: not empty, at most 1024 bytes of valid UTF-8, no leading or trailing slash,
// no empty, "." or ".." segments (also with spaces around them), no segment longer than 255
// bytes, no NUL byte or backslash, and no segment starting with the reserved temporary-file
// prefix. These are the rules of MinIO on a filesystem, plus the prefix.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("key is empty: %w", ErrInvalidKey)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("key %q ends with a slash: %w", key, ErrInvalidKey)
	}
	return checkPath(key, false)
}

// validatePrefix checks a List prefix: empty, or the start of a valid key. It may end with a
// slash or inside a segment ("a/." lists "a/.hidden").
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(prefix, !strings.HasSuffix(prefix, "/"))
}

// checkPath checks the segments of a key or prefix; with partialLast the last segment may be
// the start of a segment.
func checkPath(key string, partialLast bool) error {
	switch {
	case len(key) > maxKeyLen:
		return fmt.Errorf("key %.40q... is %d bytes, longer than %d: %w", key, len(key), maxKeyLen, ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8: %w", key, ErrInvalidKey)
	case strings.ContainsRune(key, 0):
		return fmt.Errorf("key %q contains a NUL byte: %w", key, ErrInvalidKey)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("key %q contains a backslash (MinIO splits keys at it): %w", key, ErrInvalidKey)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("key %q is an absolute path: %w", key, ErrInvalidKey)
	}
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	if partialLast {
		segs = segs[:len(segs)-1]
	}
	for _, seg := range segs {
		switch {
		case seg == "":
			return fmt.Errorf("key %q has an empty segment: %w", key, ErrInvalidKey)
		case isDots(seg):
			return fmt.Errorf("key %q has a %q segment: %w", key, seg, ErrInvalidKey)
		case len(seg) > maxSegmentLen:
			return fmt.Errorf("key %.40q... has a segment of %d bytes, longer than %d: %w", key, len(seg), maxSegmentLen, ErrInvalidKey)
		case strings.HasPrefix(seg, fsTempPrefix):
			return fmt.Errorf("key %q has a segment starting with the reserved %q: %w", key, fsTempPrefix, ErrInvalidKey)
		}
	}
	return nil
}

// isDots reports whether a key segment is "." or "..", also with spaces around it (which
// MinIO ignores).
func isDots(seg string) bool {
	seg = strings.TrimSpace(seg)
	return seg == "." || seg == ".."
}

// FSStore is an ObjectStore in a directory of the local filesystem: the object "a/b/c" is the
// file <root>/a/b/c. It is safe for concurrent use.
//
// Put writes a temporary file next to the target, fsyncs it, renames it over the target and
// fsyncs the directory, so an object appears whole or not at all, also across a crash. A Get
// reads from the file it opened, so a concurrent overwrite does not change what it returns.
// Delete removes directories that it leaves empty.
//
// Unlike S3, a directory cannot also be an object: while "a/b" exists, a Put of "a" fails, and
// while "a" exists, a Put of "a/b" fails. The tiering layout never does either.
type FSStore struct {
	root string
}

var _ ObjectStore = (*FSStore)(nil)

// NewFSStore returns a store rooted at dir, creating the directory if needed.
func NewFSStore(dir string) (*FSStore, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tiering: fs store %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("tiering: fs store: %w", err)
	}
	return &FSStore{root: root}, nil
}

// Root returns the absolute directory the store keeps its objects in.
func (s *FSStore) Root() string { return s.root }

// ID names the store: its root directory.
func (s *FSStore) ID() string { return "file://" + s.root }

func (s *FSStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores exactly size bytes read from r under key. It reads no further than size; if r
// ends early or fails, or ctx ends, nothing is stored and an object already under key stays.
func (s *FSStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("tiering: fs put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("tiering: fs put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	path := s.path(key)
	tmp, err := s.createTemp(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	n, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx: ctx, r: r}, size))
	if err != nil {
		return fail(fmt.Errorf("after %d of %d bytes: %w", n, size, err))
	}
	if n < size {
		return fail(fmt.Errorf("reader ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("tiering: fs put %s: %w", key, err)
	}
	return nil
}

// createTemp creates a temporary file in dir, creating dir first. A concurrent Delete may
// remove an empty dir between the two steps; then it tries again.
func (s *FSStore) createTemp(dir string) (*os.File, error) {
	var err error
	for range 10 {
		if err = s.mkdirAll(dir); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, fsTempPrefix+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirAll creates dir and its missing parents below the root, and fsyncs the parent of each
// directory it created so that the new entries survive a crash.
func (s *FSStore) mkdirAll(dir string) error {
	var missing []string
	for d := dir; d != s.root && len(d) > len(s.root); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				rel, _ := filepath.Rel(s.root, d)
				return fmt.Errorf("%q is an object, so it cannot also be a prefix directory", filepath.ToSlash(rel))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := atomicfile.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// Get returns up to n bytes of the object at key from offset off (n < 0: to the end). A range
// that starts exactly at the end is empty; one that starts past it is ErrInvalidRange. The
// reader fails once ctx ends; the caller must close it.
func (s *FSStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("tiering: fs get: %w", err)
	}
	if off < 0 {
		return nil, fmt.Errorf("tiering: fs get %s: negative offset %d: %w", key, off, ErrInvalidRange)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiering: fs get %s: %w", key, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("tiering: fs get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("tiering: fs get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tiering: fs get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("tiering: fs get %s: %w", key, ErrNotFound)
	}
	size := fi.Size()
	if off > size {
		f.Close()
		return nil, fmt.Errorf("tiering: fs get %s: offset %d is past the end (size %d): %w", key, off, size, ErrInvalidRange)
	}
	length := size - off
	if n >= 0 && n < length {
		length = n
	}
	return &fsObjectReader{ctx: ctx, r: io.NewSectionReader(f, off, length), f: f}, nil
}

// fsObjectReader is the body of an FSStore.Get.
type fsObjectReader struct {
	ctx context.Context
	r   *io.SectionReader
	f   *os.File
}

func (o *fsObjectReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.r.Read(p)
}

func (o *fsObjectReader) Close() error { return o.f.Close() }

// List returns the objects whose keys start with prefix, sorted by key. The prefix need not
// end at a slash: "a/b" lists "a/b", "a/b/c" and "a/bc".
func (s *FSStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("tiering: fs list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiering: fs list %q: %w", prefix, err)
	}
	start := s.path(prefix[:strings.LastIndex(prefix, "/")+1])
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // the start is missing, or a concurrent Delete removed a directory
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if !strings.HasPrefix(key+"/", prefix) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), fsTempPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil // deleted concurrently
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tiering: fs list %q: %w", prefix, err)
	}
	// The walk visits "a/b/c" before "a/b-c" ('/' sorts after '-'); keys sort bytewise.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object at key and the directories that it leaves empty. Deleting a
// missing object is not an error.
func (s *FSStore) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("tiering: fs delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiering: fs delete %s: %w", key, err)
	}
	path := s.path(key)
	fi, err := os.Lstat(path)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("tiering: fs delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a prefix directory, not an object
	}
	if err := os.Remove(path); err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("tiering: fs delete %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := atomicfile.SyncDir(dir); err != nil && !isNotExist(err) {
		return fmt.Errorf("tiering: fs delete %s: %w", key, err)
	}
	// Remove directories left empty; a directory that is not empty (or already gone) ends it.
	// A concurrent Put into one of them recreates it (see createTemp).
	for ; dir != s.root && len(dir) > len(s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// isNotExist reports whether err says a path is missing, also when one of its parents is a
// file rather than a directory.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// ctxReader fails reads once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
