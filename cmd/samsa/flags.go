package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBrokers is used when neither --brokers nor $SAMSA_BROKERS is set.
const defaultBrokers = "127.0.0.1:9092"

// cmdFlags is the flag set of one command. Parse errors are returned, not printed: the caller
// prints one line and a hint; -h prints the full usage.
type cmdFlags struct {
	*flag.FlagSet
	synopsis, about string
	out             io.Writer // where -h prints the usage
}

// newFlagSet returns the flag set for "samsa <cmd>". synopsis is the usage line after
// "samsa ", e.g. "topic create NAME [flags]".
func newFlagSet(cmd, synopsis, about string, out io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, synopsis: synopsis, about: about, out: out}
}

// printUsage writes the synopsis, description and flags.
func (fs *cmdFlags) printUsage() {
	fmt.Fprintf(fs.out, "Usage: samsa %s\n\n%s\n", fs.synopsis, fs.about)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(fs.out, "\nFlags:")
			first = false
		}
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

// parseArgs parses flags wherever they appear among args ("topic create NAME --partitions 3"
// as well as "topic create --partitions 3 NAME") and returns the positional arguments.
// Everything after a "--" that is not a flag's value is positional.
func parseArgs(fs *cmdFlags, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage()
				return nil, err
			}
			return nil, usagef(fs.Name(), "%v", err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" && !isFlagValue(fs, args, consumed-1) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isFlagValue reports whether args[i] is the separate value of the flag in args[i-1].
func isFlagValue(fs *cmdFlags, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || prev == "--" || strings.Contains(prev, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// kvFlag is a repeatable key=value flag (--config k=v, --set k=v, --header k=v).
type kvFlag struct {
	pairs    [][2]string
	allowDup bool // headers may repeat a key; configs may not
}

func (f *kvFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(f.pairs))
	for i, p := range f.pairs {
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, ",")
}

// Set adds one key=value; the value may contain '=' and may be empty, the key may not.
func (f *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value")
	}
	if !f.allowDup && slices.ContainsFunc(f.pairs, func(p [2]string) bool { return p[0] == k }) {
		return fmt.Errorf("key %q given twice", k)
	}
	f.pairs = append(f.pairs, [2]string{k, v})
	return nil
}

// listFlag is a repeatable string flag (--delete k).
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

// Set adds one non-empty value.
func (f *listFlag) Set(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	*f = append(*f, s)
	return nil
}

// choiceFlag is a string flag restricted to a fixed set of values.
type choiceFlag struct {
	value   string
	allowed []string
}

func newChoice(def string, allowed ...string) *choiceFlag {
	return &choiceFlag{value: def, allowed: allowed}
}

func (f *choiceFlag) String() string {
	if f == nil {
		return ""
	}
	return f.value
}

// Set accepts one of the allowed values.
func (f *choiceFlag) Set(s string) error {
	if !slices.Contains(f.allowed, s) {
		return fmt.Errorf("allowed: %s", strings.Join(f.allowed, ", "))
	}
	f.value = s
	return nil
}

// clientFlags are the connection flags shared by the admin commands.
type clientFlags struct {
	brokers string
	timeout time.Duration
}

// register adds --brokers (default $SAMSA_BROKERS, else 127.0.0.1:9092) and, when timeoutHelp
// is not empty, --timeout.
func (c *clientFlags) register(fs *cmdFlags, timeoutHelp string) {
	def := os.Getenv("SAMSA_BROKERS")
	if def == "" {
		def = defaultBrokers
	}
	fs.StringVar(&c.brokers, "brokers", def, "comma-separated `host:port` list of seed brokers ($SAMSA_BROKERS)")
	c.timeout = 15 * time.Second
	if timeoutHelp != "" {
		fs.DurationVar(&c.timeout, "timeout", c.timeout, timeoutHelp)
	}
}

// seeds splits --brokers into host:port entries.
func (c *clientFlags) seeds() ([]string, error) {
	var out []string
	for b := range strings.SplitSeq(c.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no brokers given (--brokers or $SAMSA_BROKERS)")
	}
	return out, nil
}

// client opens a franz-go client for the brokers, with franz-go's defaults (idempotent
// writes included) unless opts say otherwise.
func (c *clientFlags) client(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := c.seeds()
	if err != nil {
		return nil, err
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("samsa-cli"),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// errMessage appends a broker's optional error message to err's text.
func errMessage(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}
