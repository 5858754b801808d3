package benchkit

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Machine says where, when and how a benchmark ran. Benchmarks embed it in the metadata of
// their JSON report; its fields appear there at the top level.
type Machine struct {
	Date          string  `json:"date"`    // UTC, RFC 3339
	Command       string  `json:"command"` // "go run ./benchmarks/NAME ARGS"
	NProc         int     `json:"nproc"`
	CPUModel      string  `json:"cpu_model"`
	Kernel        string  `json:"kernel"`
	MemTotalMiB   float64 `json:"mem_total_mib"`
	GoVersion     string  `json:"go_version"`     // "go1.26.8 linux/amd64"
	SamsaRevision string  `json:"samsa_revision"` // git describe --always --dirty
	LoadAvgStart  string  `json:"loadavg_start"`  // 1, 5 and 15 minute load averages
	LoadAvgEnd    string  `json:"loadavg_end"`    // set by End
}

// DescribeMachine describes this machine now, for the benchmark called name (its directory
// under benchmarks/) run with args.
func DescribeMachine(name string, args []string) Machine {
	m := Machine{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Command:   strings.TrimSpace("go run ./benchmarks/" + name + " " + strings.Join(args, " ")),
		NProc:     runtime.NumCPU(),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
	}
	m.LoadAvgStart = LoadAvg()
	var kb float64
	fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%g", &kb)
	m.MemTotalMiB = math.Round(kb / 1024)
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.SamsaRevision = strings.TrimSpace(string(out))
	}
	return m
}

// End records the load average at the end of the run.
func (m *Machine) End() { m.LoadAvgEnd = LoadAvg() }

// LoadAvg is the 1, 5 and 15 minute load averages from /proc/loadavg, "" if unknown.
func LoadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// FilesystemOf names the mount holding dir ("/dev/vda ext4 on /"), from /proc/mounts; "" if
// unknown.
func FilesystemOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	best, bestLen := "", -1
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/mounts")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > bestLen {
			best, bestLen = f[0]+" "+f[2]+" on "+mp, len(mp)
		}
	}
	return best
}

// readFile is the file's content, "" if it cannot be read.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	sc := bufio.NewScanner(strings.NewReader(readFile(path)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
