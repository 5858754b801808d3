package tiering

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults and limits of S3Config.
const (
	// DefaultPartSize is the multipart part size: objects up to it go up in one PUT, larger
	// ones in parts of this size, with at most one part buffered in memory at a time.
	DefaultPartSize = 16 << 20
	// minPartSize and maxPartSize are S3's limits on the size of a part.
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

// S3Config configures an S3Store. Errors from its validation name the tiering block's YAML key
// (tiering.endpoint, tiering.bucket, ...) and the bad value.
type S3Config struct {
	// Endpoint is the URL of the S3 service: "http://127.0.0.1:9000" for a local MinIO,
	// "https://s3.eu-west-1.amazonaws.com" for AWS. An https endpoint is verified against the
	// system roots plus CAFile (SSL_CERT_FILE and SSL_CERT_DIR are honoured as usual).
	Endpoint string
	// Bucket holds the objects; it must exist (see CheckBucket).
	Bucket string
	// Region is the bucket's region. Empty: asked from the service once per bucket (MinIO
	// answers "us-east-1" unless configured otherwise).
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. When both are empty the store
	// uses the standard AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
	// environment variables; setting only one of the two is an error.
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle forces path-style requests (http://host/bucket/key). When false the style is
	// chosen from the endpoint: path-style for every custom endpoint (MinIO, Ceph, Garage,
	// ...), virtual-host style (http://bucket.host/key) only for AWS, Google and Aliyun hosts.
	PathStyle bool
	// CAFile is an optional PEM file of CA certificates trusted for an https endpoint, in
	// addition to the system roots; for a MinIO with a self-signed or private-CA certificate.
	CAFile string
	// PartSize is the multipart part size in bytes, between 5 MiB and 5 GiB. Zero means
	// DefaultPartSize (16 MiB), which bounds an upload's memory on a Raspberry Pi.
	PartSize int64
	// MaxRetries bounds the attempts of one request on network errors and retryable answers
	// (with a short backoff, at most a second between attempts). Zero: minio-go's default of
	// 10; 1 disables retries. The uploader retries failed uploads itself, so a small value
	// makes an unreachable endpoint fail fast.
	MaxRetries int
}

// validate checks cfg and returns the parsed endpoint.
func (cfg *S3Config) validate() (*url.URL, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("tiering.endpoint is empty (want a URL like http://127.0.0.1:9000)")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("tiering.endpoint %q: %w", cfg.Endpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("tiering.endpoint %q: the scheme must be http or https", cfg.Endpoint)
	case u.Host == "":
		return nil, fmt.Errorf("tiering.endpoint %q: no host", cfg.Endpoint)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return nil, fmt.Errorf("tiering.endpoint %q: want only scheme, host and port (put the bucket in tiering.bucket and a path in tiering.prefix)", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("tiering.bucket is empty")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("tiering.bucket %q: %w", cfg.Bucket, err)
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		if cfg.AccessKeyID == "" {
			return nil, errors.New("tiering.access_key_id is empty but tiering.secret_access_key is set: set both or neither (neither: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
		}
		return nil, errors.New("tiering.secret_access_key is empty but tiering.access_key_id is set: set both or neither (neither: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if cfg.CAFile != "" && u.Scheme != "https" {
		return nil, fmt.Errorf("tiering.ca_file %q is set but tiering.endpoint %q is not https", cfg.CAFile, cfg.Endpoint)
	}
	if cfg.PartSize != 0 && (cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize) {
		return nil, fmt.Errorf("tiering.part_size %d: want between %d (5 MiB) and %d (5 GiB)", cfg.PartSize, minPartSize, int64(maxPartSize))
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("tiering.max_retries %d: want 0 (default) or more", cfg.MaxRetries)
	}
	return u, nil
}

// credentials returns the static keys, or else the keys from the AWS environment variables.
func (cfg *S3Config) credentials() (*credentials.Credentials, error) {
	if cfg.AccessKeyID != "" {
		return credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""), nil
	}
	// The names credentials.EnvAWS reads.
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" {
		id = os.Getenv("AWS_ACCESS_KEY")
	}
	if secret == "" {
		secret = os.Getenv("AWS_SECRET_KEY")
	}
	if id == "" || secret == "" {
		return nil, errors.New("no credentials: set tiering.access_key_id and tiering.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	return credentials.NewEnvAWS(), nil
}

// S3Store is an ObjectStore in a bucket of an S3-compatible service (AWS S3, MinIO, ...),
// through minio-go. It is safe for concurrent use.
//
// Put streams the reader: objects up to the part size go up in a single PUT, larger ones as a
// multipart upload that holds at most one part in memory (none when the reader is an
// io.ReaderAt and io.Seeker, such as an *os.File, which is then read in sections and whose
// failed requests are retried). Get streams the response body of one ranged GET.
type S3Store struct {
	client   *minio.Client
	core     minio.Core // the same client; its GetObject reports errors at once
	bucket   string
	endpoint string
	partSize uint64
}

var _ ObjectStore = (*S3Store)(nil)

// ID names the bucket: endpoint and bucket.
func (s *S3Store) ID() string { return s.endpoint + "/" + s.bucket }

// NewS3Store validates cfg and returns a store for its bucket. It does not contact the
// service; CheckBucket does.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("tiering: %w", err)
	}
	creds, err := cfg.credentials()
	if err != nil {
		return nil, fmt.Errorf("tiering: %w", err)
	}
	secure := u.Scheme == "https"
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("tiering: s3 transport: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tiering.ca_file: %w", err)
		}
		pool := transport.TLSClientConfig.RootCAs
		if pool == nil {
			if pool, err = x509.SystemCertPool(); err != nil {
				pool = x509.NewCertPool()
			}
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tiering.ca_file %q: no PEM certificate in it", cfg.CAFile)
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    transport,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("tiering.endpoint %q: %w", cfg.Endpoint, err)
	}
	partSize := uint64(DefaultPartSize)
	if cfg.PartSize != 0 {
		partSize = uint64(cfg.PartSize)
	}
	return &S3Store{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.Bucket,
		endpoint: strings.TrimSuffix(cfg.Endpoint, "/"),
		partSize: partSize,
	}, nil
}

// CheckBucket reports whether the bucket exists and the credentials reach it. The agent calls
// it at start-up and logs a failure as a warning: uploads queue until the bucket is reachable.
func (s *S3Store) CheckBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("tiering: check bucket %q at %s: %w", s.bucket, s.endpoint, ctx.Err())
		}
		return fmt.Errorf("tiering: check bucket %q at %s: %w", s.bucket, s.endpoint, err)
	}
	if !ok {
		return fmt.Errorf("tiering: bucket %q does not exist at %s", s.bucket, s.endpoint)
	}
	return nil
}

// Put stores exactly size bytes read from r under key. It reads no further than size and does
// not close r. If r ends early or fails, or ctx ends, nothing is stored and an object already
// under key stays.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("tiering: s3 put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("tiering: s3 put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiering: s3 put %s: %w", key, err)
	}
	body, err := putBody(r, size)
	if err != nil {
		return fmt.Errorf("tiering: s3 put %s: %w", key, err)
	}
	_, err = s.client.PutObject(ctx, s.bucket, key, body, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    s.partSize,
	})
	if err != nil {
		return s.wrap(ctx, "put", key, err)
	}
	return nil
}

// putBody bounds r to size bytes and hides any Close method (minio-go closes bodies that
// have one). A reader that is also an io.ReaderAt and io.Seeker becomes a SectionReader from
// its current offset, which lets minio-go retry requests and upload parts without buffering;
// it must hold size bytes from there (checked by reading the last one, since minio-go would
// retry a short body as if the network had failed).
func putBody(r io.Reader, size int64) (io.Reader, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		if sk, ok := r.(io.Seeker); ok {
			off, err := sk.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if size > 0 {
				if _, err := ra.ReadAt(make([]byte, 1), off+size-1); err != nil {
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					return nil, fmt.Errorf("reader has fewer than %d bytes from offset %d: %w", size, off, err)
				}
			}
			return io.NewSectionReader(ra, off, size), nil
		}
	}
	return struct{ io.Reader }{io.LimitReader(r, size)}, nil
}

// Get returns up to n bytes of the object at key from offset off (n < 0: to the end). A range
// that starts exactly at the end is empty; one that starts past it is ErrInvalidRange. The
// body is streamed from the service and fails once ctx ends; the caller must close it.
func (s *S3Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("tiering: s3 get: %w", err)
	}
	if off < 0 {
		return nil, fmt.Errorf("tiering: s3 get %s: negative offset %d: %w", key, off, ErrInvalidRange)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiering: s3 get %s: %w", key, err)
	}
	if n == 0 {
		// No HTTP range means zero bytes; check the object and the offset only.
		return s.emptyAt(ctx, key, off)
	}
	var opts minio.GetObjectOptions
	var err error
	switch {
	case n < 0 || n > math.MaxInt64-off:
		if off > 0 {
			err = opts.SetRange(off, 0) // bytes=off-
		}
	default:
		err = opts.SetRange(off, off+n-1) // S3 truncates a range past the end
	}
	if err != nil {
		return nil, fmt.Errorf("tiering: s3 get %s: %w", key, err)
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.InvalidRange && ctx.Err() == nil {
			// S3 refuses a range that starts at the end; the interface answers it empty.
			return s.emptyAt(ctx, key, off)
		}
		return nil, s.wrap(ctx, "get", key, err)
	}
	return &s3ObjectReader{ctx: ctx, body: body}, nil
}

// s3ObjectReader is the body of an S3Store.Get. It checks ctx before every read: the HTTP
// transport notices a cancelled request asynchronously, and until it does, reads go on
// returning what the kernel has buffered.
type s3ObjectReader struct {
	ctx  context.Context
	body io.ReadCloser
}

func (o *s3ObjectReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.body.Read(p)
}

func (o *s3ObjectReader) Close() error { return o.body.Close() }

// emptyAt returns an empty body if the object at key exists and off is not past its end.
func (s *S3Store) emptyAt(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s.wrap(ctx, "get", key, err)
	}
	if off > info.Size {
		return nil, fmt.Errorf("tiering: s3 get %s: offset %d is past the end (size %d): %w", key, off, info.Size, ErrInvalidRange)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// List returns the objects whose keys start with prefix, sorted by key.
func (s *S3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("tiering: s3 list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiering: s3 list %q: %w", prefix, err)
	}
	// MinIO refuses a prefix ending in "." or ".." (as in "a/."); list from the last slash
	// and filter here.
	listPrefix := prefix
	if i := strings.LastIndex(prefix, "/") + 1; isDots(prefix[i:]) {
		listPrefix = prefix[:i]
	}
	var out []ObjectInfo
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: listPrefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.wrap(ctx, "list", prefix, obj.Err)
		}
		if strings.HasPrefix(obj.Key, prefix) {
			out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size, ModTime: obj.LastModified})
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiering: s3 list %q: %w", prefix, err)
	}
	// S3 lists in UTF-8 binary order already; other services may not.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object at key. Deleting a missing object is not an error.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("tiering: s3 delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiering: s3 delete %s: %w", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil
		}
		return s.wrap(ctx, "delete", key, err)
	}
	return nil
}

// wrap adds the operation, bucket and key to a minio-go error and maps it to the package's
// sentinels: NoSuchKey is ErrNotFound, InvalidRange is ErrInvalidRange, and an error after
// ctx ended wraps ctx's error.
func (s *S3Store) wrap(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("tiering: s3 %s %s/%s: %w (%v)", op, s.bucket, key, cerr, err)
	}
	switch code := minio.ToErrorResponse(err).Code; code {
	case minio.NoSuchKey:
		return fmt.Errorf("tiering: s3 %s %s/%s: %w", op, s.bucket, key, ErrNotFound)
	case minio.InvalidRange:
		return fmt.Errorf("tiering: s3 %s %s/%s: %w: %w", op, s.bucket, key, ErrInvalidRange, err)
	case minio.NoSuchBucket:
		return fmt.Errorf("tiering: s3 %s %s/%s: bucket %q does not exist at %s: %w", op, s.bucket, key, s.bucket, s.endpoint, err)
	}
	return fmt.Errorf("tiering: s3 %s %s/%s at %s: %w", op, s.bucket, key, s.endpoint, err)
}
