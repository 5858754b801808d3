package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/tiering"
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
		if a.tierer != nil {
			a.tierer.WriteMetrics(bw)
		}
	}
	a.writeEdgeMetrics(bw, a.ready.Load())
	a.writeMQTTMetrics(bw)
}

// TierStatusResponse is the body of GET /v1/tier/status.
type TierStatusResponse struct {
	Partitions []tiering.PartitionStatus `json:"partitions"`
}

// errorResponse is the body of every JSON error of the /v1 API.
type errorResponse struct {
	Error string `json:"error"`
}

// handleTierStatus answers GET /v1/tier/status[?topic=T]: every tiered partition (of T) with
// its local and remote offset ranges and upload backlog. 404 when tiering is off or the topic
// does not exist; a topic without remote.storage.enable has no partitions listed.
func (a *Agent) handleTierStatus(w http.ResponseWriter, r *http.Request) {
	if !a.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{"the agent is starting or stopping"})
		return
	}
	if a.tierer == nil {
		writeJSON(w, http.StatusNotFound, errorResponse{"tiering is off on this agent (tiering.endpoint is not set)"})
		return
	}
	topic := r.URL.Query().Get("topic")
	if topic != "" && a.store.Topic(topic) == nil {
		writeJSON(w, http.StatusNotFound, errorResponse{fmt.Sprintf("unknown topic %q", topic)})
		return
	}
	parts := a.tierer.Status(topic)
	if parts == nil {
		parts = []tiering.PartitionStatus{}
	}
	writeJSON(w, http.StatusOK, TierStatusResponse{Partitions: parts})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
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
