package tiering

import (
	"context"
	"errors"
	"io"
	"time"
)

// ObjectStore is the narrow object storage the tiering code needs: whole-object puts, ranged
// gets, listing by prefix and deletes, all bounded by a context. Implementations: the MinIO/S3
// store (minio.go) and a local filesystem store (fsstore.go); one conformance suite
// (storetest) runs against both. Implementations are safe for concurrent use.
//
// Keys are slash-separated relative paths ("site-a/gw-1/temps/0/manifest.json"); a key with
// an empty, "." or ".." segment, a leading or trailing slash, a backslash, more than 1024
// bytes or a segment of more than 255 is refused with ErrInvalidKey by every implementation.
// A context that has ended fails every call with an error wrapping ctx.Err().
type ObjectStore interface {
	// Put stores exactly size bytes read from r under key, replacing any object there. The
	// object appears whole or not at all: if r ends early or fails, or ctx ends, nothing is
	// stored and an older object stays. Put reads no further than size bytes and does not
	// close r; a reader that is an io.ReaderAt and io.Seeker (an *os.File) is read from its
	// current offset, and lets the S3 store retry and upload parts without buffering.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns up to n bytes of the object at key starting at off (n < 0: to the end); a
	// range reaching past the end is cut at the end, and one starting exactly at the end is
	// empty. A missing object is ErrNotFound; off < 0 or past the end is ErrInvalidRange.
	// The body is streamed, fails once ctx ends, and must be closed.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// List returns the objects whose keys start with prefix, sorted bytewise by key (so
	// "a/b-c" before "a/b/c"). The prefix need not end at a slash.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the object at key; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's full key.
	Key string
	// Size is its length in bytes.
	Size int64
	// ModTime is when it was last put (the file's mtime, S3's Last-Modified).
	ModTime time.Time
}

// Sentinel errors of ObjectStore implementations; test with errors.Is.
var (
	// ErrNotFound: no object under that key.
	ErrNotFound = errors.New("object not found")
	// ErrInvalidRange: a Get starting past the end of the object, or at a negative offset.
	ErrInvalidRange = errors.New("invalid range")
)
