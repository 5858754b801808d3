// Command edge measures samsa the way an edge device runs it: the agent as its own process with
// a device profile from firmware-configs/, its resident memory idle and under a fixed produce
// load, and the sizes of the release binaries. It prints Markdown tables (and, with -json,
// every number as JSON).
//
//	./cross-build.sh && go run ./benchmarks/edge             # 5 MB/s for 30 s: ≈ 45 s
//	go run ./benchmarks/edge -json /tmp/edge.json
//	go run ./benchmarks/edge -profile firmware-configs/raspberry-pi-zero-2w.yaml -rate 2MB
//	go test ./benchmarks/edge                                # smoke test: 3 s at 1 MB/s
//
// # What it does
//
//  1. Build. `go build -trimpath -ldflags "-s -w"` of ./cmd/samsa with CGO_ENABLED=0, as
//     cross-build.sh builds the release binaries, into a temporary directory (or -samsa-bin).
//  2. Start. `samsa agent --config PROFILE` (default industrial-gateway-256mb.yaml) with only
//     the data directory (a fresh temporary one under -dir) and the listeners (127.0.0.1,
//     random ports) overridden on the command line. Everything else is the profile's: its
//     memory budget, fsync policy (fsync: always for the gateway), segment sizes, retention,
//     host metrics.
//  3. Idle. After -idle-wait (5 s) with no client, VmRSS of the agent (/proc/PID/status) is the
//     idle RSS.
//  4. Load. One franz-go producer (acks=all, idempotent, no compression: franz-go's defaults)
//     sends -record-size (1000 B) records of random bytes to a one-partition topic at -rate
//     (5 MB/s, MB = 10^6 bytes of record values) for -duration (30 s). A 10 ms ticker sends
//     every record due by then, so the load is steady rather than bursts; the achieved rate is
//     reported. A 50 ms sampler records the agent's largest VmRSS, RssAnon and RssFile; VmHWM,
//     the kernel's high-water mark of VmRSS, read when the last record is acknowledged, is the
//     peak RSS under load (start-up and idle included, which are lower).
//  5. After. The agent's /metrics (memory budget use, throttled responses, Go memory limit) and,
//     after -idle-wait again, VmRSS once the load stopped; then SIGTERM, and the exit status.
//
// The binary size table is dist/sizes.tsv, which ./cross-build.sh writes; without it the
// table says to run cross-build.sh.
//
// Targets (issue "Edge packaging"): peak RSS under the 5 MB/s load at most 48 MB and idle RSS
// at most 20 MB with the industrial-gateway-256mb profile; the arm64 agent under 20 MB. MB
// here is 10^6 bytes (MiB are shown too).
package main
