package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

func TestTieringConfigDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.Tiering.Enabled() {
		t.Fatal("tiering is on by default")
	}
	if c.Tiering != (TieringConfig{CacheBytes: 256 << 20, ReadAheadBytes: 32 << 20}) {
		t.Fatalf("defaults: %+v", c.Tiering)
	}
	if got, want := c.Tiering.CacheDirFor("/data"), filepath.Join("/data", "tiering-cache"); got != want {
		t.Fatalf("default cache dir %q, want %q", got, want)
	}
	c.Tiering.CacheDir = "/cache"
	if got := c.Tiering.CacheDirFor("/data"); got != "/cache" {
		t.Fatalf("cache dir %q", got)
	}
}

func TestTieringConfigYAML(t *testing.T) {
	p := writeFile(t, `data_dir: /d
tiering:
  endpoint: http://127.0.0.1:9000
  bucket: samsa-archive
  prefix: site-a/gw-1
  region: us-east-1
  access_key_id: AKIDEXAMPLE
  secret_access_key: wJalrXUtnFEMI/K7MDENG
  cache_dir: /var/cache/samsa
  cache_bytes: 33554432
  read_ahead_bytes: 8388608
  path_style: true
`)
	c, err := LoadConfig(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := TieringConfig{Endpoint: "http://127.0.0.1:9000", Bucket: "samsa-archive", Prefix: "site-a/gw-1",
		Region: "us-east-1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG",
		CacheDir: "/var/cache/samsa", CacheBytes: 32 << 20, ReadAheadBytes: 8 << 20, PathStyle: true}
	if c.Tiering != want {
		t.Fatalf("got %+v", c.Tiering)
	}
	if !c.Tiering.Enabled() || c.Tiering.FileDir() != "" {
		t.Fatalf("enabled %v, file dir %q", c.Tiering.Enabled(), c.Tiering.FileDir())
	}

	// Keys may be left out (the environment provides the credentials) and a block may be empty.
	c, err = LoadConfig(writeFile(t, "tiering:\n  endpoint: https://s3.eu-west-1.amazonaws.com\n  bucket: b-1.x\n  ca_file: /etc/ca.pem\n"), nil)
	if err != nil || c.Tiering.CacheBytes != 256<<20 || c.Tiering.CAFile != "/etc/ca.pem" {
		t.Fatalf("partial block: %+v, %v", c.Tiering, err)
	}
	if c, err = LoadConfig(writeFile(t, "tiering:\n"), nil); err != nil || c.Tiering != defaultTieringConfig() {
		t.Fatalf("empty block: %+v, %v", c.Tiering, err)
	}

	// A directory endpoint needs no bucket; a bucket is a subdirectory of it.
	c, err = LoadConfig(writeFile(t, "tiering:\n  endpoint: file:///mnt/archive\n"), nil)
	if err != nil || c.Tiering.FileDir() != "/mnt/archive" {
		t.Fatalf("file endpoint: %q, %v", c.Tiering.FileDir(), err)
	}
	c.Tiering.Bucket = "b1x"
	if c.Tiering.FileDir() != "/mnt/archive/b1x" {
		t.Fatalf("file endpoint with a bucket: %q", c.Tiering.FileDir())
	}
}

func TestTieringConfigEnvAndSet(t *testing.T) {
	env := []string{
		"SAMSA_TIERING_ENDPOINT=http://minio.local:9000/",
		"SAMSA_TIERING_BUCKET=archive",
		"SAMSA_TIERING_PREFIX=gw-7",
		"SAMSA_TIERING_REGION=eu-central-1",
		"SAMSA_TIERING_ACCESS_KEY_ID=minio",
		"SAMSA_TIERING_SECRET_ACCESS_KEY=minio-secret",
		"SAMSA_TIERING_CACHE_DIR=/tmp/c",
		"SAMSA_TIERING_CACHE_BYTES=16777216",
		"SAMSA_TIERING_READ_AHEAD_BYTES=0",
		"SAMSA_TIERING_PATH_STYLE=true",
		"SAMSA_HTTP=127.0.0.1:1", // the CLI's variable, not a config key
	}
	c, err := LoadConfig(writeFile(t, "tiering:\n  bucket: other\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	want := TieringConfig{Endpoint: "http://minio.local:9000/", Bucket: "archive", Prefix: "gw-7", Region: "eu-central-1",
		AccessKeyID: "minio", SecretAccessKey: "minio-secret", CacheDir: "/tmp/c", CacheBytes: 16 << 20, PathStyle: true}
	if c.Tiering != want {
		t.Fatalf("got %+v", c.Tiering)
	}
	if c.Tiering.TieringReadAhead() >= 0 {
		t.Fatalf("read_ahead_bytes 0 passed to the Tierer as %d, want negative (none)", c.Tiering.TieringReadAhead())
	}
	if err := c.Set("tiering.cache_bytes", "1073741824"); err != nil || c.Tiering.CacheBytes != 1<<30 {
		t.Fatalf("Set: %v, %d", err, c.Tiering.CacheBytes)
	}
	if err := c.Set("tiering.endpoint", ""); err != nil || c.Tiering.Enabled() {
		t.Fatalf("Set endpoint empty: %v", err)
	}
}

// TestTieringConfigInvalidValues: each key rejects bad values naming the key (or variable), the
// value and what is allowed.
func TestTieringConfigInvalidValues(t *testing.T) {
	endpoint := lookupField("tiering.endpoint").allowed
	bucket := lookupField("tiering.bucket").allowed
	prefix := lookupField("tiering.prefix").allowed
	readAhead := "0 (no chunks in memory) or an integer number of bytes from 4194304 (4 MiB, one chunk) to 1073741824 (1 GiB)"
	for _, tt := range []struct{ key, value, allowed string }{
		{"tiering.endpoint", "127.0.0.1:9000", endpoint},
		{"tiering.endpoint", "ftp://host", endpoint},
		{"tiering.endpoint", "http://", endpoint},
		{"tiering.endpoint", "http://host:0", endpoint},
		{"tiering.endpoint", "http://host:70000", endpoint},
		{"tiering.endpoint", "http://host:9000/bucket", endpoint},
		{"tiering.endpoint", "http://user:pw@host", endpoint},
		{"tiering.endpoint", "https://host?x=1", endpoint},
		{"tiering.endpoint", "file://relative/dir", endpoint},
		{"tiering.endpoint", "file:///", endpoint},
		{"tiering.bucket", "ab", bucket},
		{"tiering.bucket", "Upper", bucket},
		{"tiering.bucket", "-dash", bucket},
		{"tiering.bucket", "a..b", bucket},
		{"tiering.bucket", "under_score", bucket},
		{"tiering.prefix", "/abs", prefix},
		{"tiering.prefix", "trailing/", prefix},
		{"tiering.prefix", "a//b", prefix},
		{"tiering.prefix", "a/../b", prefix},
		{"tiering.region", "us east", lookupField("tiering.region").allowed},
		{"tiering.cache_bytes", "16777215", "an integer from 16777216 to 1099511627776"},
		{"tiering.cache_bytes", "256MiB", "an integer from 16777216 to 1099511627776"},
		{"tiering.path_style", "yes", "true, false"},
		{"tiering.read_ahead_bytes", "4194303", readAhead},
		{"tiering.read_ahead_bytes", "1073741825", readAhead},
		{"tiering.read_ahead_bytes", "-1", readAhead},
		{"tiering.read_ahead_bytes", "16MiB", readAhead},
	} {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			tail := `: invalid value "` + tt.value + `" (allowed: ` + tt.allowed + `)`
			env := envName(tt.key)
			_, err := LoadConfig("", []string{env + "=" + tt.value})
			if want := "environment variable " + env + tail; err == nil || err.Error() != want {
				t.Errorf("env: got %v\nwant %s", err, want)
			}
			section, name, _ := strings.Cut(tt.key, ".")
			p := writeFile(t, section+":\n  "+name+": '"+tt.value+"'\n")
			_, err = LoadConfig(p, nil)
			if want := "config file " + p + `: key "` + tt.key + `" (line 2)` + tail; err == nil || err.Error() != want {
				t.Errorf("file: got %v\nwant %s", err, want)
			}
			c := DefaultConfig()
			if !lookupField(tt.key).set(&c, tt.value) {
				return
			}
			err = c.Validate()
			if want := `config key "` + tt.key + `"` + tail; err == nil || err.Error() != want {
				t.Errorf("Validate: got %v\nwant %s", err, want)
			}
		})
	}
}

// TestTieringConfigCrossChecks: what one key cannot check alone.
func TestTieringConfigCrossChecks(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bucket required", "tiering:\n  endpoint: http://127.0.0.1:9000\n",
			`config key "tiering.bucket": invalid value "" (allowed: a bucket name; required when tiering.endpoint is set)`},
		{"secret without id", "tiering:\n  endpoint: http://h:1\n  bucket: bbb\n  secret_access_key: s3cr3t-value\n",
			`config key "tiering.access_key_id": invalid value ""`},
		{"id without secret", "tiering:\n  endpoint: http://h:1\n  bucket: bbb\n  access_key_id: id\n",
			`config key "tiering.secret_access_key": invalid value ""`},
		{"ca_file over http", "tiering:\n  endpoint: http://h:1\n  bucket: bbb\n  ca_file: /ca.pem\n",
			`config key "tiering.ca_file": invalid value "/ca.pem" (allowed: "" unless tiering.endpoint is https)`},
		{"ca_file with a directory", "tiering:\n  endpoint: file:///x\n  ca_file: /ca.pem\n",
			`config key "tiering.ca_file": invalid value "/ca.pem"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.yaml)
			_, err := LoadConfig(p, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s...", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("%v is not ErrInvalidValue", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the secret is in the error: %v", err)
			}
		})
	}
	// Without an endpoint the other keys are not checked against each other.
	if _, err := LoadConfig(writeFile(t, "tiering:\n  access_key_id: id\n  ca_file: /ca.pem\n"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestTieringSecretNeverShown: the secret does not appear when the config is formatted or
// logged, nor in the messages about it.
func TestTieringSecretNeverShown(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
	c, err := LoadConfig("", []string{"SAMSA_TIERING_ENDPOINT=http://h:9000", "SAMSA_TIERING_BUCKET=bkt",
		"SAMSA_TIERING_ACCESS_KEY_ID=id", "SAMSA_TIERING_SECRET_ACCESS_KEY=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tiering.SecretAccessKey.Reveal() != secret {
		t.Fatal("secret not loaded")
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "tiering", c.Tiering, "secret", c.Tiering.SecretAccessKey)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "secret", c.Tiering.SecretAccessKey)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Tiering.SecretAccessKey), logged.String(),
		lookupField("tiering.secret_access_key").show(&c)} {
		if strings.Contains(s, secret) {
			t.Fatalf("secret shown in %s", s)
		}
		if !strings.Contains(s, "<redacted>") {
			t.Fatalf("no <redacted> in %s", s)
		}
	}
	// A secret in the wrong form is reported without its value.
	p := writeFile(t, "tiering:\n  secret_access_key: ["+secret+"]\n")
	if _, err := LoadConfig(p, nil); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("got %v", err)
	}
}

// The README's tiering example loads and turns tiering on.
func TestREADMETieringExampleLoads(t *testing.T) {
	cfg := loadREADMEExample(t, "### Tiered storage")
	if !cfg.Tiering.Enabled() || cfg.Tiering.Bucket != "samsa-archive" || cfg.Tiering.CacheBytes != 256<<20 || cfg.Tiering.ReadAheadBytes != 32<<20 {
		t.Fatalf("README example read as %+v", cfg.Tiering)
	}
}
