package tiering

import "github.com/samsa-io/samsa/tiering/manifest"

// The bucket layout and the manifest live in package tiering/manifest, which cloud-side tools
// import without the agent; these names keep the tiering code short.
type (
	// Manifest lists a partition's segments in object storage (manifest.Manifest).
	Manifest = manifest.Manifest
	// SegmentMeta describes one uploaded segment (manifest.SegmentMeta).
	SegmentMeta = manifest.SegmentMeta
)

var (
	// ManifestKey is manifest.ManifestKey.
	ManifestKey = manifest.ManifestKey
	// SegmentKey is manifest.SegmentKey.
	SegmentKey = manifest.SegmentKey
	// PartitionPrefix is manifest.PartitionPrefix.
	PartitionPrefix = manifest.PartitionPrefix
	// ParseSegmentKey is manifest.ParseSegmentKey.
	ParseSegmentKey = manifest.ParseSegmentKey
)
