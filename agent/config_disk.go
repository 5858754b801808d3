package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/agent/diskguard"
)

// DiskConfig is the YAML block disk: the disk guard, which refuses produce requests with
// KAFKA_STORAGE_ERROR while the data directory's filesystem is low on space (agent/diskguard).
type DiskConfig struct {
	// MinFreeBytes (disk.min_free_bytes) refuses writes while fewer bytes are free.
	// Default 256 MiB; 0 disables the limit.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// MinFreePercent (disk.min_free_percent) refuses writes while less than this percent of
	// the filesystem is free. Default 2; 0 to 99, 0 disables the limit.
	MinFreePercent float64 `yaml:"min_free_percent"`
	// CheckInterval (disk.check_interval) is how often free space is polled. Default 1s;
	// 10ms to 1m.
	CheckInterval Duration `yaml:"check_interval"`
}

// CleanerConfig is the YAML block cleaner: the log cleaner that compacts topics with
// cleanup.policy compact.
type CleanerConfig struct {
	// DedupeBufferBytes (cleaner.dedupe_buffer_bytes) is the memory budget of the cleaner's
	// key map (Kafka's log.cleaner.dedupe.buffer.size). Default 16 MiB; 64 KiB to 4 GiB.
	DedupeBufferBytes int64 `yaml:"dedupe_buffer_bytes"`
	// Backoff (cleaner.backoff) is the cleaner's sleep when nothing needs compaction (Kafka's
	// log.cleaner.backoff.ms). Default 15s; 10ms to 1h.
	Backoff Duration `yaml:"backoff"`
	// IOBytesPerSecond (cleaner.io_bytes_per_second) caps what the cleaner reads plus writes
	// per second, so compaction leaves an SD card's bandwidth to producers. Default 0
	// (unlimited); 0 to 1 TiB.
	IOBytesPerSecond int64 `yaml:"io_bytes_per_second"`
}

// Defaults and limits of the disk, cleaner and retention keys.
const (
	defaultMinFreeBytes      = 256 << 20
	defaultMinFreePercent    = 2
	defaultDiskCheckInterval = time.Second
	defaultDedupeBufferBytes = 16 << 20
	defaultCleanerBackoff    = 15 * time.Second
	defaultRetentionCheck    = 30 * time.Second

	maxMinFreeBytes      = 1 << 50 // 1 PiB
	maxMinFreePercent    = 99
	minDiskCheckInterval = 10 * time.Millisecond
	maxDiskCheckInterval = time.Minute
	minDedupeBufferBytes = 64 << 10
	maxDedupeBufferBytes = 4 << 30
	minCleanerBackoff    = 10 * time.Millisecond
	maxCleanerBackoff    = time.Hour
	maxCleanerIOBytes    = 1 << 40
	minRetentionCheck    = 10 * time.Millisecond
	maxRetentionCheck    = 24 * time.Hour
	sectionSep           = "."
)

// defaultDiskConfig returns the disk: block's defaults.
func defaultDiskConfig() DiskConfig {
	return DiskConfig{
		MinFreeBytes:   defaultMinFreeBytes,
		MinFreePercent: defaultMinFreePercent,
		CheckInterval:  Duration(defaultDiskCheckInterval),
	}
}

// defaultCleanerConfig returns the cleaner: block's defaults.
func defaultCleanerConfig() CleanerConfig {
	return CleanerConfig{
		DedupeBufferBytes: defaultDedupeBufferBytes,
		Backoff:           Duration(defaultCleanerBackoff),
	}
}

// diskFields are the disk, cleaner and retention keys of the field table, in the order of
// their Config fields. A key "section.name" is the YAML key name inside the block section: and
// the environment variable SAMSA_SECTION_NAME.
var diskFields = []field{
	int64Field(diskguard.KeyMinFreeBytes, func(c *Config) *int64 { return &c.Disk.MinFreeBytes },
		0, maxMinFreeBytes, "0: no limit"),
	floatField(diskguard.KeyMinFreePercent, func(c *Config) *float64 { return &c.Disk.MinFreePercent },
		0, maxMinFreePercent, "0: no limit"),
	durationRangeField("disk.check_interval", func(c *Config) *Duration { return &c.Disk.CheckInterval },
		minDiskCheckInterval, maxDiskCheckInterval),
	int64Field("cleaner.dedupe_buffer_bytes", func(c *Config) *int64 { return &c.Cleaner.DedupeBufferBytes },
		minDedupeBufferBytes, maxDedupeBufferBytes, ""),
	durationRangeField("cleaner.backoff", func(c *Config) *Duration { return &c.Cleaner.Backoff },
		minCleanerBackoff, maxCleanerBackoff),
	int64Field("cleaner.io_bytes_per_second", func(c *Config) *int64 { return &c.Cleaner.IOBytesPerSecond },
		0, maxCleanerIOBytes, "0: unlimited"),
	durationRangeField("retention_check_interval", func(c *Config) *Duration { return &c.RetentionCheckInterval },
		minRetentionCheck, maxRetentionCheck),
}

// configSection reports whether key names a YAML block of keys (disk, cleaner).
func configSection(key string) bool {
	for i := range fields {
		if section, _, ok := strings.Cut(fields[i].key, sectionSep); ok && section == key {
			return true
		}
	}
	return false
}

// sectionKeys lists the keys inside a block, without the section prefix.
func sectionKeys(section string) []string {
	var keys []string
	for i := range fields {
		if s, name, ok := strings.Cut(fields[i].key, sectionSep); ok && s == section {
			keys = append(keys, name)
		}
	}
	return keys
}

// envName is the environment variable of a key: SAMSA_ + the key in upper case, dots as '_'.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, sectionSep, "_"))
}

func int64Field(key string, get func(*Config) *int64, lo, hi int64, note string) field {
	allowed := fmt.Sprintf("an integer from %d to %d", lo, hi)
	if note != "" {
		allowed += " (" + note + ")"
	}
	return newField(key, allowed, get,
		func(s string) (int64, bool) {
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			return v, err == nil
		},
		func(v int64) bool { return v >= lo && v <= hi },
		func(v int64) string { return strconv.FormatInt(v, 10) })
}

func floatField(key string, get func(*Config) *float64, lo, hi float64, note string) field {
	allowed := fmt.Sprintf("a number from %g to %g", lo, hi)
	if note != "" {
		allowed += " (" + note + ")"
	}
	return newField(key, allowed, get,
		func(s string) (float64, bool) {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			return v, err == nil
		},
		func(v float64) bool { return v >= lo && v <= hi }, // false for NaN
		func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) })
}
