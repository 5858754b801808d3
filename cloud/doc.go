// Package cloud queries the segments samsa agents archive in S3 or MinIO, with no broker
// running: the engine behind cmd/samsa-cloud (DESIGN.md step 7).
//
// It reads the bucket layout of package tiering/manifest, decodes batches with
// agent/commitlog/batch, and imports nothing else of samsa (a test checks the import graph):
//
//	<prefix>/<topic>/<partition>/manifest.json
//	<prefix>/<topic>/<partition>/<base %020d>-<epoch>.log      the segment, batches as stored
//	<prefix>/<topic>/<partition>/<base %020d>-<epoch>.index    8-byte entries: offset-base, position
//	<prefix>/<topic>/<partition>/<base %020d>-<epoch>.timeindex 12-byte entries: timestamp, offset-base
//
// # Use
//
// [Open] connects to a bucket with aws-sdk-go-v2 and the standard AWS credential chain
// (static keys in [Config], then the environment, shared files, SSO, web identity, container
// and instance roles), or unsigned requests; an Endpoint (MinIO, other S3-compatible services)
// uses path-style requests and region [DefaultRegion] unless one is configured. Open fails
// early, with one-line errors, on a missing bucket ([ErrNoBucket]), no credentials
// ([ErrNoCredentials]) or refused ones ([ErrAccessDenied]).
//
// [Archive.Catalog] reads manifests: topics, partitions, segments with their offset and time
// ranges, sizes and record counts; [WriteCatalogTable] and [WriteCatalogJSON] print one.
//
// [Archive.NewQuery] checks [QueryOptions] and [Query.Run] streams the matching records to a
// [Sink], such as a [RecordWriter] from [NewWriter] (JSON lines, CSV or raw values);
// [Query.Stats] reports progress, including the bytes fetched, from any goroutine.
// [Archive.Query] does both. [ParseTime] reads the time arguments ("2h", "7d", RFC 3339) of
// the command line and of an HTTP service alike.
//
// # What a query reads
//
// A query reads the manifests of the topic's partitions and prunes segments by offset and
// time. Then, for each segment left, it fetches the small index objects when they can narrow
// the byte range and reads only that range of the .log object with ranged GETs, a few in
// flight ahead of the decoder (Parallel, ChunkSize), so memory stays bounded:
//
//   - From offset F: the offset index's last entry at or below F gives the start position.
//   - To offset T (exclusive): segments from T on are pruned; inside a segment the offset
//     index's first entry at or above T ends the range, since every batch below T ends there.
//   - Since S (inclusive): a segment whose MaxTimestamp is below S is pruned. Inside one, the
//     time index maps a running maximum to an offset: entry (M, O) says that the batches before
//     offset O have no timestamp above M. The last entry with M < S therefore lets the read
//     start at O (through the offset index). This needs no assumption about timestamp order.
//   - Until U (exclusive): record timestamps need not grow with offsets (producers set them),
//     so a record before U may follow records long after it. By default a query with Until
//     therefore reads each partition to its end (or to T) and filters: it never misses a
//     record. With [QueryOptions].MaxLateness L the caller asserts that no record is older by
//     more than L than the newest timestamp before it in its partition; then reading stops
//     where the running maximum reaches U+L: at the first segment whose predecessors' maximum
//     does (manifest), at the time index's first entry reaching it (index), or at the first
//     batch after the running maximum of the batches read reaches it.
//
// The bytes a query reads are decoded in parallel: each batch's CRC-32C check and
// decompression run in a goroutine of their own, straight from the buffer of the ranged GET
// that holds it, up to 2×Decoders batches ahead, and the batches are applied in order (offset
// checks, record parsing, filters, Limit, the sink), so the output is that of a serial decoder
// ([QueryOptions].Decoders; memory holds those batches and their decompressed records; see
// decode.go). With a JSON lines writer of [NewWriter] as the sink, the goroutines also parse,
// filter and encode the records. lz4 batches, whose CRC-32C has been checked, are
// decompressed without the lz4 frame's own xxHash32 checksums (package batch), and records
// are parsed by a reader with short paths for ordinary records (records.go) that falls back
// to batch.RecordsData.
//
// Every record that is read is filtered exactly (offset, timestamp, key), so the indexes only
// ever save bytes; they never decide what is returned. A batch's MaxTimestamp is trusted to
// bound its records' timestamps, as the agent's own time index does. An index object that is
// missing, of the wrong size or inconsistent is ignored (the whole segment is read; Stats
// counts it). Control batches (transaction markers) are skipped; records of aborted
// transactions are returned, as for a read_uncommitted consumer, since the archive holds no
// transaction index.
//
// # Order
//
// Partitions are read one after another in ascending order, each in offset order; records of
// different partitions are not merged by time. Limit counts records over all partitions.
//
// # Corruption
//
// Every batch is checked (batch.Validate: framing, CRC-32C, record count and offset deltas)
// and must sit in place (base offsets rising inside the segment's range). The object's size
// must match the manifest. A failure is a [*CorruptError] that names the object and the byte
// position and offset of the batch (or the last good offset before it). Without SkipCorrupt
// the query stops with it. With SkipCorrupt it goes to OnCorrupt and the query carries on: a
// bad batch whose length field is sane is stepped over; after a broken length field decoding
// resumes at the next batch the offset index lists (or the next segment); a short, missing or
// resized object is skipped from there on.
//
// # Output
//
// See [NewWriter] for the JSON lines, CSV and raw formats.
//
// # HTTP
//
// [NewServer] serves the catalog, queries (streamed) and per-bucket record counts over HTTP,
// with a small page charting records per minute; server.go documents the endpoints, status
// codes and how an error after the first record is signalled.
package cloud
