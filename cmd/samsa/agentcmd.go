package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/samsa-io/samsa/agent"
)

// agentFlags maps the agent's command-line flags to config keys. Flags override the config
// file and the environment.
var agentFlags = []struct{ flag, key, help string }{
	{"data-dir", "data_dir", "data `directory` (config key data_dir)"},
	{"kafka-addr", "kafka_addr", "Kafka listener `host:port` (config key kafka_addr)"},
	{"http-addr", "http_addr", "HTTP health/metrics `host:port` (config key http_addr)"},
	{"advertised-addr", "advertised_addr", "`host:port` clients are told to connect to (config key advertised_addr)"},
	{"disk-min-free-bytes", "disk.min_free_bytes", "refuse produce below this many free `bytes` on the data filesystem, 0 = no limit (config key disk.min_free_bytes)"},
	{"disk-min-free-percent", "disk.min_free_percent", "refuse produce below this `percent` free on the data filesystem, 0 = no limit (config key disk.min_free_percent)"},
}

// runAgent implements "samsa agent": load the config, apply flags, serve until ctx is done.
func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("agent", "agent [--config FILE] [flags]",
		"Runs an agent until SIGINT or SIGTERM, then shuts it down cleanly.\n"+
			"Configuration: built-in defaults < YAML file < SAMSA_<KEY> environment variables < flags.",
		stderr)
	configPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	values := make([]*string, len(agentFlags))
	for i, f := range agentFlags {
		values[i] = fs.String(f.flag, "", f.help)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("agent", "unexpected argument %q", pos[0])
	}

	cfg, err := agent.LoadConfig(*configPath, os.Environ())
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, f := range agentFlags {
		if !set[f.flag] {
			continue
		}
		if err := cfg.Set(f.key, *values[i]); err != nil {
			return fmt.Errorf("--%s: %w", f.flag, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	logger := newLogger(stderr, cfg)
	slog.SetDefault(logger)
	logger.Info("samsa agent starting", "version", versionString(), "config", *configPath,
		"data_dir", cfg.DataDir, "kafka_addr", cfg.KafkaAddr, "http_addr", cfg.HTTPAddr)
	if err := agent.Run(ctx, cfg, logger); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	logger.Info("samsa agent stopped")
	return nil
}

// newLogger builds the process logger from log_level and log_format (already validated).
func newLogger(w io.Writer, cfg agent.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
