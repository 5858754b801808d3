package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// beforeHighWatermark is the --before value (and DeleteRecords offset) meaning "everything up
// to the high watermark".
const beforeHighWatermark = -1

// deleteRecordsSpec is a parsed "topic delete-records" command.
type deleteRecordsSpec struct {
	topic     string
	partition int32 // -1: all partitions
	before    int64 // -1: the high watermark
}

func topicDeleteRecords(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic delete-records", "topic delete-records NAME [--partition P] --before OFFSET|-1|hwm",
		"Deletes the records below OFFSET (Kafka's DeleteRecords): the partition's start offset moves up to it,\n"+
			"consumers can no longer read below it, and segment files wholly below it are removed from disk.\n"+
			"-1 or hwm means the high watermark: every record in the partition. An OFFSET at or below the\n"+
			"current start changes nothing. Without --partition every partition is emptied, so --before must\n"+
			"then be -1 or hwm. Prints each partition's new start offset (its low watermark).", stderr)
	var cf clientFlags
	cf.register(fs, timeoutHelp)
	partition := fs.Int("partition", -1, "partition `P` (-1: all partitions, with --before -1)")
	before := fs.String("before", "", "delete records below `OFFSET`; -1 or hwm: the high watermark (required)")
	name, err := parseOne(fs, args, "topic NAME")
	if err != nil {
		return err
	}
	spec, err := parseDeleteRecords(fs.Name(), name, *partition, *before)
	if err != nil {
		return err
	}
	s, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return deleteRecords(s, spec, stdout)
}

// parseDeleteRecords checks the flags of "topic delete-records".
func parseDeleteRecords(cmd, topic string, partition int, before string) (*deleteRecordsSpec, error) {
	spec := &deleteRecordsSpec{topic: topic}
	if partition < -1 || partition > math.MaxInt32 {
		return nil, usagef(cmd, "--partition must be -1 (all partitions) or a partition number, got %d", partition)
	}
	spec.partition = int32(partition)
	switch before {
	case "":
		return nil, usagef(cmd, "missing --before OFFSET (an offset, or -1 or hwm for the high watermark)")
	case "hwm", "-1":
		spec.before = beforeHighWatermark
	default:
		n, err := strconv.ParseInt(before, 10, 64)
		if err != nil || n < 0 {
			return nil, usagef(cmd, "--before: invalid value %q (allowed: an offset of 0 or more, -1 or hwm for the high watermark)", before)
		}
		spec.before = n
	}
	if spec.partition < 0 && spec.before != beforeHighWatermark {
		return nil, usagef(cmd, "--before %s needs --partition: offsets differ between partitions, so without --partition --before must be -1 or hwm", before)
	}
	return spec, nil
}

// deleteRecords runs a parsed delete-records command and prints each partition's new start.
func deleteRecords(s *adminSession, spec *deleteRecordsSpec, stdout io.Writer) error {
	topics, err := s.adm.ListTopics(s.ctx, spec.topic)
	if err != nil {
		return fmt.Errorf("delete records of %q: %w", spec.topic, err)
	}
	td, ok := topics[spec.topic]
	if !ok {
		return fmt.Errorf("delete records of %q: %w", spec.topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return fmt.Errorf("delete records of %q: %w", spec.topic, td.Err)
	}
	parts := td.Partitions.Numbers()
	slices.Sort(parts)
	if spec.partition >= 0 {
		if !slices.Contains(parts, spec.partition) {
			return fmt.Errorf("delete records of %q: --partition %d: the topic has partitions 0..%d: %w",
				spec.topic, spec.partition, len(parts)-1, kerr.UnknownTopicOrPartition)
		}
		parts = []int32{spec.partition}
	}
	offsets := kadm.Offsets{}
	for _, p := range parts {
		offsets.Add(kadm.Offset{Topic: spec.topic, Partition: p, At: spec.before})
	}
	rs, err := s.adm.DeleteRecords(s.ctx, offsets)
	if err != nil {
		return fmt.Errorf("delete records of %q: %w", spec.topic, err)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLOW-WATERMARK")
	var failed []string
	var firstErr error
	for _, p := range parts {
		r, err := rs.On(spec.topic, p, nil)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			failed = append(failed, strconv.Itoa(int(p)))
			if firstErr == nil {
				firstErr = fmt.Errorf("partition %d: %w%s", p, err, outOfRangeHint(s, spec, p, err))
			}
			fmt.Fprintf(tw, "%d\terror: %v\n", p, err)
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\n", p, r.LowWatermark)
	}
	switch {
	case len(failed) == 0:
		return tw.Flush()
	case len(failed) == len(parts) && len(parts) == 1:
		// Nothing to show: the error says it all.
	default:
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	what := "before " + strconv.FormatInt(spec.before, 10)
	if spec.before == beforeHighWatermark {
		what = "up to the high watermark"
	}
	if len(parts) > 1 {
		return fmt.Errorf("delete records of %q %s: %d of %d partitions failed (%s); %w",
			spec.topic, what, len(failed), len(parts), strings.Join(failed, ", "), firstErr)
	}
	return fmt.Errorf("delete records of %q %s: %w", spec.topic, what, firstErr)
}

// outOfRangeHint says which offsets a partition holds when an offset was refused as out of
// range; it is empty for other errors or when the offsets cannot be listed.
func outOfRangeHint(s *adminSession, spec *deleteRecordsSpec, p int32, err error) string {
	if !errors.Is(err, kerr.OffsetOutOfRange) {
		return ""
	}
	ends, lerr := s.adm.ListEndOffsets(s.ctx, spec.topic)
	if lerr != nil {
		return ""
	}
	end, ok := ends.Lookup(spec.topic, p)
	if !ok || end.Err != nil {
		return ""
	}
	return fmt.Sprintf(" (--before must be at most the high watermark %d)", end.Offset)
}

// humanBytes renders a byte count with binary units: "512 B", "12.3 MiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const units = "KMGTPE"
	v, i := float64(n)/1024, 0
	for math.Round(v*10)/10 >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// logDirSize is the size on disk of a partition's log on its leader, or "?" when the leader did
// not describe it.
func logDirSize(all kadm.DescribedAllLogDirs, leader int32, topic string, p int32) string {
	for _, d := range all[leader].Sorted() {
		if d.Err != nil {
			continue
		}
		if dp, ok := d.Topics.Lookup(topic, p); ok && !dp.IsFuture {
			return humanBytes(dp.Size)
		}
	}
	return "?"
}
