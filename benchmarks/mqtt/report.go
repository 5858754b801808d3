package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// targets are issue 7's: samsa ÷ ceiling at QoS 0 and QoS 1.
var targets = [2]float64{0.80, 0.50}

type report struct {
	Meta    meta           `json:"meta"`
	Options map[string]any `json:"options"`
	Results [2]qosResult   `json:"results"` // index = QoS
}

type meta struct {
	Date      string `json:"date"`
	Command   string `json:"command"`
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	Revision  string `json:"samsa_revision"`
	Mosquitto string `json:"mosquitto"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
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
		Meta: meta{
			Date:      time.Now().UTC().Format(time.RFC3339),
			Command:   strings.TrimSpace("go run ./benchmarks/mqtt " + strings.Join(args, " ")),
			NProc:     runtime.NumCPU(),
			CPUModel:  procField("/proc/cpuinfo", "model name"),
			GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
			LoadStart: loadAvg(),
		},
		Options: map[string]any{"messages": o.messages, "payload": o.payload, "publishers": o.publishers,
			"topics": o.topics, "rounds": o.rounds, "fsync": o.fsync},
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		r.Meta.Revision = strings.TrimSpace(string(out))
	}
	if out, _ := exec.Command(bin, "-h").CombinedOutput(); len(out) > 0 {
		r.Meta.Mosquitto, _, _ = strings.Cut(string(out), "\n")
	}
	for q := range r.Results {
		r.Results[q].QoS, r.Results[q].Target = q, targets[q]
	}
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(runs []measurement, f func(measurement) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return median(v)
}

func (r *report) summarize() {
	r.Meta.LoadEnd = loadAvg()
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
	fmt.Fprintf(bw, "## MQTT bridge ingest (median of %s)\n\n", plural(len(r.Results[0].Ceiling), "round"))
	fmt.Fprintln(bw, "| QoS | ceiling msgs/s (paho subscriber) | samsa msgs/s (bridge → log) | samsa ÷ ceiling | target | met? |")
	fmt.Fprintln(bw, "|---|---|---|---|---|---|")
	met := 0
	for _, x := range r.Results {
		v := "no"
		if x.Met {
			v, met = "yes", met+1
		}
		fmt.Fprintf(bw, "| %d | %s | %s | %.0f %% | ≥ %.0f %% | %s |\n", x.QoS, fmtInt(x.CeilingMsgsPerS), fmtInt(x.SamsaMsgsPerS),
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
			fmt.Fprintf(bw, "| %d | %d | %s | %s | %d | %d |\n", i+1, x.QoS, fmtInt(c.MsgsPerS), fmtInt(s.MsgsPerS), s.Messages, s.Acked)
		}
	}
	o := r.Options
	fmt.Fprintf(bw, "\n- Load: %v messages of %v random bytes per measurement from %v paho publishers over %v topics, full speed (1000 publishes outstanding each)\n",
		o["messages"], o["payload"], o["publishers"], o["topics"])
	fmt.Fprintf(bw, "- Agent: in-process, fsync=%v, bridge defaults (linger 5ms, lz4, max_in_flight 1000); %s\n", o["fsync"], r.Meta.Mosquitto)
	fmt.Fprintf(bw, "- Machine: %d × %s, %s; revision %s; load average %s at the start, %s at the end\n",
		r.Meta.NProc, r.Meta.CPUModel, r.Meta.GoVersion, r.Meta.Revision, r.Meta.LoadStart, r.Meta.LoadEnd)
}

func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	b, _ := os.ReadFile(path)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
