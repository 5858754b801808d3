package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServe runs "samsa-cloud serve" against segments a real agent uploaded to a real MinIO
// and checks that every /query answer equals, byte for byte, what "samsa-cloud query" prints
// for the same parameters, that /topics equals "ls --format json", the error statuses, and a
// clean exit on SIGTERM.
func TestServe(t *testing.T) {
	f := newFixture(t, 3000)
	srv := startServe(t, f, "--max-queries", "2")

	ls := f.run(t, f.keys(), "ls", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix, "--format", "json")
	if ls.code != 0 {
		t.Fatalf("ls: %d %s", ls.code, ls.stderr)
	}
	if ans := srv.get(t, "/topics"); ans.status != 200 || string(ans.body) != ls.stdout {
		t.Errorf("/topics differs from ls --format json:\n%s\nwant\n%s", ans.body, ls.stdout)
	}

	mid := time.UnixMilli(f.archived[len(f.archived)/2].ts).UTC().Format(time.RFC3339Nano)
	for _, params := range []url.Values{
		{},
		{"format": {"csv"}, "from-offset": {"100"}, "to-offset": {"900"}},
		{"format": {"raw"}, "limit": {"250"}},
		{"since": {"10h"}},                  // no record within 30 minutes of now-10h: both clocks agree
		{"since": {mid}, "until": {"10h"}},  // until relative
		{"key": {"k-4"}, "format": {"csv"}}, // text key
		{"key-base64": {"AMMoAQ=="}},        // binary key 00 c3 28 01
		{"since": {mid}, "until": {"10h"}, "max-lateness": {"1ms"}, "partition": {"0"}},
	} {
		args := []string{"query", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix,
			"--topic", f.topic, "--quiet"}
		for name, vs := range params {
			args = append(args, "--"+name, vs[0])
		}
		cli := f.run(t, f.keys(), args...)
		if cli.code != 0 {
			t.Fatalf("%v: exit %d %s", args, cli.code, cli.stderr)
		}
		params.Set("topic", f.topic)
		ans := srv.get(t, "/query?"+params.Encode())
		if ans.status != 200 || ans.readErr != nil || string(ans.body) != cli.stdout {
			t.Fatalf("/query?%s: %d %v, %d bytes; samsa-cloud query printed %d bytes", params.Encode(), ans.status,
				ans.readErr, len(ans.body), len(cli.stdout))
		}
		if cli.stdout == "" {
			t.Errorf("%v: no records: the case tests nothing", args)
		}
	}

	for path, want := range map[string]int{
		"/query?topic=" + f.topic + "&since=bogus":           400,
		"/query?topic=" + f.topic + "&format=xml":            400,
		"/query?topic=nope":                                  404,
		"/query?topic=" + f.topic + "&since=2099-01-01":      416,
		"/stats/rate?topic=" + f.topic + "&since=2h&bucket=": 400,
		"/nothing-here": 404,
	} {
		if ans := srv.get(t, path); ans.status != want {
			t.Errorf("GET %s: %d %s, want %d", path, ans.status, ans.body, want)
		}
	}
	page := srv.get(t, "/")
	if page.status != 200 || !strings.Contains(string(page.body), `<script src="app.js"`) ||
		!strings.Contains(page.header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET /: %d %v", page.status, page.header)
	}
	for _, file := range []string{"/app.js", "/style.css"} {
		if ans := srv.get(t, file); ans.status != 200 || len(ans.body) < 500 {
			t.Errorf("GET %s: %d, %d bytes", file, ans.status, len(ans.body))
		}
	}

	srv.stop(t)
	logs := srv.stderr()
	if !strings.Contains(logs, "samsa-cloud: serving "+f.srv.Endpoint+"/"+f.bucket+"/"+f.prefix+" on http://127.0.0.1:") ||
		!strings.Contains(logs, "msg=query") || !strings.Contains(logs, "status=416") {
		t.Errorf("stderr:\n%s", logs)
	}
}

func TestServeUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-h"}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "GET /stats/rate") || !strings.Contains(out.String(), "--listen") {
		t.Errorf("serve -h: %d\n%s%s", code, out.String(), errb.String())
	}
	for _, args := range [][]string{
		{"serve"}, // no bucket
		{"serve", "--bucket", "b", "--max-queries", "0"},
		{"serve", "--bucket", "b", "--parallel", "100"},
		{"serve", "--bucket", "b", "extra"},
	} {
		errb.Reset()
		if code := run(context.Background(), args, &out, &errb); code != exitUsage || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	out.Reset()
	run(context.Background(), []string{"help"}, &out, &out)
	if !strings.Contains(out.String(), "samsa-cloud serve") {
		t.Errorf("help does not list serve:\n%s", out.String())
	}
}

// serveProc is a running "samsa-cloud serve".
type serveProc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	mu   sync.Mutex
	errb bytes.Buffer
	done chan struct{} // closed when stderr is read to its end
}

// startServe starts the server on a free port and reads its address from stderr.
func startServe(t *testing.T, f *fixture, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", f.prefix,
		"--listen", "127.0.0.1:0"}, extra...)
	p := &serveProc{cmd: exec.Command(binary(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(append([]string{}, f.env...), f.keys()...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.errb.WriteString(line + "\n")
			p.mu.Unlock()
			if i := strings.Index(line, " on http://"); i >= 0 && strings.HasPrefix(line, "samsa-cloud: serving ") {
				select {
				case addr <- strings.TrimSuffix(line[i+len(" on "):], "/"):
				default:
				}
			}
		}
	}()
	select {
	case p.base = <-addr:
	case <-p.done:
		p.cmd.Wait()
		t.Fatalf("serve exited: %s", p.stderr())
	case <-time.After(failAfter):
		t.Fatalf("serve did not start: %s", p.stderr())
	}
	return p
}

func (p *serveProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// stop sends SIGTERM and expects a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(failAfter):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, p.stderr())
	}
}

type httpAnswer struct {
	status  int
	header  http.Header
	body    []byte
	readErr error
}

func (p *serveProc) get(t *testing.T, path string) httpAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && resp.StatusCode != 404 || resp.StatusCode == 404 && strings.HasPrefix(path, "/query") {
		var e struct{ Error, Kind string }
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET %s: %d without a JSON error: %q", path, resp.StatusCode, body)
		}
	}
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: body, readErr: rerr}
}
