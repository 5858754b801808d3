// Command samsa runs a samsa agent (a Kafka-compatible broker for edge devices) and
// administers one with Kafka clients: topics, producing from stdin and consuming to stdout.
//
//	samsa agent   [--config FILE] [--data-dir D] [--kafka-addr A] [--http-addr A] [--advertised-addr A]
//	samsa topic   create|list|describe|alter|delete|delete-records ...
//	samsa group   list|describe|reset-offsets|delete ...
//	samsa produce --topic T ...
//	samsa consume --topic T ...
//	samsa tier    status [TOPIC] [--http A]
//	samsa version
//	samsa help [COMMAND]
//
// Exit status: 0 on success, 1 on a runtime or configuration error (one line on stderr),
// 2 on a command-line usage error.
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
	"syscall"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default behaviour: a second one kills the process
	// even if a clean shutdown hangs.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program minus process setup, so tests can call it in-process. It returns
// the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "agent":
		err = runAgent(ctx, rest, stderr)
	case "topic":
		err = runTopic(ctx, rest, stdout, stderr)
	case "group":
		err = runGroup(ctx, rest, stdout, stderr)
	case "produce":
		err = runProduce(ctx, rest, stdin, stderr)
	case "consume":
		err = runConsume(ctx, rest, stdout, stderr)
	case "tier":
		err = runTier(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			// "samsa help topic create" is "samsa topic create -h", printed to stdout.
			return run(ctx, append(rest, "-h"), stdin, stdout, stdout)
		}
		printUsage(stdout)
	default:
		fmt.Fprintf(stderr, "samsa: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return exitUsage
	}
	return exitCode(err, stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `samsa is a Kafka-compatible streaming broker for edge devices.

Usage:
  samsa agent [--config FILE] [--data-dir D] [--kafka-addr A] [--http-addr A] [--advertised-addr A]
                                        run an agent until SIGINT/SIGTERM
  samsa topic create NAME [flags]       create a topic
  samsa topic list                      list topics and their partition counts
  samsa topic describe NAME             show partitions (offsets, records, size on disk) and configs
  samsa topic alter NAME [flags]        change topic configs or the partition count
  samsa topic delete NAME               delete a topic
  samsa topic delete-records NAME --before OFFSET [--partition P]
                                        delete the records below an offset (-1/hwm: all)
  samsa group list                      list consumer groups and their states
  samsa group describe GROUP            show members, committed offsets and lag
  samsa group reset-offsets GROUP [flags]
                                        move committed offsets (dry run unless --execute)
  samsa group delete GROUP              delete a group and its offsets
  samsa produce --topic T [flags]       produce one record per stdin line
  samsa consume --topic T [flags]       print records to stdout
  samsa tier status [TOPIC]             tiered storage per partition: local and remote ranges, upload backlog
  samsa version                         print the version
  samsa help [COMMAND]                  show help (also: samsa COMMAND -h)

Admin commands connect to --brokers (default $SAMSA_BROKERS, else 127.0.0.1:9092);
tier status asks the agent's --http address (default $SAMSA_HTTP, else 127.0.0.1:9644).
The agent reads a YAML file, then SAMSA_<KEY> environment variables, then flags.
`)
}

func versionString() string {
	v := version
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("samsa %s%s (%s, %s/%s)", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// usageError is a command-line mistake: exit status 2. An empty msg means the flag package has
// already reported it.
type usageError struct {
	cmd string // e.g. "topic create"
	msg string
}

func (e *usageError) Error() string { return "samsa " + e.cmd + ": " + e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// exitCode reports err on stderr and maps it to an exit status.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "%s\nRun 'samsa %s -h' for usage.\n", ue.Error(), ue.cmd)
		}
		return exitUsage
	default:
		fmt.Fprintf(stderr, "samsa: %v\n", err)
		return exitError
	}
}
