package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groupCommands are the sub-commands of "samsa group".
var groupCommands = []subcommand{
	{"list", groupList}, {"describe", groupDescribe}, {"reset-offsets", groupResetOffsets}, {"delete", groupDelete},
}

// runGroup dispatches "samsa group <sub-command>".
func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "group", groupCommands, printGroupUsage, args, stdout, stderr)
}

func printGroupUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  samsa group list [--state STATE]...
  samsa group describe GROUP
  samsa group reset-offsets GROUP --topic T[:P,P...] --to earliest|latest|offset N|datetime TIME [--execute]
  samsa group delete GROUP

All take --brokers host:port,... (default $SAMSA_BROKERS, else 127.0.0.1:9092) and --timeout.
Run 'samsa group SUBCOMMAND -h' for details.
`)
}

func groupList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group list", "group list [flags]", "Lists consumer groups with their state, sorted by name.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	var states listFlag
	fs.Var(&states, "state", "only groups in `STATE`: Empty, Stable, PreparingRebalance, CompletingRebalance (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	groups, err := s.adm.ListGroups(s.ctx, states...)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, g := range groups.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, orDash(g.ProtocolType))
	}
	return tw.Flush()
}

func groupDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group describe", "group describe GROUP [flags]",
		"Shows a group's state and members, and per partition its committed offset, the log end offset and the lag.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	name, err := parseOne(fs, args, "GROUP")
	if err != nil {
		return err
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	lags, err := s.adm.Lag(s.ctx, name)
	if err != nil {
		return fmt.Errorf("describe group %q: %w", name, err)
	}
	l, ok := lags[name]
	if !ok {
		return fmt.Errorf("describe group %q: %w", name, kerr.GroupIDNotFound)
	}
	if err := l.Error(); err != nil {
		return fmt.Errorf("describe group %q: %w", name, err)
	}
	if l.State == "Dead" {
		return fmt.Errorf("group %q does not exist", name)
	}
	fmt.Fprintf(stdout, "Group: %s\nState: %s\nProtocol: %s/%s\nMembers: %d\n\n", name, l.State,
		orDash(l.ProtocolType), orDash(l.Protocol), len(l.Members))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(l.Members) > 0 {
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range l.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost, assignedText(m))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER")
	for _, p := range l.Lag.Sorted() {
		member, cur, lag := "-", "-", "-"
		if p.Member != nil {
			member = p.Member.MemberID
		}
		if p.Commit.At >= 0 {
			cur = strconv.FormatInt(p.Commit.At, 10)
		}
		if p.Lag >= 0 {
			lag = strconv.FormatInt(p.Lag, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", p.Topic, p.Partition, cur, p.End.Offset, lag, member)
	}
	return tw.Flush()
}

// assignedText shows a consumer member's assignment as topic[p,p] ..., or "-".
func assignedText(m kadm.DescribedGroupMember) string {
	c, ok := m.Assigned.AsConsumer()
	if !ok || len(c.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range c.Topics {
		ps := slices.Sorted(slices.Values(t.Partitions))
		nums := make([]string, len(ps))
		for i, p := range ps {
			nums[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t.Topic+"["+strings.Join(nums, ",")+"]")
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func groupDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group delete", "group delete GROUP [flags]",
		"Deletes a group and its committed offsets. The group must have no members.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	name, err := parseOne(fs, args, "GROUP")
	if err != nil {
		return err
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	resp, err := s.adm.DeleteGroup(s.ctx, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("delete group %q: it has active members; stop its consumers first (%w)", name, err)
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("delete group %q: no such group (%w)", name, err)
	case err != nil:
		return fmt.Errorf("delete group %q: %w", name, errMessage(err, resp.ErrMessage))
	}
	fmt.Fprintf(stdout, "deleted group %s\n", name)
	return nil
}

// parseGroupTime parses a --to datetime: RFC 3339, a local "2006-01-02T15:04:05[.000]" as
// Kafka's tool takes, or Unix milliseconds.
func parseGroupTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("datetime %q: want RFC 3339 (2026-01-02T15:04:05Z), local 2026-01-02T15:04:05 or Unix milliseconds", s)
}
