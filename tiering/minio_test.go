package tiering_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering"
	"github.com/samsa-io/samsa/tiering/storetest"
)

// TestS3StoreConformance runs the conformance suite against a real MinIO server, with a
// fresh bucket for every subtest.
func TestS3StoreConformance(t *testing.T) {
	srv := testminio.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) tiering.ObjectStore {
		bucket := fmt.Sprintf("conformance-%d", n.Add(1))
		srv.CreateBucket(t, bucket)
		return newS3Store(t, srv, bucket)
	})
}

func newS3Store(t *testing.T, srv *testminio.Server, bucket string) *tiering.S3Store {
	t.Helper()
	s, err := tiering.NewS3Store(tiering.S3Config{
		Endpoint:        srv.Endpoint,
		Bucket:          bucket,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3StoreCheckBucket: a reachable bucket passes; a missing bucket, wrong credentials and
// a stopped server each fail with an error that says what is wrong; after a restart on the
// same data directory the bucket and its objects are back.
func TestS3StoreCheckBucket(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "archive")
	s := newS3Store(t, srv, "archive")
	if err := s.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	if err := s.Put(t.Context(), "a/b", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}

	missing := newS3Store(t, srv, "no-such-bucket")
	err := missing.CheckBucket(t.Context())
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist at `+srv.Endpoint) {
		t.Fatalf("CheckBucket of a missing bucket: %v", err)
	}
	err = missing.Put(t.Context(), "k", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Fatalf("Put into a missing bucket: %v", err)
	}

	wrong, err := tiering.NewS3Store(tiering.S3Config{Endpoint: srv.Endpoint, Bucket: "archive", AccessKeyID: srv.AccessKey, SecretAccessKey: "wrong-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.CheckBucket(t.Context()); err == nil {
		t.Fatal("CheckBucket with a wrong secret: no error")
	} else {
		t.Logf("wrong secret: %v", err)
	}

	// One attempt per request, so the stopped server fails fast.
	once, err := tiering.NewS3Store(tiering.S3Config{Endpoint: srv.Endpoint, Bucket: "archive", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = once.CheckBucket(t.Context())
	if err == nil || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Fatalf("CheckBucket with the server stopped: %v", err)
	}
	t.Logf("server stopped: %v", err)
	if err := once.Put(t.Context(), "a/c", strings.NewReader("lost"), 4); err == nil {
		t.Fatal("Put with the server stopped: no error")
	}

	srv.Restart(t)
	if err := once.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket after restart: %v", err)
	}
	infos, err := once.List(t.Context(), "")
	if err != nil || len(infos) != 1 || infos[0].Key != "a/b" {
		t.Fatalf("List after restart = %+v, %v; want a/b only", infos, err)
	}
}

// TestS3StoreEnvCredentials: with no static keys the store takes AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY from the environment.
func TestS3StoreEnvCredentials(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "env")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	s, err := tiering.NewS3Store(tiering.S3Config{Endpoint: srv.Endpoint + "/", Bucket: "env", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket with credentials from the environment: %v", err)
	}
	if err := s.Put(t.Context(), "x", strings.NewReader("y"), 1); err != nil {
		t.Fatal(err)
	}
}

func TestS3ConfigValidation(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_KEY", "")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := tiering.S3Config{Endpoint: "http://127.0.0.1:9000", Bucket: "samsa-archive", AccessKeyID: "id", SecretAccessKey: "secret"}
	for _, c := range []struct {
		name string
		edit func(*tiering.S3Config)
		want string
	}{
		{"no endpoint", func(c *tiering.S3Config) { c.Endpoint = "" }, "tiering.endpoint is empty"},
		{"no scheme", func(c *tiering.S3Config) { c.Endpoint = "127.0.0.1:9000" }, `tiering.endpoint "127.0.0.1:9000"`},
		{"ftp", func(c *tiering.S3Config) { c.Endpoint = "ftp://host" }, `tiering.endpoint "ftp://host": the scheme must be http or https`},
		{"path", func(c *tiering.S3Config) { c.Endpoint = "http://host:9000/bucket" }, `tiering.endpoint "http://host:9000/bucket": want only scheme, host and port`},
		{"no host", func(c *tiering.S3Config) { c.Endpoint = "http://" }, `tiering.endpoint "http://": no host`},
		{"no bucket", func(c *tiering.S3Config) { c.Bucket = "" }, "tiering.bucket is empty"},
		{"bad bucket", func(c *tiering.S3Config) { c.Bucket = "Bad_Bucket" }, `tiering.bucket "Bad_Bucket"`},
		{"only id", func(c *tiering.S3Config) { c.SecretAccessKey = "" }, "tiering.secret_access_key is empty but tiering.access_key_id is set"},
		{"only secret", func(c *tiering.S3Config) { c.AccessKeyID = "" }, "tiering.access_key_id is empty but tiering.secret_access_key is set"},
		{"no credentials", func(c *tiering.S3Config) { c.AccessKeyID, c.SecretAccessKey = "", "" }, "no credentials: set tiering.access_key_id and tiering.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"ca on http", func(c *tiering.S3Config) { c.CAFile = ca }, `tiering.ca_file "` + ca + `" is set but tiering.endpoint "http://127.0.0.1:9000" is not https`},
		{"bad ca", func(c *tiering.S3Config) { c.Endpoint, c.CAFile = "https://minio.local:9000", ca }, `tiering.ca_file "` + ca + `": no PEM certificate`},
		{"missing ca", func(c *tiering.S3Config) { c.Endpoint, c.CAFile = "https://minio.local:9000", ca+".missing" }, "tiering.ca_file: open " + ca + ".missing"},
		{"small part", func(c *tiering.S3Config) { c.PartSize = 1 << 20 }, "tiering.part_size 1048576: want between"},
		{"negative retries", func(c *tiering.S3Config) { c.MaxRetries = -1 }, "tiering.max_retries -1"},
	} {
		cfg := ok
		c.edit(&cfg)
		_, err := tiering.NewS3Store(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := tiering.NewS3Store(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestS3StoreUnreachable: an endpoint nobody listens on fails every call with an error naming
// the endpoint, and a cancelled context ends the retries.
func TestS3StoreUnreachable(t *testing.T) {
	s, err := tiering.NewS3Store(tiering.S3Config{Endpoint: "http://" + closedAddr(t), Bucket: "unreachable", AccessKeyID: "id", SecretAccessKey: "secret", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(t.Context()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("CheckBucket: %v", err)
	}
	if _, err := s.Get(t.Context(), "k", 0, -1); err == nil || errors.Is(err, tiering.ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "k", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
}

// closedAddr returns a 127.0.0.1 address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestS3StoreAbortsFailedMultipart: a Put whose reader fails after the first part leaves
// neither an object nor an incomplete multipart upload (whose parts would take space).
func TestS3StoreAbortsFailedMultipart(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "multipart")
	s := newS3Store(t, srv, "multipart")
	const size = 20 << 20
	r := io.MultiReader(io.LimitReader(zeros{}, 17<<20), iotest.ErrReader(errors.New("disk read failed")))
	if err := s.Put(t.Context(), "seg.log", r, size); err == nil {
		t.Fatal("Put from a failing reader: no error")
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	for u := range c.ListIncompleteUploads(t.Context(), "multipart", "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("incomplete upload left: %s (%s)", u.Key, u.UploadID)
	}
	if infos, err := s.List(t.Context(), ""); err != nil || len(infos) != 0 {
		t.Fatalf("List = %+v, %v; want nothing", infos, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
