package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestOrList(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"status"}, "status"}, {[]string{"a", "b"}, "a or b"}, {[]string{"a", "b", "c"}, "a, b or c"}} {
		if got := orList(c.in); got != c.want {
			t.Errorf("orList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDispatch checks the sub-command table: the named command gets the remaining
// arguments, help goes to stdout, no argument or an unknown one is a usage error.
func TestDispatch(t *testing.T) {
	var got []string
	subs := []subcommand{
		{"one", func(_ context.Context, args []string, _, _ io.Writer) error {
			got = append([]string{"one"}, args...)
			return nil
		}},
		{"two", func(context.Context, []string, io.Writer, io.Writer) error { return errors.New("two failed") }},
	}
	usage := func(w io.Writer) { io.WriteString(w, "Usage: x\n") }
	run := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := dispatch(context.Background(), "x", subs, usage, args, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	if _, _, err := run("one", "a", "--b"); err != nil || strings.Join(got, " ") != "one a --b" {
		t.Errorf("one: %v, ran %q", err, got)
	}
	if _, _, err := run("two"); err == nil || err.Error() != "two failed" {
		t.Errorf("two: %v", err)
	}
	if stdout, _, err := run("--help"); err != nil || stdout != "Usage: x\n" {
		t.Errorf("--help: %q, %v", stdout, err)
	}
	var ue *usageError
	if _, stderr, err := run(); !errors.As(err, &ue) || stderr != "Usage: x\n" {
		t.Errorf("no sub-command: stderr %q, %v", stderr, err)
	}
	if _, _, err := run("three"); !errors.As(err, &ue) || err.Error() != `samsa x: unknown sub-command "three" (want one or two)` {
		t.Errorf("unknown sub-command: %v", err)
	}
}
