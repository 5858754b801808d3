package kafka

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record bytes of Fetch responses, by how they reached the socket. They are
// process-wide: every Server adds to them.
var (
	sendfileBytes     atomic.Uint64
	copiedRecordBytes atomic.Uint64
	memoryRecordBytes atomic.Uint64
)

// SendfileBytes returns how many record bytes Fetch responses have sent with
// sendfile(2), i.e. without the bytes passing through user space.
func SendfileBytes() uint64 { return sendfileBytes.Load() }

// CopiedRecordBytes returns how many record bytes Fetch responses have sent by
// reading them into memory and writing them (non-TCP connections, platforms
// without sendfile).
func CopiedRecordBytes() uint64 { return copiedRecordBytes.Load() }

// MemoryRecordBytes returns how many record bytes Fetch responses have written from memory
// buffers of tiered data (chunks of remote segments; see remoteMemory).
func MemoryRecordBytes() uint64 { return memoryRecordBytes.Load() }

// closeCause is why the server closed a connection; a fixed set so the metric
// stays bounded.
type closeCause int

const (
	causeTooLarge    closeCause = iota // frame above MaxRequestBytes
	causeBadFrame                      // negative or impossible frame size
	causeUnsupported                   // api key or version we do not speak
	causeDecode                        // request that does not decode
	causeAcks0Error                    // acks=0 produce that failed (Kafka closes so the client notices)
	causePanic                         // a handler panicked
	causeWrite                         // writing a response failed
	numCauses
)

var causeNames = [numCauses]string{"frame_too_large", "bad_frame", "unsupported", "decode", "acks0_error", "panic", "write_error"}

// maxMetricKey bounds the per-API counters; keys at or above it count as "other".
const maxMetricKey = 128

// errKey labels an error counter.
type errKey struct{ api, code int16 }

// metrics are the server's counters, exported in Prometheus text format.
type metrics struct {
	connsOpen     atomic.Int64
	connsTotal    atomic.Uint64
	connsRejected atomic.Uint64
	queuedWaits   atomic.Uint64 // reads that waited for the request memory budget
	queuedBytes   atomic.Int64  // request bytes held from the budget now
	bytesIn       atomic.Uint64
	bytesOut      atomic.Uint64
	fetchWaiting  atomic.Int64
	requests      [maxMetricKey + 1]atomic.Uint64
	closes        [numCauses]atomic.Uint64

	mu     sync.Mutex
	errors map[errKey]uint64 // bounded: api keys we answer × error codes we emit
}

// request counts one request of api key.
func (m *metrics) request(key int16, size int) {
	if key < 0 || key >= maxMetricKey {
		key = maxMetricKey
	}
	m.requests[key].Add(1)
	m.bytesIn.Add(uint64(size))
}

// closed counts one connection closed by the server for cause.
func (m *metrics) closed(cause closeCause) {
	if cause >= 0 && cause < numCauses {
		m.closes[cause].Add(1)
	}
}

// errorCode counts one error code returned for api key; 0 is not an error.
func (m *metrics) errorCode(api, code int16) {
	if code == 0 {
		return
	}
	m.mu.Lock()
	if m.errors == nil {
		m.errors = make(map[errKey]uint64)
	}
	if len(m.errors) < 4096 || m.errors[errKey{api, code}] > 0 {
		m.errors[errKey{api, code}]++
	}
	m.mu.Unlock()
}

// countResponseErrors counts every non-zero ErrorCode field in resp, at any
// depth (topics, partitions, ...).
func (m *metrics) countResponseErrors(resp kmsg.Response) {
	countErrorFields(reflect.ValueOf(resp), func(code int16) { m.errorCode(resp.Key(), code) }, 0)
}

var int16Type = reflect.TypeFor[int16]()

// countErrorFields walks v and calls fn for each non-zero int16 field named ErrorCode.
func countErrorFields(v reflect.Value, fn func(int16), depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			countErrorFields(v.Elem(), fn, depth+1)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		for i := range v.Len() {
			countErrorFields(v.Index(i), fn, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Name == "ErrorCode" && f.Type == int16Type {
				if c := int16(v.Field(i).Int()); c != 0 {
					fn(c)
				}
				continue
			}
			if f.Name != "UnknownTags" && f.IsExported() {
				countErrorFields(v.Field(i), fn, depth+1)
			}
		}
	}
}

// WriteMetrics writes the server's metrics in Prometheus text format: open and
// total connections, requests by API, error codes by API, connections closed
// by the server by reason, bytes in and out, and Fetch record bytes sent with
// sendfile versus copied through user space.
func (s *Server) WriteMetrics(w io.Writer) {
	m := &s.m
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# HELP samsa_kafka_connections Open Kafka client connections.\n# TYPE samsa_kafka_connections gauge\n")
	p("samsa_kafka_connections %d\n", m.connsOpen.Load())
	p("# HELP samsa_kafka_connections_total Kafka client connections accepted.\n# TYPE samsa_kafka_connections_total counter\n")
	p("samsa_kafka_connections_total %d\n", m.connsTotal.Load())
	p("# HELP samsa_kafka_connections_rejected_total Connections refused because of max connections.\n# TYPE samsa_kafka_connections_rejected_total counter\n")
	p("samsa_kafka_connections_rejected_total %d\n", m.connsRejected.Load())
	p("# HELP samsa_kafka_request_budget_waits_total Request reads that waited for queued_max_request_bytes.\n# TYPE samsa_kafka_request_budget_waits_total counter\n")
	p("samsa_kafka_request_budget_waits_total %d\n", m.queuedWaits.Load())
	p("# HELP samsa_kafka_request_bytes_held Request bytes in memory, of queued_max_request_bytes.\n# TYPE samsa_kafka_request_bytes_held gauge\n")
	p("samsa_kafka_request_bytes_held %d\n", m.queuedBytes.Load())
	p("# HELP samsa_kafka_connection_closes_total Connections closed by the server, by reason.\n# TYPE samsa_kafka_connection_closes_total counter\n")
	for i, name := range causeNames {
		p("samsa_kafka_connection_closes_total{reason=%q} %d\n", name, m.closes[i].Load())
	}
	p("# HELP samsa_kafka_requests_total Requests received, by API.\n# TYPE samsa_kafka_requests_total counter\n")
	for key := range m.requests {
		if n := m.requests[key].Load(); n > 0 {
			name := "other"
			if key < maxMetricKey {
				name = kmsg.NameForKey(int16(key))
			}
			p("samsa_kafka_requests_total{api=%q} %d\n", name, n)
		}
	}
	p("# HELP samsa_kafka_errors_total Error codes returned, by API and code.\n# TYPE samsa_kafka_errors_total counter\n")
	for _, e := range m.errorSnapshot() {
		p("samsa_kafka_errors_total{api=%q,code=%q} %d\n", kmsg.NameForKey(e.api), errorName(e.code), e.n)
	}
	p("# HELP samsa_kafka_fetch_waiting Fetch requests long-polling for data.\n# TYPE samsa_kafka_fetch_waiting gauge\n")
	p("samsa_kafka_fetch_waiting %d\n", m.fetchWaiting.Load())
	p("# HELP samsa_kafka_bytes_in_total Request bytes received.\n# TYPE samsa_kafka_bytes_in_total counter\n")
	p("samsa_kafka_bytes_in_total %d\n", m.bytesIn.Load())
	p("# HELP samsa_kafka_bytes_out_total Response bytes sent.\n# TYPE samsa_kafka_bytes_out_total counter\n")
	p("samsa_kafka_bytes_out_total %d\n", m.bytesOut.Load())
	p("# HELP samsa_kafka_fetch_sendfile_bytes_total Fetch record bytes sent with sendfile (process-wide).\n# TYPE samsa_kafka_fetch_sendfile_bytes_total counter\n")
	p("samsa_kafka_fetch_sendfile_bytes_total %d\n", SendfileBytes())
	p("# HELP samsa_kafka_fetch_copied_bytes_total Fetch record bytes copied through user space (process-wide).\n# TYPE samsa_kafka_fetch_copied_bytes_total counter\n")
	p("samsa_kafka_fetch_copied_bytes_total %d\n", CopiedRecordBytes())
	p("# HELP samsa_kafka_fetch_memory_bytes_total Fetch record bytes of tiered data written from memory chunks (process-wide).\n# TYPE samsa_kafka_fetch_memory_bytes_total counter\n")
	p("samsa_kafka_fetch_memory_bytes_total %d\n", MemoryRecordBytes())
	s.writeThrottleMetrics(w)
}

type errCount struct {
	api, code int16
	n         uint64
}

// errorSnapshot returns the error counters sorted by api and code.
func (m *metrics) errorSnapshot() []errCount {
	m.mu.Lock()
	out := make([]errCount, 0, len(m.errors))
	for k, n := range m.errors {
		out = append(out, errCount{k.api, k.code, n})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].api != out[j].api {
			return out[i].api < out[j].api
		}
		return out[i].code < out[j].code
	})
	return out
}

// errorName is the Kafka name of an error code.
func errorName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e := kerr.TypedErrorForCode(code); e != nil && e.Code == code {
		return e.Message
	}
	return fmt.Sprintf("code_%d", code)
}
