package hostmetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
)

// Bounds of the label sets.
const (
	MaxDevices = 16 // block devices reported
	MaxSensors = 32 // temperature sensors reported
)

// sampleTimeout bounds one sample's reads of /proc and /sys.
const sampleTimeout = 5 * time.Second

// Sample is one reading of the host; it is the JSON value of the records the Publisher appends.
type Sample struct {
	Time         time.Time     `json:"time"`
	Hostname     string        `json:"hostname"`
	NodeID       int32         `json:"node_id"`
	CPU          CPU           `json:"cpu"`
	Memory       Memory        `json:"memory"`
	Disk         Disk          `json:"disk"`
	Temperatures []Temperature `json:"temperatures"`
	Errors       []string      `json:"errors,omitempty"`
}

// CPU is the processor part of a Sample.
type CPU struct {
	Count int `json:"count"`
	// BusyPercent is the share of time all CPUs were not idle (nor waiting for I/O) since the
	// previous sample of the same Collector (since boot for the first), 0 to 100.
	BusyPercent float64            `json:"busy_percent"`
	Seconds     map[string]float64 `json:"seconds"` // by mode, since boot, all CPUs
	Load1       float64            `json:"load1"`
	Load5       float64            `json:"load5"`
	Load15      float64            `json:"load15"`
}

// Memory is the memory part of a Sample.
type Memory struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	UsedBytes      uint64 `json:"used_bytes"`
	SwapTotalBytes uint64 `json:"swap_total_bytes"`
	SwapUsedBytes  uint64 `json:"swap_used_bytes"`
}

// Disk is the storage part of a Sample.
type Disk struct {
	Path       string     `json:"path"` // the data directory; its filesystem is reported
	SizeBytes  uint64     `json:"size_bytes"`
	FreeBytes  uint64     `json:"free_bytes"`
	UsedBytes  uint64     `json:"used_bytes"`
	UsedRatio  float64    `json:"used_ratio"`
	InodesUsed float64    `json:"inodes_used_ratio"`
	Devices    []DeviceIO `json:"devices"`
}

// DeviceIO is what one block device read and wrote since boot.
type DeviceIO struct {
	Name         string `json:"name"`
	ReadBytes    uint64 `json:"read_bytes"`
	WrittenBytes uint64 `json:"written_bytes"`
}

// Temperature is one sensor's reading.
type Temperature struct {
	Sensor  string  `json:"sensor"`
	Celsius float64 `json:"celsius"`
}

// Options configure a Collector.
type Options struct {
	// Path is a directory on the filesystem to report (the agent's data directory); "" leaves
	// the filesystem part out.
	Path string
	// NodeID is written into every Sample.
	NodeID int32
}

// Collector takes Samples. It is safe for concurrent use.
type Collector struct {
	opts     Options
	hostname string

	mu      sync.Mutex
	prevCPU *cpu.TimesStat // for BusyPercent
}

// New returns a Collector; nothing is read until Sample.
func New(o Options) *Collector {
	name, err := os.Hostname()
	if err != nil {
		name = "unknown"
	}
	return &Collector{opts: o, hostname: name}
}

// Hostname is the host name written into samples (and used as the record key).
func (c *Collector) Hostname() string { return c.hostname }

// Sample reads the host now.
func (c *Collector) Sample(ctx context.Context) Sample {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	s := Sample{Time: time.Now().UTC(), Hostname: c.hostname, NodeID: c.opts.NodeID, Temperatures: []Temperature{}}
	fail := func(part string, err error) { s.Errors = append(s.Errors, part+": "+err.Error()) }
	c.sampleCPU(ctx, &s, fail)
	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		fail("memory", err)
	} else {
		s.Memory.TotalBytes, s.Memory.AvailableBytes, s.Memory.UsedBytes = vm.Total, vm.Available, vm.Used
		s.Memory.SwapTotalBytes, s.Memory.SwapUsedBytes = vm.SwapTotal, vm.SwapTotal-min(vm.SwapFree, vm.SwapTotal)
	}
	c.sampleDisk(ctx, &s, fail)
	temps, err := host.SensorsTemperaturesWithContext(ctx)
	if err != nil && len(temps) == 0 && !isWarnings(err) {
		fail("temperatures", err)
	}
	seen := map[string]bool{}
	for _, t := range temps {
		if len(s.Temperatures) == MaxSensors || seen[t.SensorKey] || t.SensorKey == "" {
			continue
		}
		seen[t.SensorKey] = true
		s.Temperatures = append(s.Temperatures, Temperature{Sensor: t.SensorKey, Celsius: t.Temperature})
	}
	slices.SortFunc(s.Temperatures, func(a, b Temperature) int { return strings.Compare(a.Sensor, b.Sensor) })
	return s
}

// isWarnings reports whether err is gopsutil's list of per-sensor problems, which comes with
// the readings that worked.
func isWarnings(err error) bool {
	var w *host.Warnings
	return errors.As(err, &w)
}

func (c *Collector) sampleCPU(ctx context.Context, s *Sample, fail func(string, error)) {
	if n, err := cpu.CountsWithContext(ctx, true); err != nil {
		fail("cpu count", err)
	} else {
		s.CPU.Count = n
	}
	if avg, err := load.AvgWithContext(ctx); err != nil {
		fail("load", err)
	} else {
		s.CPU.Load1, s.CPU.Load5, s.CPU.Load15 = avg.Load1, avg.Load5, avg.Load15
	}
	times, err := cpu.TimesWithContext(ctx, false)
	if err != nil || len(times) == 0 {
		if err == nil {
			err = errors.New("no cpu times")
		}
		fail("cpu times", err)
		return
	}
	t := times[0]
	s.CPU.Seconds = map[string]float64{
		"user": t.User, "nice": t.Nice, "system": t.System, "idle": t.Idle, "iowait": t.Iowait,
		"irq": t.Irq, "softirq": t.Softirq, "steal": t.Steal,
	}
	c.mu.Lock()
	prev := c.prevCPU
	c.prevCPU = &t
	c.mu.Unlock()
	s.CPU.BusyPercent = busyPercent(prev, t)
}

// busyPercent is the non-idle share of the CPU time between prev (nil: boot) and cur.
func busyPercent(prev *cpu.TimesStat, cur cpu.TimesStat) float64 {
	total := func(t cpu.TimesStat) float64 {
		return t.User + t.Nice + t.System + t.Idle + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	dt, di := total(cur), idle(cur)
	if prev != nil {
		dt, di = dt-total(*prev), di-idle(*prev)
	}
	if dt <= 0 {
		return 0
	}
	return min(max(100*(dt-di)/dt, 0), 100)
}

func (c *Collector) sampleDisk(ctx context.Context, s *Sample, fail func(string, error)) {
	if c.opts.Path != "" {
		s.Disk.Path = c.opts.Path
		if u, err := disk.UsageWithContext(ctx, c.opts.Path); err != nil {
			fail("filesystem", err)
		} else {
			s.Disk.SizeBytes, s.Disk.FreeBytes, s.Disk.UsedBytes = u.Total, u.Free, u.Used
			s.Disk.UsedRatio, s.Disk.InodesUsed = u.UsedPercent/100, u.InodesUsedPercent/100
		}
	}
	s.Disk.Devices = []DeviceIO{}
	io, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		fail("disk io", err)
		return
	}
	names := make([]string, 0, len(io))
	for name := range io {
		if !strings.HasPrefix(name, "loop") && !strings.HasPrefix(name, "ram") && !strings.HasPrefix(name, "zram") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names[:min(len(names), MaxDevices)] {
		d := io[name]
		s.Disk.Devices = append(s.Disk.Devices, DeviceIO{Name: name, ReadBytes: d.ReadBytes, WrittenBytes: d.WriteBytes})
	}
}

// WriteMetrics takes a Sample and writes it in Prometheus text format (doc.go: Metrics).
func (c *Collector) WriteMetrics(ctx context.Context, w io.Writer) {
	s := c.Sample(ctx)
	gauge := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	head := func(name, typ, help string) { fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	gauge("samsa_host_cpu_count", "Logical CPUs of the host.", s.CPU.Count)
	if s.CPU.Seconds != nil {
		head("samsa_host_cpu_seconds_total", "counter", "CPU time of all CPUs since boot, by mode.")
		for _, mode := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
			fmt.Fprintf(w, "samsa_host_cpu_seconds_total{mode=%q} %.2f\n", mode, s.CPU.Seconds[mode])
		}
	}
	gauge("samsa_host_load1", "Load average over 1 minute.", s.CPU.Load1)
	gauge("samsa_host_load5", "Load average over 5 minutes.", s.CPU.Load5)
	gauge("samsa_host_load15", "Load average over 15 minutes.", s.CPU.Load15)
	gauge("samsa_host_memory_total_bytes", "Physical memory.", s.Memory.TotalBytes)
	gauge("samsa_host_memory_available_bytes", "Memory available to new work without swapping (MemAvailable).", s.Memory.AvailableBytes)
	gauge("samsa_host_memory_used_bytes", "Memory in use (total - free - buffers - cache).", s.Memory.UsedBytes)
	gauge("samsa_host_swap_total_bytes", "Swap space.", s.Memory.SwapTotalBytes)
	gauge("samsa_host_swap_used_bytes", "Swap space in use.", s.Memory.SwapUsedBytes)
	if s.Disk.Path != "" && s.Disk.SizeBytes > 0 {
		label := `{path="` + labelEscaper.Replace(s.Disk.Path) + `"}`
		head("samsa_host_filesystem_size_bytes", "gauge", "Size of the data directory's filesystem.")
		fmt.Fprintf(w, "samsa_host_filesystem_size_bytes%s %d\n", label, s.Disk.SizeBytes)
		head("samsa_host_filesystem_free_bytes", "gauge", "Free bytes of the data directory's filesystem.")
		fmt.Fprintf(w, "samsa_host_filesystem_free_bytes%s %d\n", label, s.Disk.FreeBytes)
	}
	head("samsa_host_disk_read_bytes_total", "counter", "Bytes read from each block device since boot.")
	for _, d := range s.Disk.Devices {
		fmt.Fprintf(w, "samsa_host_disk_read_bytes_total{device=%q} %d\n", d.Name, d.ReadBytes)
	}
	head("samsa_host_disk_written_bytes_total", "counter", "Bytes written to each block device since boot (SD card wear).")
	for _, d := range s.Disk.Devices {
		fmt.Fprintf(w, "samsa_host_disk_written_bytes_total{device=%q} %d\n", d.Name, d.WrittenBytes)
	}
	head("samsa_host_temperature_celsius", "gauge", "Temperature sensors (the SoC on a Raspberry Pi), where the host has them.")
	for _, t := range s.Temperatures {
		fmt.Fprintf(w, "samsa_host_temperature_celsius{sensor=\"%s\"} %.3f\n", labelEscaper.Replace(t.Sensor), t.Celsius)
	}
}

// labelEscaper escapes a Prometheus label value.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
