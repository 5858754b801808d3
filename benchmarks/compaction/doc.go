// Command compaction measures samsa's log cleaner on one large compacted partition: its
// throughput (MB of log compacted per second of wall time) and its peak resident memory, and
// prints one Markdown table (and, with -json, every number as JSON).
//
//	go run ./benchmarks/compaction                          # 1 GiB of lz4 batches, 100k keys: ≈ 40 s on 2 cores
//	go run ./benchmarks/compaction -json /tmp/compaction.json
//	go run ./benchmarks/compaction -size 256MiB -keys 1000000 -codec zstd
//	go test ./benchmarks/compaction                         # smoke test: 16 MiB, checks table + JSON
//
// # What it does
//
//  1. Generate. This process opens a commit log store (agent/commitlog) in a fresh temporary
//     directory under -dir, creates a one-partition topic with cleanup.policy=compact and
//     appends -size bytes of record batches built with agent/commitlog/batch. The shape, stated
//     again in the output: -keys distinct keys that look like MQTT topics
//     ("plant1/line07/sensor000123"), each update picking a key uniformly at random; values are
//     JSON sensor readings whose length is fixed per key, drawn uniformly from
//     [-value-min, -value-max] bytes (so they compress like real telemetry, not like random
//     bytes); -batch-records records per batch, compressed with -codec. After -size bytes it
//     keeps appending until the log rolls, so that all the data sits in sealed segments and only
//     the last batch is in the active segment, which the cleaner never touches. Then it flushes
//     and closes the store.
//  2. Read. As a reference for the disk, it reads every sealed .log file sequentially (1 MiB
//     reads, like cat) twice: once after dropping the page cache (cold) and once again (warm).
//  3. Clean. It drops the page cache again and starts itself as a child process (the
//     SAMSA_COMPACTION_CHILD environment variable selects the child's code), so that the
//     memory measured is the cleaner's alone and not the generator's. The child opens the
//     store, then calls Store.RunCleaner, which compacts every due partition now, and reports
//     the wall and CPU time of that call, the samsa_cleaner_* counters from Store.WriteMetrics,
//     its own VmHWM from /proc/self/status (the kernel's peak RSS of the whole child: Go
//     runtime, opened store and cleaner), the largest RssAnon/RssFile and Go heap seen by a
//     10 ms sampler, and the Go runtime's memory statistics. (The child's ru_maxrss, as the
//     parent gets it from wait4, is no use here: Go starts children with vfork, so the exec'd
//     child's ru_maxrss starts from the parent's peak. The JSON keeps it, with the parent's
//     peak, to show that.)
//  4. Check. The parent scans the compacted log: records and distinct keys before and after,
//     and whether every key of the sealed segments is left exactly once.
//
// Dropping the page cache (echo 1 > /proc/sys/vm/drop_caches) needs root. Without it, or with
// -drop-caches=false, every read is warm (the data was just written) and the output says so.
// On a virtual machine the host may still cache the disk image, so "cold" is only as cold as
// the guest can make it.
//
// MB is 10^6 bytes; MiB is 2^20 bytes. Compaction throughput is the bytes of the sealed
// segments before compaction divided by RunCleaner's wall time. The cleaner reads the dirty
// data twice (one pass to map keys, one to rewrite), so "cleaner read" is about twice the
// input.
package main
