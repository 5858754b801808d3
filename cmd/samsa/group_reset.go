package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// resetSpec is a parsed "reset-offsets" command.
type resetSpec struct {
	group      string
	topic      string
	partitions []int32 // nil: all
	to         string  // earliest, latest, offset, datetime
	offset     int64
	millis     int64
	execute    bool
}

func groupResetOffsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group reset-offsets",
		"group reset-offsets GROUP --topic T[:P,P...] --to earliest|latest|offset N|datetime TIME [--execute]",
		"Sets a group's committed offsets for a topic (or some of its partitions). Without --execute it only\n"+
			"shows what it would commit (a dry run). As with Kafka's tool, the group must have no members.\n"+
			"TIME is RFC 3339 (2026-01-02T15:04:05Z), local 2026-01-02T15:04:05, or Unix milliseconds; the new\n"+
			"offset is the first record at or after it. An offset N outside the log is clamped to its start or end.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	topic := fs.String("topic", "", "`T` or T:P,P... (partitions) to reset (required)")
	to := fs.String("to", "", "where to: `earliest`, latest, offset N or datetime TIME (required)")
	execute := fs.Bool("execute", false, "commit the new offsets (default: dry run)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	spec, err := parseResetSpec(fs, pos, *topic, *to)
	if err != nil {
		return err
	}
	spec.execute = *execute
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return resetOffsets(s, spec, stdout)
}

// parseResetSpec checks the arguments: GROUP, then the value of "--to offset" or "--to
// datetime" (also accepted as offset=N, datetime=TIME).
func parseResetSpec(fs *cmdFlags, pos []string, topic, to string) (*resetSpec, error) {
	spec := &resetSpec{}
	if len(pos) == 0 {
		return nil, usagef(fs.Name(), "missing GROUP")
	}
	spec.group, pos = pos[0], pos[1:]
	kind, value, hasValue := strings.Cut(to, "=")
	if !hasValue && len(pos) > 0 {
		value, hasValue, pos = pos[0], true, pos[1:]
	}
	if len(pos) > 0 {
		return nil, usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	spec.to = kind
	switch {
	case kind == "earliest" || kind == "latest":
		if hasValue {
			return nil, usagef(fs.Name(), "--to %s takes no value, got %q", kind, value)
		}
	case kind == "offset" && hasValue:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return nil, usagef(fs.Name(), "--to offset wants a non-negative integer, got %q", value)
		}
		spec.offset = n
	case kind == "datetime" && hasValue:
		t, err := parseGroupTime(value)
		if err != nil {
			return nil, usagef(fs.Name(), "--to %v", err)
		}
		spec.millis = t.UnixMilli()
	case kind == "offset" || kind == "datetime":
		return nil, usagef(fs.Name(), "--to %s needs a value: --to %s %s", kind, kind, map[string]string{"offset": "N", "datetime": "TIME"}[kind])
	default:
		return nil, usagef(fs.Name(), "--to must be earliest, latest, offset N or datetime TIME, got %q", to)
	}
	name, parts, hasParts := strings.Cut(topic, ":")
	if name == "" {
		return nil, usagef(fs.Name(), "--topic is required")
	}
	spec.topic = name
	if hasParts {
		for p := range strings.SplitSeq(parts, ",") {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return nil, usagef(fs.Name(), "--topic %s: bad partition %q", topic, p)
			}
			spec.partitions = append(spec.partitions, int32(n))
		}
	}
	return spec, nil
}

// resetOffsets computes the new offsets, prints them and commits them with --execute.
func resetOffsets(s *adminSession, spec *resetSpec, stdout io.Writer) error {
	described, err := s.adm.DescribeGroups(s.ctx, spec.group)
	if err == nil {
		if d := described[spec.group]; d.Err != nil {
			err = d.Err
		} else if d.State != "Empty" && d.State != "Dead" {
			return fmt.Errorf("reset offsets of group %q: it is %s with %d members; offsets can only be reset while it has none (stop its consumers first)",
				spec.group, d.State, len(d.Members))
		}
	}
	if err != nil {
		return fmt.Errorf("reset offsets of group %q: %w", spec.group, err)
	}
	plan, err := planReset(s, spec)
	if err != nil {
		return fmt.Errorf("reset offsets of group %q: %w", spec.group, err)
	}
	current, err := s.adm.FetchOffsets(s.ctx, spec.group)
	if err != nil {
		return fmt.Errorf("reset offsets of group %q: committed offsets: %w", spec.group, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	offsets := kadm.Offsets{}
	for _, p := range slices.Sorted(maps.Keys(plan)) {
		cur := "-"
		if o, ok := current.Lookup(spec.topic, p); ok && o.Err == nil && o.At >= 0 {
			cur = strconv.FormatInt(o.At, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", spec.group, spec.topic, p, cur, plan[p])
		offsets.Add(kadm.Offset{Topic: spec.topic, Partition: p, At: plan[p], LeaderEpoch: -1})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !spec.execute {
		fmt.Fprintln(stdout, "\ndry run: nothing committed; add --execute to commit these offsets")
		return nil
	}
	if err := s.adm.CommitAllOffsets(s.ctx, spec.group, offsets); err != nil {
		return fmt.Errorf("reset offsets of group %q: commit: %w", spec.group, err)
	}
	fmt.Fprintf(stdout, "\ncommitted %d offsets for group %s\n", len(offsets[spec.topic]), spec.group)
	return nil
}

// planReset returns the new offset of every partition to reset.
func planReset(s *adminSession, spec *resetSpec) (map[int32]int64, error) {
	starts, err := s.adm.ListStartOffsets(s.ctx, spec.topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", spec.topic, err)
	}
	ends, err := s.adm.ListEndOffsets(s.ctx, spec.topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", spec.topic, err)
	}
	var atTime kadm.ListedOffsets
	if spec.to == "datetime" {
		if atTime, err = s.adm.ListOffsetsAfterMilli(s.ctx, spec.millis, spec.topic); err != nil {
			return nil, fmt.Errorf("offsets of %s at the datetime: %w", spec.topic, err)
		}
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("topic %s: %w", spec.topic, err)
	}
	plan := map[int32]int64{}
	var missing []int32
	for _, p := range spec.partitions {
		if _, ok := ends.Lookup(spec.topic, p); !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("topic %s has no partition %v: %w", spec.topic, missing, kerr.UnknownTopicOrPartition)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if spec.partitions != nil && !slices.Contains(spec.partitions, e.Partition) {
			return
		}
		start, _ := starts.Lookup(spec.topic, e.Partition)
		switch spec.to {
		case "earliest":
			plan[e.Partition] = start.Offset
		case "latest":
			plan[e.Partition] = e.Offset
		case "offset":
			plan[e.Partition] = min(max(spec.offset, start.Offset), e.Offset)
		case "datetime":
			plan[e.Partition] = e.Offset
			if o, ok := atTime.Lookup(spec.topic, e.Partition); ok && o.Err == nil && o.Offset >= 0 {
				plan[e.Partition] = o.Offset
			}
		}
	})
	return plan, nil
}
