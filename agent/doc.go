// Package agent wires one samsa node together: it parses the configuration (the only YAML
// parsing in the project), opens the commit log, serves the Kafka protocol and an HTTP endpoint
// with GET /healthz and GET /metrics (Prometheus text), and shuts down cleanly: stop accepting,
// finish in-flight requests, flush, write the clean-shutdown marker.
package agent
