// Command tiering measures samsa's tiered storage against a real MinIO server: how fast an
// agent uploads closed segments (upload throughput) and how fast a consumer reads segments
// that are only in the bucket (cold-read throughput), each side by side, in the same run, with
// a plain minio-go loop moving the same bytes to or from the same MinIO (the ceiling). It
// prints Markdown tables (and, with -json, every number as JSON). The target is at
// least 80% of the ceiling for both.
//
//	go run ./benchmarks/tiering                           # 512 MiB of 1 KiB records, 3 rounds: ≈ 1–2 min on 2 cores
//	go run ./benchmarks/tiering -json /tmp/tiering.json
//	go run ./benchmarks/tiering -bytes 1GiB -segment-bytes 64MiB -rounds 5
//	go run ./benchmarks/tiering -read-ahead-bytes 16MiB   # the agent's tiering.read_ahead_bytes (default 32MiB)
//	go run ./benchmarks/tiering -read-ahead-bytes 1GiB    # memory holds the whole log: adds a second read without GETs
//	go run ./benchmarks/tiering -perf /tmp/perf           # also record the agent with perf(1)
//	go test ./benchmarks/tiering                          # smoke test: 12 MiB, checks every byte read back
//
// It needs the MinIO binary the tests use (go install
// github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c, found like internal/testminio
// finds it: -minio, $SAMSA_MINIO_BIN, $(go env GOPATH)/bin, PATH) and the Go toolchain (it
// builds ./cmd/samsa into its work directory unless -samsa-bin is given). Everything runs on
// 127.0.0.1 in a fresh temporary work directory (under -dir), removed at the end unless -keep.
//
// # What it does
//
//  1. Start MinIO (its own data directory, random ports) and create a bucket.
//  2. Produce. Start `samsa agent` without tiering, create a one-partition topic with
//     remote.storage.enable=true, segment.bytes=-segment-bytes and retention.ms=-1, and
//     produce -bytes of -record-size values with franz-go (acks=all, idempotent, no
//     compression, so offset i holds the i-th value). The values are random bytes defined by
//     the offset (a fixed pool and a stride), so every read is checked byte for byte without
//     keeping them. Then set segment.ms=1 and produce one filler record: the active segment
//     rolls, and the sealed segments hold exactly the measured records. Read them once with
//     the same consumer as the cold reads, from the local files (the reference row), and stop
//     the agent.
//  3. Upload, -rounds times:
//     - ceiling: this process uploads the sealed segments' .log, .index and .timeindex files
//     from the agent's data directory with minio-go PutObject, one object after the other,
//     with the agent's part size (16 MiB, so one PUT per object), to a new prefix;
//     - samsa: start the agent on the same data directory with tiering to another new, empty
//     prefix. Its uploader finds every sealed segment not uploaded and uploads them, one at a
//     time. This isolates the uploader: nothing is being produced meanwhile. The time runs
//     from the agent's "tiering on" log line to its last "segment uploaded" debug line (poll
//     of GET /v1/tier/status confirms the manifest covers every sealed segment); bytes are
//     samsa_tier_upload_bytes_total. The manifest is then checked against the local files
//     (sizes and CRC-32C).
//  4. Drop the local copies: start the agent on the last upload's prefix, set
//     local.retention.bytes=1 and wait until the local log starts where the bucket ends.
//  5. Cold read, -rounds times:
//     - ceiling: GetObject of every .log object the agent uploaded, one after the other,
//     whole, then in 4 MiB ranges (the agent's chunk size), into io.Discard;
//     - samsa: start the agent (its chunk cache is cleared at start; tiering.read_ahead_bytes
//     is -read-ahead-bytes, tiering.cache_bytes -cache-bytes) and read offsets [0, records)
//     with one franz-go consumer from offset 0 (FetchMaxBytes = FetchMaxPartitionBytes =
//     -fetch-max-bytes), checking every record; then, when the agent can hold every chunk of
//     the log (-read-ahead-bytes ≥ the log's 4 MiB chunks, or -read-ahead-bytes 0 and
//     -cache-bytes larger than the log), read it again in the same agent: its remote read
//     path without GETs;
//     - samsa, raw Fetch: a fresh agent again, read with bare Fetch requests that decode no
//     records (the batches' CRC-32C and each segment's .log CRC-32C are checked): what the
//     agent delivers when the client does little work.
//
// Each round runs samsa and its ceiling one after the other; the summary table shows the
// medians over the rounds, the round table every value, and the detail tables where the time
// went: for uploads the time before the first PUT, in PUTs and between segments (the
// uploader's pass over each .log for its CRC-32C), for reads the time the client waited for
// fetch responses, the chunk GETs a fetch waited for (misses) and the chunks it found, the
// bytes all GETs fetched, read-ahead included (samsa_tier_remote_get_bytes_total: the .log
// bytes when no chunk is fetched twice), the bytes written into Fetch responses from memory
// (samsa_kafka_fetch_memory_bytes_total) and the chunks written to the on-disk cache
// (samsa_tier_cache_writes_total: none for a sequential read), and, for every measurement, the
// CPU seconds of the agent, MinIO and this process (from /proc) and the CPUs that other work on
// the machine took meanwhile.
//
// MB is 10^6 bytes; MiB is 2^20 bytes. Upload MB/s counts .log + .index + .timeindex bytes
// (what both sides upload); read MB/s counts the .log bytes (the record batches read).
// MinIO, the agent and this process share the machine's CPUs, and MinIO serves reads from
// the page cache: on a small machine CPU, not the disk, is what they compete for.
package main
