package testminio_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/samsa-io/samsa/internal/testminio"
)

// TestStopRestart: a stopped server refuses connections; restarted, it serves the same
// endpoint and still has its buckets and objects.
func TestStopRestart(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "keep")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("survives a restart")
	if _, err := c.PutObject(t.Context(), "keep", "a/b", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint

	srv.Stop()
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatalf("stopped server answered %s", resp.Status)
	}
	srv.Stop() // idempotent

	srv.Restart(t)
	if srv.Endpoint != endpoint {
		t.Fatalf("endpoint changed across restart: %s, was %s", srv.Endpoint, endpoint)
	}
	obj, err := c.GetObject(t.Context(), "keep", "a/b", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: %q, %v; want %q", got, err, data)
	}
	srv.Restart(t) // restarting a running server works too
	if ok, err := c.BucketExists(t.Context(), "keep"); err != nil || !ok {
		t.Fatalf("BucketExists after second restart: %v, %v", ok, err)
	}
}

// TestFindBinary: an explicit path or $SAMSA_MINIO_BIN naming a missing file is an error of
// its own, not ErrNotInstalled.
func TestFindBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-minio")
	if _, err := testminio.FindBinary(missing); err == nil || errors.Is(err, testminio.ErrNotInstalled) {
		t.Errorf("FindBinary(missing file) = %v", err)
	}
	t.Setenv("SAMSA_MINIO_BIN", missing)
	if _, err := testminio.FindBinary(""); err == nil || errors.Is(err, testminio.ErrNotInstalled) {
		t.Errorf("FindBinary with $SAMSA_MINIO_BIN missing = %v", err)
	}
}

// TestLaunch: a server started outside a test reports its process and version, and its error
// for a binary that is not MinIO carries the output.
func TestLaunch(t *testing.T) {
	srv, err := testminio.Launch(testminio.Binary(t), t.TempDir(), testminio.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if srv.PID() <= 0 || !strings.Contains(srv.Version(), "version") {
		t.Errorf("pid %d, version %q", srv.PID(), srv.Version())
	}
	srv.Stop()
	if srv.PID() != 0 {
		t.Errorf("pid %d after Stop", srv.PID())
	}
	if _, err := testminio.Launch("/bin/false", t.TempDir(), testminio.LaunchOptions{}); err == nil ||
		!strings.Contains(err.Error(), "minio output:") {
		t.Errorf("Launch(/bin/false) = %v", err)
	}
}
