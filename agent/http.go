package agent

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func (a *Agent) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		http.Error(w, "starting or stopping\n", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// handleMetrics writes Prometheus text: process, disk guard, commit log, consumer group and Kafka
// server metrics.
func (a *Agent) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	ready := 0
	if a.ready.Load() {
		ready = 1
	}
	fmt.Fprintf(bw, "# HELP samsa_up 1 when the agent is ready to serve.\n# TYPE samsa_up gauge\nsamsa_up %d\n", ready)
	fmt.Fprintf(bw, "# HELP samsa_uptime_seconds Seconds since the agent started.\n# TYPE samsa_uptime_seconds gauge\nsamsa_uptime_seconds %.0f\n", time.Since(a.started).Seconds())
	fmt.Fprintf(bw, "# HELP samsa_process_resident_memory_bytes Resident set size.\n# TYPE samsa_process_resident_memory_bytes gauge\nsamsa_process_resident_memory_bytes %d\n", residentBytes())
	fmt.Fprintf(bw, "# HELP samsa_go_goroutines Goroutines.\n# TYPE samsa_go_goroutines gauge\nsamsa_go_goroutines %d\n", runtime.NumGoroutine())
	if a.guard != nil {
		a.guard.WriteMetrics(bw)
	}
	if a.ready.Load() {
		a.store.WriteMetrics(bw)
		a.groups.WriteMetrics(bw)
		a.kafka.WriteMetrics(bw)
	}
}

// residentBytes reads VmRSS from /proc (0 where there is no /proc).
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
