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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicCommands are the sub-commands of "samsa topic".
var topicCommands = []subcommand{
	{"create", topicCreate}, {"list", topicList}, {"describe", topicDescribe},
	{"alter", topicAlter}, {"delete", topicDelete}, {"delete-records", topicDeleteRecords},
}

// runTopic dispatches "samsa topic <sub-command>".
func runTopic(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "topic", topicCommands, printTopicUsage, args, stdout, stderr)
}

func printTopicUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  samsa topic create NAME [--partitions N] [--replication-factor N] [--config k=v]... [--if-not-exists]
  samsa topic list [--internal]
  samsa topic describe NAME
  samsa topic alter NAME [--set k=v]... [--delete k]... [--partitions N]
  samsa topic delete NAME [--if-exists]
  samsa topic delete-records NAME [--partition P] --before OFFSET|-1|hwm

All take --brokers host:port,... (default $SAMSA_BROKERS, else 127.0.0.1:9092) and --timeout.
Run 'samsa topic SUBCOMMAND -h' for details.
`)
}

func topicCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic create", "topic create NAME [flags]", "Creates a topic.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	partitions := fs.Int("partitions", -1, "number of partitions `N` (-1: the broker's default_partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition `N` (-1: the broker's default)")
	configs := &kvFlag{}
	fs.Var(configs, "config", "topic config `key=value` such as retention.ms=86400000 (repeatable)")
	ifNotExists := fs.Bool("if-not-exists", false, "succeed if the topic already exists")
	name, err := parseOne(fs, args, "topic NAME")
	if err != nil {
		return err
	}
	if *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1 {
		return usagef(fs.Name(), "--partitions must be -1 or at least 1, got %d", *partitions)
	}
	if *rf == 0 || *rf < -1 || *rf > 1<<15-1 {
		return usagef(fs.Name(), "--replication-factor must be -1 or at least 1, got %d", *rf)
	}
	cfgs := map[string]*string{}
	for _, p := range configs.pairs {
		cfgs[p[0]] = kadm.StringPtr(p[1])
	}

	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	resp, err := s.adm.CreateTopic(s.ctx, int32(*partitions), int16(*rf), cfgs, name)
	if errors.Is(err, kerr.TopicAlreadyExists) && *ifNotExists {
		fmt.Fprintf(stdout, "topic %s already exists\n", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create topic %q: %w", name, errMessage(err, resp.ErrMessage))
	}
	if resp.NumPartitions > 0 {
		fmt.Fprintf(stdout, "created topic %s with %d partitions\n", name, resp.NumPartitions)
	} else {
		fmt.Fprintf(stdout, "created topic %s\n", name)
	}
	return nil
}

func topicList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic list", "topic list [flags]", "Lists topics and their partition counts, sorted by name.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	internal := fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
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
	list := s.adm.ListTopics
	if *internal {
		list = s.adm.ListTopicsWithInternal
	}
	topics, err := list(s.ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPARTITIONS")
	for _, t := range topics.Sorted() {
		if t.Err != nil {
			fmt.Fprintf(stderr, "samsa: topic %q: %v\n", t.Topic, t.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\n", t.Topic, len(t.Partitions))
	}
	return tw.Flush()
}

func topicDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic describe", "topic describe NAME [flags]",
		"Shows a topic's partitions and configs. Per partition: its leader, start offset (the first record\n"+
			"still stored), end offset (the high watermark), records (end - start: an upper bound, since\n"+
			"compaction leaves gaps) and the size of its segment files on the leader's disk.\n"+
			"Configs marked * are not built-in defaults (set on the topic or by the broker).", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	name, err := parseOne(fs, args, "topic NAME")
	if err != nil {
		return err
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()

	topics, err := s.adm.ListTopics(s.ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %q: %w", name, err)
	}
	td, ok := topics[name]
	if !ok {
		return fmt.Errorf("describe topic %q: %w", name, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return fmt.Errorf("describe topic %q: %w", name, td.Err)
	}
	starts, err := s.adm.ListStartOffsets(s.ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %q: start offsets: %w", name, err)
	}
	ends, err := s.adm.ListEndOffsets(s.ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %q: end offsets: %w", name, err)
	}
	var set kadm.TopicsSet
	set.Add(name, td.Partitions.Numbers()...)
	dirs, err := s.adm.DescribeAllLogDirs(s.ctx, set)
	if err != nil {
		// Sizes are extra information: show the rest.
		fmt.Fprintf(stderr, "samsa: describe topic %q: sizes on disk: %v\n", name, err)
	}
	configs, err := s.adm.DescribeTopicConfigs(s.ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %q: configs: %w", name, err)
	}
	rc, err := configs.On(name, nil)
	if err == nil && rc.Err != nil {
		err = errMessage(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return fmt.Errorf("describe topic %q: configs: %w", name, err)
	}

	fmt.Fprintf(stdout, "Topic: %s\nPartitions: %d\n\n", name, len(td.Partitions))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tSTART\tEND\tRECORDS\tSIZE")
	for _, p := range td.Partitions.Sorted() {
		leader := strconv.Itoa(int(p.Leader))
		if p.Leader < 0 {
			leader = "none"
		}
		if p.Err != nil {
			leader += " (" + p.Err.Error() + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, leader,
			offsetText(starts, name, p.Partition), offsetText(ends, name, p.Partition),
			recordsText(starts, ends, name, p.Partition), logDirSize(dirs, p.Leader, name, p.Partition))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, " \tCONFIG\tVALUE\tSOURCE")
	cs := slices.Clone(rc.Configs)
	slices.SortFunc(cs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
	for _, c := range cs {
		mark := " "
		if c.Source != kmsg.ConfigSourceDefaultConfig && c.Source != kmsg.ConfigSourceUnknown {
			mark = "*"
		}
		value := c.MaybeValue()
		if c.Sensitive {
			value = "(sensitive)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, c.Key, value, sourceName(c.Source))
	}
	return tw.Flush()
}

// offsetText is a listed offset or the reason it is missing.
func offsetText(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return "?"
	case o.Err != nil:
		return "error: " + o.Err.Error()
	}
	return strconv.FormatInt(o.Offset, 10)
}

// recordsText is end - start of a partition, or "?" when either offset is missing.
func recordsText(starts, ends kadm.ListedOffsets, topic string, p int32) string {
	s, ok1 := starts.Lookup(topic, p)
	e, ok2 := ends.Lookup(topic, p)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
		return "?"
	}
	return strconv.FormatInt(e.Offset-s.Offset, 10)
}

// sourceName is a short name for where a config value comes from.
func sourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "cluster"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "broker-config"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

func topicAlter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic alter", "topic alter NAME [--set k=v]... [--delete k]... [--partitions N]",
		"Changes topic configs (IncrementalAlterConfigs) and/or raises the partition count (CreatePartitions).\n"+
			"--delete reverts a config to its default.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	sets := &kvFlag{}
	fs.Var(sets, "set", "set topic config `key=value` (repeatable)")
	var deletes listFlag
	fs.Var(&deletes, "delete", "revert topic config `key` to its default (repeatable)")
	partitions := fs.Int("partitions", 0, "new total number of partitions `N` (can only grow)")
	name, err := parseOne(fs, args, "topic NAME")
	if err != nil {
		return err
	}
	if len(sets.pairs) == 0 && len(deletes) == 0 && *partitions == 0 {
		return usagef(fs.Name(), "nothing to change: give --set, --delete or --partitions")
	}
	if *partitions < 0 || *partitions > 1<<31-1 {
		return usagef(fs.Name(), "--partitions must be at least 1, got %d", *partitions)
	}
	var ops []kadm.AlterConfig
	for _, p := range sets.pairs {
		ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: p[0], Value: kadm.StringPtr(p[1])})
	}
	for _, k := range deletes {
		if slices.ContainsFunc(sets.pairs, func(p [2]string) bool { return p[0] == k }) {
			return usagef(fs.Name(), "config %q is both set and deleted", k)
		}
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}

	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if *partitions > 0 {
		rs, err := s.adm.UpdatePartitions(s.ctx, *partitions, name)
		if err == nil {
			r, ok := rs[name]
			switch {
			case !ok:
				err = errors.New("topic missing from the response")
			case r.Err != nil:
				err = errMessage(r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return fmt.Errorf("alter topic %q: set partitions to %d: %w", name, *partitions, err)
		}
		fmt.Fprintf(stdout, "topic %s: partitions set to %d\n", name, *partitions)
	}
	if len(ops) > 0 {
		rs, err := s.adm.AlterTopicConfigs(s.ctx, ops, name)
		if err == nil {
			var r kadm.AlterConfigsResponse
			r, err = rs.On(name, nil)
			if err == nil && r.Err != nil {
				err = errMessage(r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return fmt.Errorf("alter topic %q: configs: %w", name, err)
		}
		fmt.Fprintf(stdout, "topic %s: configs altered (%s)\n", name, describeOps(ops))
	}
	return nil
}

func describeOps(ops []kadm.AlterConfig) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		if op.Op == kadm.DeleteConfig {
			parts[i] = "deleted " + op.Name
		} else {
			parts[i] = "set " + op.Name + "=" + *op.Value
		}
	}
	return strings.Join(parts, ", ")
}

func topicDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic delete", "topic delete NAME [flags]", "Deletes a topic and its data.", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	ifExists := fs.Bool("if-exists", false, "succeed if the topic does not exist")
	name, err := parseOne(fs, args, "topic NAME")
	if err != nil {
		return err
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	resp, err := s.adm.DeleteTopic(s.ctx, name)
	if errors.Is(err, kerr.UnknownTopicOrPartition) && *ifExists {
		fmt.Fprintf(stdout, "topic %s does not exist\n", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete topic %q: %w", name, errMessage(err, resp.ErrMessage))
	}
	fmt.Fprintf(stdout, "deleted topic %s\n", name)
	return nil
}
