package cloud_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireChromium returns Debian's chromium; without it the test is skipped locally and
// fails in CI (.ci/test.sh installs it).
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed (bash .ci/test.sh installs it)")
	}
	t.Skip("chromium not installed; run bash .ci/test.sh or apt-get install chromium")
	return ""
}

// chromium runs headless Chromium on u with extra arguments (--dump-dom, --screenshot=...)
// after letting the page's virtual time run 5 s (its fetches complete first), and returns
// stdout.
func chromium(t *testing.T, bin, u string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,800", "--virtual-time-budget=5000",
		"--hide-scrollbars"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, u)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

var (
	barRE    = regexp.MustCompile(`<rect class="bar"[^>]*data-start="([^"]+)" data-count="(\d+)"`)
	topicRE  = regexp.MustCompile(`<li class="topic[^"]*" data-topic="([^"]+)"`)
	svgRE    = regexp.MustCompile(`<svg id="chart"[^>]*data-buckets="(\d+)" data-records="(\d+)"`)
	stateRE  = regexp.MustCompile(`<body data-state="([a-z]+)"`)
	summaryR = regexp.MustCompile(`<p id="summary"[^>]*>([^<]*)</p>`)
)

// testPage loads the page in headless Chromium: the DOM after its fetches must list the
// topic and chart exactly the records per minute of the archive; the screenshot must be a
// 1200x800 PNG with the bars drawn.
func testPage(t *testing.T, base string, ar *archive) {
	bin := requireChromium(t)
	since, until := serverSpec.base.Add(time.Hour), serverSpec.base.Add(2*time.Hour)
	want := rateOf(ar, -1, since, until, time.Minute)
	var total int64
	for _, c := range want {
		total += c
	}
	u := base + "/?" + url.Values{"topic": {ar.topic}, "since": {since.Format(time.RFC3339)},
		"until": {until.Format(time.RFC3339)}, "bucket": {"1m"}}.Encode()

	dom := chromium(t, bin, u, "--dump-dom")
	checkDOM(t, dom, ar.topic, len(want), total)
	bars := barRE.FindAllSubmatch(dom, -1)
	for i, b := range bars {
		start := since.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		if string(b[1]) != start || string(b[2]) != strconv.FormatInt(want[i], 10) {
			t.Errorf("bar %d: %s %s records, want %s %d", i, b[1], b[2], start, want[i])
		}
	}
	if m := summaryR.FindSubmatch(dom); m == nil || !strings.Contains(string(m[1]), fmt.Sprintf("%d records in 60 buckets", total)) {
		t.Errorf("summary: %q", m)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	chromium(t, bin, u, "--screenshot="+shot)
	checkScreenshot(t, shot)

	// Without parameters the page picks the first topic and the last hour of its data.
	dom = chromium(t, bin, base+"/", "--dump-dom")
	checkDOM(t, dom, ar.topic, 60, -1)
}

// checkDOM checks the topic list, the chart and the page state; records < 0: any.
func checkDOM(t *testing.T, dom []byte, topic string, buckets int, records int64) {
	t.Helper()
	if m := stateRE.FindSubmatch(dom); m == nil || string(m[1]) != "ready" {
		t.Fatalf("page state %q, want ready; DOM:\n%s", m, dom)
	}
	topics := topicRE.FindAllSubmatch(dom, -1)
	if len(topics) != 1 || string(topics[0][1]) != topic || !bytes.Contains(dom, []byte(`class="topic selected"`)) {
		t.Errorf("topic list %q, want %s selected", topics, topic)
	}
	m := svgRE.FindSubmatch(dom)
	if m == nil || string(m[1]) != strconv.Itoa(buckets) || (records >= 0 && string(m[2]) != strconv.FormatInt(records, 10)) {
		t.Errorf("chart %q, want %d buckets and %d records", m, buckets, records)
	}
	if n := len(barRE.FindAll(dom, -1)); n != buckets {
		t.Errorf("%d bars, want %d", n, buckets)
	}
	if m != nil && m[2][0] == '0' {
		t.Errorf("chart without records")
	}
}

// checkScreenshot decodes the PNG and checks its size and that the chart shows: enough
// pixels in the bar colour (#2b6cb0) below the form, and no blank image.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if keep := os.Getenv("SAMSA_KEEP_SCREENSHOT"); keep != "" { // a file name: look at the page
		if err := os.WriteFile(keep, data, 0o644); err != nil {
			t.Error(err)
		}
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 800 {
		t.Fatalf("screenshot is %v, want 1200x800", b)
	}
	colours := map[[3]uint32]bool{}
	barPixels := 0
	chart := image.Rect(300, 180, 1200, 560) // right of the topic list, below the form
	for y := 0; y < 800; y++ {
		for x := 0; x < 1200; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, b >> 8}
			colours[c] = true
			if image.Pt(x, y).In(chart) && near(c, [3]uint32{0x2b, 0x6c, 0xb0}) {
				barPixels++
			}
		}
	}
	if len(colours) < 16 || barPixels < 5000 {
		t.Errorf("screenshot: %d colours, %d bar pixels in %v: the chart is not drawn (saved at %s)", len(colours), barPixels, chart, path)
		keep := filepath.Join(os.TempDir(), "samsa-cloud-page.png")
		if os.WriteFile(keep, data, 0o644) == nil {
			t.Logf("screenshot kept at %s", keep)
		}
	}
}

func near(a, b [3]uint32) bool {
	d := func(x, y uint32) uint32 {
		if x > y {
			return x - y
		}
		return y - x
	}
	return d(a[0], b[0]) <= 8 && d(a[1], b[1]) <= 8 && d(a[2], b[2]) <= 8
}
