package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RunFunc is a whole benchmark program: it parses args, measures, and prints its report to
// stdout and its progress to stderr. Tests call it directly.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs run with the command-line arguments and a context cancelled by SIGINT or SIGTERM,
// and exits: 2 after -h (flag.ErrHelp), 1 after another error (printed as "name: error").
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Logf returns a printf for progress lines on w, each starting with the time of day.
func Logf(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// WorkDir creates a new temporary directory in parent (the system's when empty) named after
// pattern (see os.MkdirTemp). remove deletes it again, unless keep is set.
func WorkDir(parent, pattern string, keep bool) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", nil, fmt.Errorf("work directory: %w", err)
	}
	return dir, func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}, nil
}

// BytesVar defines a flag of a number of bytes: a whole or decimal number with an optional
// suffix B, KiB, MiB or GiB (powers of 2) or KB, MB or GB (powers of 10), e.g. 512MiB.
// Negative sizes are refused.
func BytesVar(fs *flag.FlagSet, p *int64, name, usage string) {
	fs.Var(byteSize{p}, name, usage)
}

// byteSize is the flag.Value of BytesVar.
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return FormatBytes(*b.n)
}

func (b byteSize) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b.n = n
	return nil
}

// ParseBytes parses a size as BytesVar takes it.
func ParseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	if v, err := strconv.ParseInt(num, 10, 64); err == nil && v >= 0 {
		return v * mult, nil
	}
	if v, err := strconv.ParseFloat(num, 64); err == nil && v >= 0 && v*float64(mult) < 1<<62 {
		return int64(v * float64(mult)), nil
	}
	return 0, fmt.Errorf("%q: want bytes, optionally with a KiB, MiB or GiB (or KB, MB, GB) suffix", s)
}

// ParseFlags parses args with fs and refuses positional arguments: the benchmarks take flags
// only.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
