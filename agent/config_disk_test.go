package agent

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDiskConfigYAML(t *testing.T) {
	p := writeFile(t, `data_dir: /d
disk:
  min_free_bytes: 1048576
  min_free_percent: 0.5
  check_interval: 250ms
cleaner:
  dedupe_buffer_bytes: 65536
  backoff: 2s
  io_bytes_per_second: 10485760
retention_check_interval: 5s
`)
	c, err := LoadConfig(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantDisk := DiskConfig{MinFreeBytes: 1 << 20, MinFreePercent: 0.5, CheckInterval: Duration(250 * time.Millisecond)}
	wantCleaner := CleanerConfig{DedupeBufferBytes: 64 << 10, Backoff: Duration(2 * time.Second), IOBytesPerSecond: 10 << 20}
	if c.Disk != wantDisk || c.Cleaner != wantCleaner || c.RetentionCheckInterval.Duration() != 5*time.Second {
		t.Fatalf("got disk %+v cleaner %+v retention_check_interval %v", c.Disk, c.Cleaner, c.RetentionCheckInterval)
	}

	// A block may set some keys (the others keep their defaults), be empty, or disable the guard.
	c, err = LoadConfig(writeFile(t, "disk:\n  min_free_bytes: 0\n  min_free_percent: 0\ncleaner:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (DiskConfig{CheckInterval: Duration(time.Second)}); c.Disk != want || c.Cleaner != defaultCleanerConfig() {
		t.Fatalf("got disk %+v cleaner %+v", c.Disk, c.Cleaner)
	}
	// The dotted key, as in messages and Set, is accepted at the top level too.
	c, err = LoadConfig(writeFile(t, "disk.min_free_percent: 10\n"), nil)
	if err != nil || c.Disk.MinFreePercent != 10 || c.Disk.MinFreeBytes != 256<<20 {
		t.Fatalf("dotted key: %+v, %v", c.Disk, err)
	}
}

func TestDiskConfigYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key in block", "disk:\n  min_free: 1\n",
			`unknown key "min_free" in disk: (line 2); allowed keys there: min_free_bytes, min_free_percent, check_interval`},
		{"block not a mapping", "cleaner: 5\n",
			`key "cleaner" (line 1): invalid value: want a mapping of the keys dedupe_buffer_bytes, backoff, io_bytes_per_second`},
		{"block repeated", "disk:\n  min_free_bytes: 1\ndisk:\n  min_free_percent: 1\n", `key "disk" repeated (lines 1 and 3)`},
		{"key repeated in two forms", "disk:\n  min_free_bytes: 1\ndisk.min_free_bytes: 2\n",
			`key "disk.min_free_bytes" repeated (lines 2 and 3)`},
		{"bad value in block", "disk:\n  check_interval: 5ms\n",
			`key "disk.check_interval" (line 2): invalid value "5ms" (allowed: a duration from 10ms to 1m such as 500ms or 2s, or integer milliseconds)`},
		{"block key listed", "disks: {}\n", `allowed keys: data_dir,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeFile(t, tc.text), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want it to contain %s", err, tc.want)
			}
		})
	}
	_, err := LoadConfig(writeFile(t, "disks: {}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "disk.min_free_bytes, disk.min_free_percent") {
		t.Fatalf("unknown key error does not list the block keys: %v", err)
	}
}

func TestDiskConfigEnvAndSet(t *testing.T) {
	env := []string{
		"SAMSA_DISK_MIN_FREE_BYTES=0",
		"SAMSA_DISK_MIN_FREE_PERCENT=7.5",
		"SAMSA_DISK_CHECK_INTERVAL=100ms",
		"SAMSA_CLEANER_DEDUPE_BUFFER_BYTES=1048576",
		"SAMSA_CLEANER_BACKOFF=1500",
		"SAMSA_CLEANER_IO_BYTES_PER_SECOND=4096",
		"SAMSA_RETENTION_CHECK_INTERVAL=1m",
	}
	c, err := LoadConfig(writeFile(t, "disk:\n  min_free_bytes: 1000\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Disk = DiskConfig{MinFreeBytes: 0, MinFreePercent: 7.5, CheckInterval: Duration(100 * time.Millisecond)}
	want.Cleaner = CleanerConfig{DedupeBufferBytes: 1 << 20, Backoff: Duration(1500 * time.Millisecond), IOBytesPerSecond: 4096}
	want.RetentionCheckInterval = Duration(time.Minute)
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	// Flags go through Set with the dotted key.
	if err := c.Set("disk.min_free_bytes", "1073741824"); err != nil || c.Disk.MinFreeBytes != 1<<30 {
		t.Fatalf("Set: %v, %d", err, c.Disk.MinFreeBytes)
	}
	err = c.Set("disk.min_free_percent", "100")
	if err == nil || err.Error() != `config key "disk.min_free_percent": invalid value "100" (allowed: a number from 0 to 99 (0: no limit))` {
		t.Fatalf("Set bad percent: %v", err)
	}
	if c.Disk.MinFreePercent != 7.5 {
		t.Fatalf("failed Set changed the value to %v", c.Disk.MinFreePercent)
	}
	// The old-style name of a block key is not a variable.
	_, err = LoadConfig("", []string{"SAMSA_DISK.MIN_FREE_BYTES=1"})
	if err == nil || !strings.Contains(err.Error(), "SAMSA_DISK_MIN_FREE_BYTES") {
		t.Fatalf("unknown variable error does not list SAMSA_DISK_MIN_FREE_BYTES: %v", err)
	}
}

// TestDiskConfigInvalidValues: each new key rejects bad values naming the key (or variable),
// the value and what is allowed, from the environment, a file's block and Validate.
func TestDiskConfigInvalidValues(t *testing.T) {
	const durs = " such as 500ms or 2s, or integer milliseconds"
	tests := []struct{ key, value, allowed string }{
		{"disk.min_free_bytes", "-1", "an integer from 0 to 1125899906842624 (0: no limit)"},
		{"disk.min_free_bytes", "256MiB", "an integer from 0 to 1125899906842624 (0: no limit)"},
		{"disk.min_free_percent", "-0.1", "a number from 0 to 99 (0: no limit)"},
		{"disk.min_free_percent", "99.5", "a number from 0 to 99 (0: no limit)"},
		{"disk.min_free_percent", "NaN", "a number from 0 to 99 (0: no limit)"},
		{"disk.min_free_percent", "two", "a number from 0 to 99 (0: no limit)"},
		{"disk.check_interval", "0", "a duration from 10ms to 1m" + durs},
		{"disk.check_interval", "2m", "a duration from 10ms to 1m" + durs},
		{"cleaner.dedupe_buffer_bytes", "65535", "an integer from 65536 to 4294967296"},
		{"cleaner.dedupe_buffer_bytes", "4294967297", "an integer from 65536 to 4294967296"},
		{"cleaner.backoff", "1ms", "a duration from 10ms to 1h" + durs},
		{"cleaner.io_bytes_per_second", "-1", "an integer from 0 to 1099511627776 (0: unlimited)"},
		{"retention_check_interval", "0", "a duration from 10ms to 24h" + durs},
		{"retention_check_interval", "25h", "a duration from 10ms to 24h" + durs},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			tail := `: invalid value "` + tt.value + `" (allowed: ` + tt.allowed + `)`
			env := envName(tt.key)
			_, err := LoadConfig("", []string{env + "=" + tt.value})
			if want := "environment variable " + env + tail; err == nil || err.Error() != want {
				t.Errorf("env: got %v\nwant %s", err, want)
			}
			yaml, line := tt.key+": '"+tt.value+"'\n", "1"
			if section, name, ok := strings.Cut(tt.key, "."); ok {
				yaml, line = section+":\n  "+name+": '"+tt.value+"'\n", "2"
			}
			p := writeFile(t, yaml)
			_, err = LoadConfig(p, nil)
			if want := "config file " + p + `: key "` + tt.key + `" (line ` + line + `)` + tail; err == nil || err.Error() != want {
				t.Errorf("file: got %v\nwant %s", err, want)
			}
			c := DefaultConfig()
			f := lookupField(tt.key)
			if !f.set(&c, tt.value) {
				return
			}
			err = c.Validate()
			if want := `config key "` + tt.key + `": invalid value "` + f.show(&c) + `" (allowed: ` + tt.allowed + `)`; err == nil || err.Error() != want {
				t.Errorf("Validate: got %v\nwant %s", err, want)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("Validate error %v is not ErrInvalidValue", err)
			}
		})
	}
}
