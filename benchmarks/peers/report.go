package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// report is the whole output: where it ran, with what, and the numbers.
type report struct {
	Meta    meta           `json:"meta"`
	Options map[string]any `json:"options"`
	Results []serverResult `json:"results"`
	Targets []targetCheck  `json:"targets"`
}

type meta struct {
	benchkit.Machine
	SamsaVersion      string            `json:"samsa_version"`
	NATSServerVersion string            `json:"nats_server_version"`
	Clients           map[string]string `json:"clients"`
	PacerBaseline     latencyResult     `json:"pacer_baseline"`
}

func collectMeta(args []string) meta {
	m := meta{Machine: benchkit.DescribeMachine("peers", args), Clients: map[string]string{}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/twmb/franz-go", "github.com/nats-io/nats.go":
				m.Clients[d.Path] = d.Version
			}
		}
	}
	return m
}

func fmtBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func (o options) summary() map[string]any {
	return map[string]any{
		"records": o.records, "latency_rate": o.latencyRate, "latency_duration": o.latencyDuration.String(),
		"latency_warmup": o.latencyWarmup.String(), "servers": o.servers, "samsa_inprocess": o.inProcess,
		"js_max_pending": o.jsMaxPending, "fetch_max_bytes": fmtBytes(o.fetchMaxBytes), "js_pull_batch": o.jsPullBatch,
	}
}

// row is one metric of the table.
type row struct {
	name   string
	get    func(*serverResult) (float64, bool)
	format func(float64) string
	// target, when set, is checked against the default samsa (fsync=interval) column.
	target *targetSpec
}

type targetSpec struct {
	text    string
	onRatio bool // compare samsa ÷ JetStream instead of the samsa value
	atLeast bool
	limit   float64
}

type targetCheck struct {
	Metric string  `json:"metric"`
	Target string  `json:"target"`
	Server string  `json:"server"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

func tput(f func(*serverResult) throughput, msgs bool) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		t := f(r)
		if msgs {
			return t.MsgsPerSec, t.Records > 0
		}
		return t.MBPerSec, t.Records > 0
	}
}

func lat(f func(latencyResult) float64) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) { return f(r.Latency), r.Latency.Messages > 0 }
}

func mem(f func(*memory) float64) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		if r.Memory == nil {
			return 0, false
		}
		return f(r.Memory), true
	}
}

// groupTput is the group consume rate (samsa only).
func groupTput(msgs bool) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		if r.Group == nil {
			return 0, false
		}
		return tput(func(*serverResult) throughput { return r.Group.Consume }, msgs)(r)
	}
}

// groupRebalance is the median time for a third member to join, per balancer (samsa only).
func groupRebalance(balancer string) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		if r.Group == nil {
			return 0, false
		}
		v, ok := r.Group.Rebalance[balancer]
		return v, ok
	}
}

func rawFetch(r *serverResult) (float64, bool) {
	if r.RawFetch100 == nil {
		return 0, false
	}
	return r.RawFetch100.MsgsPerSec, r.RawFetch100.Records > 0
}

// cpuPer is the server's CPU time per record of a test, in microseconds. (Memory is nil when
// the agent ran in-process: then there is no separate server CPU time either.)
func cpuPer(f func(*serverResult) throughput) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		t := f(r)
		return t.CPU.ServerSeconds / float64(t.Records) * 1e6, t.Records > 0 && r.Memory != nil
	}
}

// clientCPUPer is this process's (the client's) CPU time per record of a test, in microseconds.
func clientCPUPer(f func(*serverResult) throughput) func(*serverResult) (float64, bool) {
	return func(r *serverResult) (float64, bool) {
		t := f(r)
		return t.CPU.ClientSeconds / float64(t.Records) * 1e6, t.Records > 0 && r.Memory != nil
	}
}

func latCPU(r *serverResult) (float64, bool) {
	l := r.Latency
	return l.CPU.ServerSeconds / l.Seconds * 100, l.Messages > 0 && l.Seconds > 0 && r.Memory != nil
}

// otherCores averages, weighted by time, the CPUs busy with other work during the tests.
func otherCores(r *serverResult) (float64, bool) {
	var busy, wall float64
	for _, t := range []throughput{r.Produce100, r.Produce1K, r.Consume100, r.Consume1K} {
		busy += t.CPU.OtherCores * t.Seconds
		wall += t.Seconds
	}
	busy += r.Latency.CPU.OtherCores * r.Latency.Seconds
	wall += r.Latency.Seconds
	return busy / wall, wall > 0
}

func fmt1(v float64) string { return fmt.Sprintf("%.1f", v) }
func fmt2(v float64) string { return fmt.Sprintf("%.2f", v) }

func rows(lat100 string) []row {
	p100r := func(r *serverResult) throughput { return r.Produce100 }
	p1kr := func(r *serverResult) throughput { return r.Produce1K }
	c100r := func(r *serverResult) throughput { return r.Consume100 }
	c1kr := func(r *serverResult) throughput { return r.Consume1K }
	return []row{
		{"produce 100 B, msgs/s", tput(p100r, true), benchkit.FormatInt, &targetSpec{"≥ 4× JetStream", true, true, 4}},
		{"produce 100 B, MB/s", tput(p100r, false), fmt1, nil},
		{"produce 1 KiB, msgs/s", tput(p1kr, true), benchkit.FormatInt, nil},
		{"produce 1 KiB, MB/s", tput(p1kr, false), fmt1, &targetSpec{"≥ 150 MB/s", false, true, 150}},
		{"consume 100 B, msgs/s", tput(c100r, true), benchkit.FormatInt, &targetSpec{"≥ 3,000,000", false, true, 3e6}},
		{"consume 100 B, MB/s", tput(c100r, false), fmt1, nil},
		{"consume 100 B, raw Fetch, no record decoding, msgs/s", rawFetch, benchkit.FormatInt, nil},
		{"consume 1 KiB, msgs/s", tput(c1kr, true), benchkit.FormatInt, nil},
		{"consume 1 KiB, MB/s", tput(c1kr, false), fmt1, nil},
		{"group consume 100 B, 3 members, 6 partitions, msgs/s", groupTput(true), benchkit.FormatInt, nil},
		{"group consume 100 B, 3 members, 6 partitions, MB/s", groupTput(false), fmt1, nil},
		{"group rebalance, 3rd member joins (range), ms", groupRebalance("range"), fmt1, nil},
		{"group rebalance, 3rd member joins (cooperative-sticky), ms", groupRebalance("cooperative-sticky"), fmt1, nil},
		{"produce 100 B, server CPU µs/record", cpuPer(p100r), fmt2, nil},
		{"produce 1 KiB, server CPU µs/record", cpuPer(p1kr), fmt2, nil},
		{"consume 100 B, server CPU µs/record", cpuPer(c100r), fmt2, nil},
		{"consume 100 B, client CPU µs/record", clientCPUPer(c100r), fmt2, nil},
		{"consume 1 KiB, server CPU µs/record", cpuPer(c1kr), fmt2, nil},
		{"produce latency p50 @ " + lat100 + ", ms", lat(func(l latencyResult) float64 { return l.P50 }), fmt2, nil},
		{"produce latency p90 @ " + lat100 + ", ms", lat(func(l latencyResult) float64 { return l.P90 }), fmt2, nil},
		{"produce latency p99 @ " + lat100 + ", ms", lat(func(l latencyResult) float64 { return l.P99 }), fmt2, &targetSpec{"≤ 5 ms", false, false, 5}},
		{"produce latency p99.9 @ " + lat100 + ", ms", lat(func(l latencyResult) float64 { return l.P999 }), fmt2, nil},
		{"produce latency max @ " + lat100 + ", ms", lat(func(l latencyResult) float64 { return l.Max }), fmt2, nil},
		{"server CPU @ " + lat100 + ", % of one core", latCPU, fmt1, nil},
		{"server RSS idle, MiB", mem(func(m *memory) float64 { return m.IdleRSS }), fmt1, &targetSpec{"≤ 20 MB", false, false, 20}},
		{"server peak RSS, produce tests, MiB", mem(func(m *memory) float64 { return m.PeakRSSProduce }), fmt1, &targetSpec{"≤ 64 MB", false, false, 64}},
		{"server peak RSS, whole run, MiB", mem(func(m *memory) float64 { return m.PeakRSS }), fmt1, nil},
		{"server peak RssAnon (heap etc.), MiB", mem(func(m *memory) float64 { return m.PeakAnon }), fmt1, nil},
		{"server peak RssFile (mapped files), MiB", mem(func(m *memory) float64 { return m.PeakFile }), fmt1, nil},
		{"other work on the machine during the tests, CPUs busy", otherCores, fmt2, nil},
	}
}

// columns picks the result the targets and the ratio refer to: the default samsa
// (fsync=interval), else samsa fsync=always; and JetStream.
func (r *report) columns() (samsa, js *serverResult) {
	for i := range r.Results {
		switch res := &r.Results[i]; res.Name {
		case srvSamsa:
			samsa = res
		case srvSamsaAlways:
			if samsa == nil {
				samsa = res
			}
		case srvJetStream:
			js = res
		}
	}
	return samsa, js
}

func (r *report) rows() []row {
	rate := benchkit.FormatInt(float64(r.Options["latency_rate"].(int))) + " msgs/s"
	return rows(rate)
}

// evaluate checks every target against the samsa columns.
func (r *report) evaluate() {
	_, js := r.columns()
	for _, rw := range r.rows() {
		if rw.target == nil {
			continue
		}
		for i := range r.Results {
			res := &r.Results[i]
			if res.Name == srvJetStream {
				continue
			}
			if c, ok := checkTarget(rw, res, js); ok {
				r.Targets = append(r.Targets, c)
			}
		}
	}
}

func checkTarget(rw row, res, js *serverResult) (targetCheck, bool) {
	v, ok := rw.get(res)
	if !ok {
		return targetCheck{}, false
	}
	if rw.target.onRatio {
		if js == nil {
			return targetCheck{}, false
		}
		jv, ok := rw.get(js)
		if !ok || jv == 0 {
			return targetCheck{}, false
		}
		v /= jv
	}
	met := v <= rw.target.limit
	if rw.target.atLeast {
		met = v >= rw.target.limit
	}
	return targetCheck{Metric: rw.name, Target: rw.target.text, Server: res.Name, Value: v, Met: met}, true
}

func (r *report) targetFor(metric, server string) *targetCheck {
	for i := range r.Targets {
		if r.Targets[i].Metric == metric && r.Targets[i].Server == server {
			return &r.Targets[i]
		}
	}
	return nil
}

func metText(c *targetCheck) string {
	if c == nil {
		return "n/a"
	}
	if c.Met {
		return "met"
	}
	return "**not met**"
}

// writeMarkdown prints the table and its notes.
func (r *report) writeMarkdown(w io.Writer) {
	samsa, js := r.columns()
	var b bytes.Buffer
	b.WriteString("| metric |")
	for _, res := range r.Results {
		fmt.Fprintf(&b, " %s |", res.Label)
	}
	b.WriteString(" ratio samsa ÷ JetStream | target | met? |\n|---|")
	for range r.Results {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---|---|\n")
	for _, rw := range r.rows() {
		fmt.Fprintf(&b, "| %s |", rw.name)
		for i := range r.Results {
			if v, ok := rw.get(&r.Results[i]); ok {
				fmt.Fprintf(&b, " %s |", rw.format(v))
			} else {
				b.WriteString(" n/a |")
			}
		}
		b.WriteString(" " + ratioText(rw, samsa, js) + " |")
		r.writeTargetCells(&b, rw, samsa)
		b.WriteString("\n")
	}
	r.writeNotes(&b)
	w.Write(b.Bytes())
}

func ratioText(rw row, samsa, js *serverResult) string {
	if samsa == nil || js == nil {
		return "n/a"
	}
	sv, ok1 := rw.get(samsa)
	jv, ok2 := rw.get(js)
	if !ok1 || !ok2 || jv == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", sv/jv)
}

func (r *report) writeTargetCells(b *bytes.Buffer, rw row, samsa *serverResult) {
	if rw.target == nil || samsa == nil {
		b.WriteString(" | |")
		return
	}
	c := r.targetFor(rw.name, samsa.Name)
	met := metText(c)
	if c != nil && rw.target.onRatio {
		met += fmt.Sprintf(" (%.2f×)", c.Value)
	}
	for _, other := range r.Results {
		if other.Name == samsa.Name || other.Name == srvJetStream {
			continue
		}
		if oc := r.targetFor(rw.name, other.Name); oc != nil && c != nil && oc.Met != c.Met {
			met += fmt.Sprintf("; %s: %s", other.Label, metText(oc))
		}
	}
	fmt.Fprintf(b, " %s | %s |", rw.target.text, met)
}

func (r *report) writeNotes(b *bytes.Buffer) {
	o := r.Options
	fmt.Fprintf(b, "\nNotes:\n")
	fmt.Fprintf(b, "- One partition per samsa topic and one JetStream stream (file storage, one subject, R1) per test, for a like-for-like single ordered log; one client connection each; clients and servers share the machine's %d CPUs.\n", r.Meta.NProc)
	fmt.Fprintf(b, "- Produce: %s records of random (incompressible) values, no keys. samsa: franz-go, acks=all, linger 5 ms, idempotent, no compression, async Produce + Flush. JetStream: nats.go jetstream PublishAsync (window %v) + PublishAsyncComplete. MB = 10^6 payload bytes.\n", benchkit.FormatInt(float64(o["records"].(int))), o["js_max_pending"])
	fmt.Fprintf(b, "- Consume: the records just produced, from page cache, from the start. samsa: franz-go direct consumer, FetchMaxBytes = FetchMaxPartitionBytes = %v. JetStream: ordered consumer (ack none), Messages() pulling %v at a time. Time includes connecting. \"Raw Fetch\": the same 100 B records read by bare Fetch v12 requests, each batch's CRC-32C checked and records counted from batch headers, not decoded: what the broker delivers when the client is not the limit (no JetStream equivalent).\n", o["fetch_max_bytes"], o["js_pull_batch"])
	fmt.Fprintf(b, "- Consumer groups (samsa only): %s 100 B records in a 6-partition topic read by 3 franz-go members of a new group (cooperative-sticky), timed from the group's first assignment to the last record (the join phase of a new group first waits group_initial_rebalance_delay, 3 s). Rebalance: a 2-member group (heartbeat interval %v) gets a third member; the time from creating its client to all three holding partitions, median of %d joins (the third leaves between them). The two members have just synced, so they learn of the join at their next heartbeat, a full interval later (the worst case): eager (range) waits one interval, cooperative-sticky two (its second round); the rest is the broker's join and sync rounds.\n", benchkit.FormatInt(float64(o["records"].(int))), groupHeartbeat, groupTrials)
	fmt.Fprintf(b, "- Latency: 100 B records at a fixed %s msgs/s for %s after a %s warm-up, paced in 1 ms bursts; each message's latency runs from its planned send time to its ack (no coordinated omission). samsa: acks=1, linger 0. JetStream: PublishAsync with a per-ack handler.\n", benchkit.FormatInt(float64(o["latency_rate"].(int))), o["latency_duration"], o["latency_warmup"])
	fmt.Fprintf(b, "- RSS of the server process from /proc/PID/status: idle = VmRSS before any load; peak = VmHWM after the produce and latency tests, then at the end. JetStream's default file store does not fsync per message; samsa fsync=interval flushes every second, fsync=always group-commits before each ack.\n")
	if samsa, _ := r.columns(); samsa != nil {
		fmt.Fprintf(b, "- Targets are judged on the %s column; \"ratio\" is that column ÷ JetStream (throughput: higher is better; latency, RSS: lower is better).\n", samsa.Label)
	}
	met, total := 0, 0
	for _, c := range r.Targets {
		if samsa, _ := r.columns(); samsa != nil && c.Server == samsa.Name {
			total++
			if c.Met {
				met++
			}
		}
	}
	fmt.Fprintf(b, "- Server CPU µs/record = server process CPU time (utime+stime from /proc/PID/stat) during the test ÷ records; steadier than the rates when the machine is shared. \"Other work\" = machine busy time minus the server and the benchmark process, ÷ wall time: CPUs taken by unrelated processes (load average %s at start, %s at end).\n", r.Meta.LoadAvgStart, r.Meta.LoadAvgEnd)
	pb := r.Meta.PacerBaseline
	fmt.Fprintf(b, "- Pacer baseline (same pacing, every message acknowledged at once, no server): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms. That much of each latency is the sender's timer and scheduling, not the server.\n", pb.P50, pb.P99, pb.P999, pb.Max)
	for i := range r.Results {
		if oc, ok := otherCores(&r.Results[i]); ok && oc > 0.25 {
			fmt.Fprintf(b, "- **Warning:** other processes kept %.2f of %d CPUs busy during the %s tests; its numbers are depressed by that and vary from run to run.\n", oc, r.Meta.NProc, r.Results[i].Label)
		}
	}
	fmt.Fprintf(b, "\nTargets met: %d of %d.\n", met, total)
}
