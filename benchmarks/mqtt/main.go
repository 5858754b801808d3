// Command mqtt measures the MQTT bridge's ingest rate against the ceiling Mosquitto sets.
//
// One Mosquitto (Debian's, started by internal/testmosquitto with the settings the README
// recommends for a bridge: max_inflight_messages 1000 = the bridge's max_in_flight,
// max_queued_messages unlimited, set_tcp_nodelay true) serves every measurement. For QoS 0 and
// QoS 1, alternating, -rounds times each:
//
//   - ceiling: a plain paho subscriber (filter bench/+/data at the same QoS, automatic
//     acknowledgements) counts and discards the messages;
//   - samsa: an in-process agent (fresh data directory, -fsync) with one bridge on the same
//     filter and QoS into the topic mqtt-bench; a message counts once the log holds it (the
//     high watermark summed over the partitions, polled every millisecond). At QoS 1 the bridge
//     acknowledges a message to Mosquitto only once its record is under the high watermark.
//
// The load is the same for both: -publishers paho clients publish -messages messages of
// -payload random bytes (-topics device topics, round robin) at full speed at the same QoS,
// each keeping up to 1000 publishes outstanding. The rate is N ÷ the time from the first
// message's arrival to the N-th. Reported: medians; targets from issue 7 (samsa ≥ 80 % of the
// ceiling at QoS 0, ≥ 50 % at QoS 1); the CPU of Mosquitto and of this process (publishers +
// subscriber, or publishers + agent) per measurement.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testmosquitto"
)

type options struct {
	messages   int
	payload    int
	publishers int
	topics     int
	rounds     int
	fsync      string
	dir        string
	jsonPath   string
	logOut     io.Writer
}

func main() { benchkit.Main("mqtt", run) }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{logOut: stderr}
	fs := flag.NewFlagSet("mqtt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.messages, "messages", 200_000, "messages per measurement")
	fs.IntVar(&o.payload, "payload", 100, "payload `BYTES`")
	fs.IntVar(&o.publishers, "publishers", 8, "publishing paho clients")
	fs.IntVar(&o.topics, "topics", 100, "MQTT device topics")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per QoS and sink (medians reported)")
	fs.StringVar(&o.fsync, "fsync", "interval", "the agent's fsync mode: always, interval or never")
	fs.StringVar(&o.dir, "dir", "", "parent `DIR` of the temporary directories (default $TMPDIR)")
	fs.StringVar(&o.jsonPath, "json", "", "also write every number as JSON to `FILE`")
	if err := benchkit.ParseFlags(fs, args); err != nil {
		return o, err
	}
	if o.messages < 1 || o.payload < 1 || o.publishers < 1 || o.topics < 1 || o.rounds < 1 {
		return o, errors.New("-messages, -payload, -publishers, -topics and -rounds must be positive")
	}
	switch o.fsync {
	case "always", "interval", "never":
	default:
		return o, fmt.Errorf("-fsync %q: want always, interval or never", o.fsync)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	bin, err := testmosquitto.FindBinary()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dir, "samsa-mqtt-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	srv, err := testmosquitto.Launch(bin, work, testmosquitto.Options{MaxInflightMessages: 1000})
	if srv != nil {
		defer srv.Stop()
	}
	if err != nil {
		return fmt.Errorf("mosquitto: %w", err)
	}
	mosqPID := srv.PID()
	rep := newReport(args, o, bin)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "mqtt: "+format+"\n", a...) }
	for _, qos := range []byte{0, 1} {
		l := newLoad(srv.URL, o, qos)
		res := &rep.Results[qos]
		for r := range o.rounds {
			tag := fmt.Sprintf("q%d-r%d", qos, r+1)
			c, err := ceiling(l, mosqPID, tag)
			if err != nil {
				return fmt.Errorf("QoS %d round %d: %w\nmosquitto output:\n%s", qos, r+1, err, srv.Output())
			}
			logf("QoS %d round %d: ceiling %.0f msgs/s", qos, r+1, c.MsgsPerS)
			s, err := samsa(ctx, l, o, mosqPID, tag)
			if err != nil {
				return fmt.Errorf("QoS %d round %d: %w\nmosquitto output:\n%s", qos, r+1, err, srv.Output())
			}
			logf("QoS %d round %d: samsa %.0f msgs/s", qos, r+1, s.MsgsPerS)
			res.Ceiling, res.Samsa = append(res.Ceiling, c), append(res.Samsa, s)
		}
	}
	rep.summarize()
	rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		return benchkit.WriteJSON(o.jsonPath, rep)
	}
	return nil
}
