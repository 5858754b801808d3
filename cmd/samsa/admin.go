package main

import (
	"context"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// What the admin commands ("samsa topic ...", "samsa group ...") share: finding the
// sub-command, parsing its one positional argument, and a kadm session with a deadline.

// timeoutHelp documents --timeout of the admin commands.
const timeoutHelp = "give up on the request after this `duration`"

// subcommand is one "samsa NOUN VERB" command: its name and what runs it with the arguments
// after the name.
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// dispatch runs the sub-command of "samsa noun" that args[0] names. Without arguments it
// prints usage to stderr and fails with a usage error; -h, -help, --help and help print it to
// stdout.
func dispatch(ctx context.Context, noun string, subs []subcommand, usage func(io.Writer), args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return &usageError{cmd: noun}
	}
	name, rest := args[0], args[1:]
	names := make([]string, len(subs))
	for i, sc := range subs {
		if sc.name == name {
			return sc.run(ctx, rest, stdout, stderr)
		}
		names[i] = sc.name
	}
	switch name {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	return usagef(noun, "unknown sub-command %q (want %s)", name, orList(names))
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// adminSession is a kadm client with a deadline; close releases both.
type adminSession struct {
	adm    *kadm.Client
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *adminSession) close() {
	s.cancel()
	s.adm.Close()
}

// admin connects a kadm client with the flags' brokers; its requests share the --timeout
// deadline.
func (c *clientFlags) admin(ctx context.Context) (*adminSession, error) {
	if c.timeout <= 0 {
		return nil, usagef("topic", "--timeout must be positive, got %s", c.timeout)
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return &adminSession{adm: kadm.NewClient(cl), ctx: ctx, cancel: cancel}, nil
}

// parseOne parses flags and exactly one non-empty positional argument, named by label
// ("topic NAME", "GROUP") in usage errors.
func parseOne(fs *cmdFlags, args []string, label string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	switch {
	case len(pos) == 0:
		return "", usagef(fs.Name(), "missing %s", label)
	case len(pos) > 1:
		return "", usagef(fs.Name(), "want one %s, got %d arguments: %s", label, len(pos), strings.Join(pos, " "))
	case pos[0] == "":
		return "", usagef(fs.Name(), "%s must not be empty", label)
	}
	return pos[0], nil
}

// orDash is s, or "-" for an empty s (a table cell).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
