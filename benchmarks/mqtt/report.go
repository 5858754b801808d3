package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// targets are issue 7's: samsa ÷ ceiling at QoS 0 and QoS 1.
var targets = [2]float64{0.80, 0.50}

type report struct {
	Meta    meta           `json:"meta"`
	Options map[string]any `json:"options"`
	Results [2]qosResult   `json:"results"` // index = QoS
}

type meta struct {
	benchkit.Machine
	Mosquitto string `json:"mosquitto"`
}

type qosResult struct {
	QoS     int           `json:"qos"`
	Ceiling []measurement `json:"ceiling_rounds"`
	Samsa   []measurement `json:"samsa_rounds"`
	// Medians over the rounds.
	CeilingMsgsPerS float64 `json:"ceiling_msgs_per_sec"`
	SamsaMsgsPerS   float64 `json:"samsa_msgs_per_sec"`
	Ratio           float64 `json:"ratio"`
	Target          float64 `json:"target"`
	Met             bool    `json:"met"`
	// CPU seconds per 100k messages (medians): Mosquitto, and this process.
	CeilingMosqCPU float64 `json:"ceiling_mosquitto_cpu_s_per_100k"`
	CeilingProcCPU float64 `json:"ceiling_process_cpu_s_per_100k"`
	SamsaMosqCPU   float64 `json:"samsa_mosquitto_cpu_s_per_100k"`
	SamsaProcCPU   float64 `json:"samsa_process_cpu_s_per_100k"`
}

func newReport(args []string, o options, bin string) *report {
	r := &report{
		Meta: meta{Machine: benchkit.DescribeMachine("mqtt", args)},
		Options: map[string]any{"messages": o.messages, "payload": o.payload, "publishers": o.publishers,
			"topics": o.topics, "rounds": o.rounds, "fsync": o.fsync},
	}
	if out, _ := exec.Command(bin, "-h").CombinedOutput(); len(out) > 0 {
		r.Meta.Mosquitto, _, _ = strings.Cut(string(out), "\n")
	}
	for q := range r.Results {
		r.Results[q].QoS, r.Results[q].Target = q, targets[q]
	}
	return r
}

func medianOf(runs []measurement, f func(measurement) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return benchkit.Median(v)
}

func (r *report) summarize() {
	r.Meta.End()
	for q := range r.Results {
		x := &r.Results[q]
		x.CeilingMsgsPerS = medianOf(x.Ceiling, func(r measurement) float64 { return r.MsgsPerS })
		x.SamsaMsgsPerS = medianOf(x.Samsa, func(r measurement) float64 { return r.MsgsPerS })
		if x.CeilingMsgsPerS > 0 {
			x.Ratio = x.SamsaMsgsPerS / x.CeilingMsgsPerS
		}
		x.Met = x.Ratio >= x.Target
		per := func(cpu func(measurement) float64) func(measurement) float64 {
			return func(r measurement) float64 { return cpu(r) / float64(r.Messages) * 1e5 }
		}
		x.CeilingMosqCPU = medianOf(x.Ceiling, per(func(r measurement) float64 { return r.Mosquitto }))
		x.CeilingProcCPU = medianOf(x.Ceiling, per(func(r measurement) float64 { return r.Process }))
		x.SamsaMosqCPU = medianOf(x.Samsa, per(func(r measurement) float64 { return r.Mosquitto }))
		x.SamsaProcCPU = medianOf(x.Samsa, per(func(r measurement) float64 { return r.Process }))
	}
}

func (r *report) writeMarkdown(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "## MQTT bridge ingest (median of %s)\n\n", benchkit.Plural(len(r.Results[0].Ceiling), "round"))
	fmt.Fprintln(bw, "| QoS | ceiling msgs/s (paho subscriber) | samsa msgs/s (bridge → log) | samsa ÷ ceiling | target | met? |")
	fmt.Fprintln(bw, "|---|---|---|---|---|---|")
	met := 0
	for _, x := range r.Results {
		v := "no"
		if x.Met {
			v, met = "yes", met+1
		}
		fmt.Fprintf(bw, "| %d | %s | %s | %.0f %% | ≥ %.0f %% | %s |\n", x.QoS, benchkit.FormatInt(x.CeilingMsgsPerS), benchkit.FormatInt(x.SamsaMsgsPerS),
			100*x.Ratio, 100*x.Target, v)
	}
	fmt.Fprintf(bw, "\nTargets met: %d of 2\n\n", met)
	fmt.Fprintln(bw, "CPU seconds per 100k messages (median): Mosquitto / this process (publishers + paho subscriber for the ceiling, publishers + in-process agent for samsa)")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| QoS | ceiling: mosquitto / process | samsa: mosquitto / process |")
	fmt.Fprintln(bw, "|---|---|---|")
	for _, x := range r.Results {
		fmt.Fprintf(bw, "| %d | %.2f / %.2f | %.2f / %.2f |\n", x.QoS, x.CeilingMosqCPU, x.CeilingProcCPU, x.SamsaMosqCPU, x.SamsaProcCPU)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| round | QoS | ceiling msgs/s | samsa msgs/s | samsa records | samsa acked |")
	fmt.Fprintln(bw, "|---|---|---|---|---|---|")
	for _, x := range r.Results {
		for i := range x.Ceiling {
			c, s := x.Ceiling[i], x.Samsa[i]
			fmt.Fprintf(bw, "| %d | %d | %s | %s | %d | %d |\n", i+1, x.QoS, benchkit.FormatInt(c.MsgsPerS), benchkit.FormatInt(s.MsgsPerS), s.Messages, s.Acked)
		}
	}
	o := r.Options
	fmt.Fprintf(bw, "\n- Load: %v messages of %v random bytes per measurement from %v paho publishers over %v topics, full speed (1000 publishes outstanding each)\n",
		o["messages"], o["payload"], o["publishers"], o["topics"])
	fmt.Fprintf(bw, "- Agent: in-process, fsync=%v, bridge defaults (linger 5ms, lz4, max_in_flight 1000); %s\n", o["fsync"], r.Meta.Mosquitto)
	fmt.Fprintf(bw, "- Machine: %d × %s, %s; revision %s; load average %s at the start, %s at the end\n",
		r.Meta.NProc, r.Meta.CPUModel, r.Meta.GoVersion, r.Meta.SamsaRevision, r.Meta.LoadAvgStart, r.Meta.LoadAvgEnd)
}
