// Package tiering moves cold log segments from the agent's local disk to object storage
// (S3 or MinIO) and reads them back, so that an edge device can keep hours of data on its SD
// card and months in a bucket (DESIGN.md, step 6).
//
// When a segment is closed and lies below the high watermark, the partition leader uploads
// it with its offset and time indexes, then atomically replaces the partition's manifest:
//
//	<prefix>/<topic>/<partition>/<baseOffset %020d>-<leaderEpoch>.log   (.index, .timeindex)
//	<prefix>/<topic>/<partition>/manifest.json
//
// The local copy may go only after the upload and past the topic's local.retention.ms and
// local.retention.bytes; retention.ms and retention.bytes delete data everywhere. A Fetch below
// the local log start is served from object storage by ranged GETs guided by the uploaded
// offset index, through a bounded set of chunks in memory (read ahead of sequential readers;
// readahead.go) backed by a bounded on-disk chunk cache for chunks worth keeping (cache.go).
// Uploads survive an unreachable endpoint: they queue, retry with backoff and resume.
//
// # Object stores
//
// All of this talks to storage through [ObjectStore], a narrow interface (whole-object Put
// from a reader of known size, ranged Get, sorted List by prefix, idempotent Delete, a
// context everywhere) with two implementations:
//
//   - [S3Store] (minio.go): any S3-compatible endpoint through minio-go, with path-style
//     addressing for custom endpoints, TLS with the system roots or a CA file, a region, and
//     static keys or the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment.
//   - [FSStore] (fsstore.go): a directory on a local filesystem, for fast tests and for
//     deployments that archive to a mounted volume.
//
// Keys are slash-separated relative paths: no empty segments, no "." or "..", no leading
// slash. Both stores refuse other keys with the same error, so a layout that works on one
// works on the other.
//
// The conformance suite in package tiering/storetest runs against both stores; the S3 run
// uses a real MinIO server started by package internal/testminio.
package tiering
