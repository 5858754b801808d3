package agent

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/tiering"
)

// TieringConfig is the YAML block tiering: where closed segments of topics with
// remote.storage.enable=true are uploaded (package tiering). An empty endpoint, the default,
// turns tiering off. In the environment the keys are SAMSA_TIERING_<KEY>
// (SAMSA_TIERING_ENDPOINT, SAMSA_TIERING_SECRET_ACCESS_KEY, ...).
type TieringConfig struct {
	// Endpoint (tiering.endpoint) is the S3 service: "http://127.0.0.1:9000" for a local
	// MinIO, "https://s3.eu-west-1.amazonaws.com" for AWS; scheme, host and port only. A
	// "file:///path" endpoint keeps the objects in a local directory instead (for tests and
	// NFS mounts; created if missing). Default "": tiering off.
	Endpoint string `yaml:"endpoint"`
	// Bucket (tiering.bucket) holds the objects; required with an http(s) endpoint, where it
	// must exist. With a file:// endpoint it is optional and names a subdirectory.
	Bucket string `yaml:"bucket"`
	// Prefix (tiering.prefix) starts every object key, e.g. "site-a/gw-1", so that many
	// agents can share a bucket. Default "": objects at the top of the bucket.
	Prefix string `yaml:"prefix"`
	// Region (tiering.region) is the bucket's region. Default "": asked from the service.
	Region string `yaml:"region"`
	// AccessKeyID and SecretAccessKey (tiering.access_key_id, tiering.secret_access_key) are
	// static credentials; set both or neither. Neither: the AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY environment variables. The secret is never printed.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// CacheDir (tiering.cache_dir) holds the chunks of remote segments read back for fetches.
	// Default "": <data_dir>/tiering-cache.
	CacheDir string `yaml:"cache_dir"`
	// CacheBytes (tiering.cache_bytes) bounds the chunk cache on disk. Default 256 MiB;
	// 16 MiB (four 4 MiB chunks) to 1 TiB.
	CacheBytes int64 `yaml:"cache_bytes"`
	// ReadAheadBytes (tiering.read_ahead_bytes) bounds the chunks of remote segments held in
	// memory: fetched for reads below the local log start and ahead of sequential readers,
	// written into Fetch responses from memory and to the disk cache only when they leave
	// memory without having been read whole once. Default 32 MiB; 0 (none: every chunk goes
	// through the disk cache) or 4 MiB (one chunk) to 1 GiB. With a memory budget it is
	// lowered to a sixteenth of memory.max_bytes; below one chunk, memory holds none.
	ReadAheadBytes int64 `yaml:"read_ahead_bytes"`
	// PathStyle (tiering.path_style) forces path-style requests (http://host/bucket/key).
	// Default false: path style for every endpoint but AWS, Google and Aliyun hosts.
	PathStyle bool `yaml:"path_style"`
	// CAFile (tiering.ca_file) is a PEM file of CA certificates trusted for an https endpoint
	// besides the system roots (a MinIO with a private CA). Default "".
	CAFile string `yaml:"ca_file"`
}

// Secret is a string that is never shown: formatting it (fmt, slog) gives "<redacted>", or ""
// when it is empty.
type Secret string

const redacted = "<redacted>"

// String returns "<redacted>", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue is String, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret itself, to hand it to the object store.
func (s Secret) Reveal() string { return string(s) }

// Defaults and limits of the tiering keys.
const (
	defaultTierCacheBytes = 256 << 20
	minTierCacheBytes     = 16 << 20
	maxTierCacheBytes     = 1 << 40
	minTierReadAheadBytes = 4 << 20 // one chunk (tiering.DefaultChunkBytes)
	maxTierReadAheadBytes = 1 << 30
	defaultTierCacheDir   = "tiering-cache" // under data_dir
)

// defaultTieringConfig returns the tiering: block's defaults (tiering off).
func defaultTieringConfig() TieringConfig {
	return TieringConfig{CacheBytes: defaultTierCacheBytes, ReadAheadBytes: tiering.DefaultReadAheadBytes}
}

// TieringReadAhead is tiering.read_ahead_bytes as tiering.Config takes it (negative: none).
func (t TieringConfig) TieringReadAhead() int64 {
	if t.ReadAheadBytes <= 0 {
		return -1
	}
	return t.ReadAheadBytes
}

// Enabled reports whether an endpoint is set.
func (t TieringConfig) Enabled() bool { return t.Endpoint != "" }

// FileDir returns the directory of a file:// endpoint (with the bucket as a subdirectory),
// or "" for an http(s) endpoint.
func (t TieringConfig) FileDir() string {
	u, err := url.Parse(t.Endpoint)
	if err != nil || u.Scheme != "file" {
		return ""
	}
	return filepath.Join(filepath.FromSlash(u.Path), t.Bucket)
}

// CacheDirFor returns the cache directory: cache_dir, or <dataDir>/tiering-cache.
func (t TieringConfig) CacheDirFor(dataDir string) string {
	if t.CacheDir != "" {
		return t.CacheDir
	}
	return filepath.Join(dataDir, defaultTierCacheDir)
}

// tieringFields are the tiering keys of the field table, in the order of TieringConfig's
// fields.
var tieringFields = []field{
	stringField("tiering.endpoint", `"" (tiering off), an http(s)://host[:port] URL, or file:///absolute/dir`,
		func(c *Config) *string { return &c.Tiering.Endpoint }, endpointOK),
	stringField("tiering.bucket", "an S3 bucket name: 3 to 63 characters a-z, 0-9, '.' and '-', starting and ending with a letter or digit",
		func(c *Config) *string { return &c.Tiering.Bucket }, func(s string) bool { return s == "" || bucketOK(s) }),
	stringField("tiering.prefix", `"" or a relative key prefix such as site-a/gw-1 (no leading or trailing '/', no empty, "." or ".." parts)`,
		func(c *Config) *string { return &c.Tiering.Prefix }, prefixOK),
	stringField("tiering.region", "a region name such as us-east-1, or \"\"",
		func(c *Config) *string { return &c.Tiering.Region }, func(s string) bool { return !strings.ContainsAny(s, " \t\r\n/") }),
	stringField("tiering.access_key_id", "an access key id without spaces, or \"\" (AWS_ACCESS_KEY_ID)",
		func(c *Config) *string { return &c.Tiering.AccessKeyID }, func(s string) bool { return !strings.ContainsAny(s, " \t\r\n") }),
	secretField("tiering.secret_access_key", func(c *Config) *Secret { return &c.Tiering.SecretAccessKey }),
	stringField("tiering.cache_dir", `"" (<data_dir>/tiering-cache) or a directory path`,
		func(c *Config) *string { return &c.Tiering.CacheDir }, func(string) bool { return true }),
	int64Field("tiering.cache_bytes", func(c *Config) *int64 { return &c.Tiering.CacheBytes },
		minTierCacheBytes, maxTierCacheBytes, ""),
	readAheadBytesField("tiering.read_ahead_bytes", func(c *Config) *int64 { return &c.Tiering.ReadAheadBytes }),
	boolField("tiering.path_style", func(c *Config) *bool { return &c.Tiering.PathStyle }),
	stringField("tiering.ca_file", `"" or a PEM file path (only with an https endpoint)`,
		func(c *Config) *string { return &c.Tiering.CAFile }, func(string) bool { return true }),
}

// readAheadBytesField accepts 0 (none) or minTierReadAheadBytes..maxTierReadAheadBytes.
func readAheadBytesField(key string, get func(*Config) *int64) field {
	f := int64Field(key, get, 0, maxTierReadAheadBytes, "")
	f.allowed = fmt.Sprintf("0 (no chunks in memory) or an integer number of bytes from %d (4 MiB, one chunk) to %d (1 GiB)",
		int64(minTierReadAheadBytes), int64(maxTierReadAheadBytes))
	f.valid = func(c *Config) bool {
		v := *get(c)
		return v == 0 || (v >= minTierReadAheadBytes && v <= maxTierReadAheadBytes)
	}
	return f
}

// secretField is a string field whose value never appears in messages.
func secretField(key string, get func(*Config) *Secret) field {
	return newField(key, "any string (never shown)", get,
		func(s string) (Secret, bool) { return Secret(s), true },
		func(Secret) bool { return true },
		Secret.String)
}

// validateTiering checks what a single key cannot: the keys an endpoint needs.
func (c Config) validateTiering() error {
	t := &c.Tiering
	bad := func(key, value, allowed string) error {
		return fmt.Errorf("config key %q: %w %q (allowed: %s)", key, ErrInvalidValue, value, allowed)
	}
	if !t.Enabled() {
		return nil
	}
	https := strings.HasPrefix(t.Endpoint, "https://")
	if t.FileDir() != "" {
		if t.CAFile != "" {
			return bad("tiering.ca_file", t.CAFile, `"" with a file:// endpoint`)
		}
		return nil
	}
	if t.Bucket == "" {
		return bad("tiering.bucket", "", "a bucket name; required when tiering.endpoint is set")
	}
	if t.CAFile != "" && !https {
		return bad("tiering.ca_file", t.CAFile, `"" unless tiering.endpoint is https`)
	}
	if t.AccessKeyID != "" && t.SecretAccessKey == "" {
		return bad("tiering.secret_access_key", "", "set when tiering.access_key_id is set (or neither: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if t.AccessKeyID == "" && t.SecretAccessKey != "" {
		return bad("tiering.access_key_id", "", "set when tiering.secret_access_key is set (or neither: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	return nil
}

// endpointOK accepts "", http(s)://host[:port][/] and file:///absolute/dir.
func endpointOK(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		if u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			return false
		}
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			return err == nil && n != 0 && p == strconv.FormatUint(n, 10)
		}
		return !strings.HasSuffix(u.Host, ":")
	case "file":
		return (u.Host == "" || u.Host == "localhost") && strings.HasPrefix(u.Path, "/") && len(u.Path) > 1
	}
	return false
}

// bucketOK follows S3's bucket naming rules (the strict ones, which MinIO applies too).
func bucketOK(s string) bool {
	if len(s) < 3 || len(s) > 63 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9'
		if !alnum && ((i == 0 || i == len(s)-1) || (ch != '.' && ch != '-')) {
			return false
		}
	}
	return true
}

// prefixOK accepts "" or slash-separated parts, none empty, "." or "..".
func prefixOK(s string) bool {
	if s == "" {
		return true
	}
	for part := range strings.SplitSeq(s, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsRune(part, 0) {
			return false
		}
	}
	return true
}
