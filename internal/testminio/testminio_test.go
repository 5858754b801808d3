package testminio_test

import (
	"bytes"
	"io"
	"net/http"
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
