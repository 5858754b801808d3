// Package agent wires one samsa node together: it parses the configuration (the only YAML
// parsing in the project), opens the commit log, serves the Kafka protocol and an HTTP endpoint
// with GET /healthz, GET /metrics (Prometheus text) and GET /v1/tier/status (JSON), runs the
// tiering uploader when the tiering: block names an endpoint, runs the MQTT bridges of the mqtt:
// block (package ingest/mqtt), and shuts down cleanly: stop the bridges, stop accepting, finish
// in-flight requests, stop uploads, flush, write the clean-shutdown marker.
package agent
