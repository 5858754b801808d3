// Command samsa-cloud reads the segments samsa agents archive in S3 or MinIO, with no broker
// running.
//
//	samsa-cloud ls    --bucket B [--endpoint URL] [--prefix P] [--topic T] [--format table|json]
//	samsa-cloud query --bucket B [--endpoint URL] [--prefix P] --topic T [--partition N]
//	                  [--from-offset N] [--to-offset N] [--since TIME] [--until TIME]
//	                  [--key K] [--limit N] [--format jsonl|csv|raw] [--skip-corrupt] ...
//	samsa-cloud serve --bucket B [--endpoint URL] [--prefix P] [--listen ADDR] ...
//	samsa-cloud version
//	samsa-cloud help [COMMAND]
//
// Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE and the shared files, SSO, web identity, container and instance roles).
// Records go to stdout; progress and a summary line to stderr.
//
// Exit status: 0 on success, 1 on an error (one line on stderr: a missing bucket or
// credentials, an unknown topic, an empty range, corrupt data, ...), 2 on a command-line
// usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/samsa-io/samsa/cloud"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is a subcommand: run gets the arguments after its name.
type command struct {
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	summary string // one line for the command list
}

// commands are the subcommands, one line each. A subcommand in another file may also add
// itself from an init function: commands["serve"] = command{run: runServe, summary: "..."}.
var commands = map[string]command{
	"ls":    {run: runLs, summary: "list archived topics, partitions and segments"},
	"query": {run: runQuery, summary: "print archived records (JSON lines, CSV or raw values)"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills the process
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program minus process setup, so tests can call it in-process. It returns
// the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if _, ok := commands[rest[0]]; ok {
				return run(ctx, []string{rest[0], "-h"}, stdout, stdout)
			}
		}
		printUsage(stdout)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "samsa-cloud: unknown command %q\n\n", name)
		printUsage(stderr)
		return exitUsage
	}
	return exitCode(cmd.run(ctx, rest, stdout, stderr), stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "samsa-cloud reads the segments samsa agents archive in S3 or MinIO; no broker needed.\n\nUsage:\n")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(w, "  samsa-cloud %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprint(w, `  samsa-cloud version  print the version
  samsa-cloud help [COMMAND]
                       show help (also: samsa-cloud COMMAND -h)

Every command takes --bucket B and optionally --endpoint URL (MinIO and other S3-compatible
services: path-style requests, region us-east-1 unless --region) and --prefix P (the agents'
tiering.prefix). Credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or --profile) and the shared files, SSO, web identity,
container and instance roles; --no-sign-request reads a public bucket.
`)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("samsa-cloud %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// usageError is a command-line mistake: exit status 2.
type usageError struct {
	cmd string // e.g. "query"
	msg string
}

func (e *usageError) Error() string { return "samsa-cloud " + e.cmd + ": " + e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// exitCode reports err on stderr, on one line, and maps it to an exit status.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s (run 'samsa-cloud %s -h' for usage)\n", oneLine(ue.Error()), ue.cmd)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "samsa-cloud: interrupted")
		return exitError
	default:
		fmt.Fprintf(stderr, "samsa-cloud: %s\n", oneLine(err.Error()))
		return exitError
	}
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cmdFlags is the flag set of a command and its usage text.
type cmdFlags struct {
	*flag.FlagSet
	synopsis string
	out      io.Writer // where -h prints the usage
}

// newFlagSet returns a flag set for "samsa-cloud <cmd>" that returns parse errors instead of
// printing them, and prints its usage to out on -h.
func newFlagSet(cmd, synopsis string, out io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, synopsis: synopsis, out: out}
}

// printUsage writes the synopsis and the flags.
func (fs *cmdFlags) printUsage() {
	fmt.Fprintf(fs.out, "Usage: samsa-cloud %s\n\nFlags:\n", fs.synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n        " + usage
		switch f.DefValue {
		case "", "false", "0":
		default:
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintln(fs.out, line)
	})
}

// parseFlags parses args, which must hold flags only; -h prints the usage.
func parseFlags(fs *cmdFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.printUsage()
			return err
		}
		return usagef(fs.Name(), "%v", err)
	}
	if fs.NArg() > 0 {
		return usagef(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// storeFlags are the flags that say where the archive is; every command has them.
type storeFlags struct {
	cfg cloud.Config
}

// addStoreFlags defines --endpoint, --bucket, --prefix, --region, --profile, --path-style and
// --no-sign-request on fs.
func addStoreFlags(fs *cmdFlags) *storeFlags {
	s := &storeFlags{}
	fs.StringVar(&s.cfg.Endpoint, "endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO (default: AWS S3)")
	fs.StringVar(&s.cfg.Bucket, "bucket", "", "bucket the agents upload to (required)")
	fs.StringVar(&s.cfg.Prefix, "prefix", "", "key prefix the agents upload under (their tiering.prefix)")
	fs.StringVar(&s.cfg.Region, "region", "", "bucket region (default: AWS_REGION or the profile's; us-east-1 with --endpoint)")
	fs.StringVar(&s.cfg.Profile, "profile", "", "shared AWS config profile (default: AWS_PROFILE or default)")
	fs.BoolVar(&s.cfg.PathStyle, "path-style", false, "path-style requests (always on with --endpoint)")
	fs.BoolVar(&s.cfg.Anonymous, "no-sign-request", false, "send unsigned requests (a public bucket)")
	return s
}

// open checks the flags and opens the archive.
func (s *storeFlags) open(ctx context.Context, cmd string) (*cloud.Archive, error) {
	if s.cfg.Bucket == "" {
		return nil, usagef(cmd, "--bucket is required")
	}
	a, err := cloud.Open(ctx, s.cfg)
	if errors.Is(err, cloud.ErrBadConfig) {
		return nil, usagef(cmd, "%v", err)
	}
	return a, err
}
