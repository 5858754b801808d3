package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux we run on).
const clockTicks = 100

// cpuSnapshot is the CPU time used so far by the server, by this process (the clients) and by
// the whole machine, to tell how much of a test's time went where. On a shared machine the
// per-record CPU cost is steadier than the rate.
type cpuSnapshot struct {
	wall     time.Time
	server   float64 // seconds; 0 without a server process
	client   float64
	machine  float64 // busy seconds over all CPUs
	hasProcs bool
}

func takeCPU(serverPID int) cpuSnapshot {
	s := cpuSnapshot{wall: time.Now()}
	var err1, err2, err3 error
	if serverPID > 0 {
		s.server, err1 = procCPU(serverPID)
	}
	s.client, err2 = procCPU(os.Getpid())
	s.machine, err3 = machineBusy()
	s.hasProcs = err1 == nil && err2 == nil && err3 == nil
	return s
}

// cpuUse is the CPU spent during one test.
type cpuUse struct {
	ServerSeconds float64 `json:"server_cpu_seconds"`
	ClientSeconds float64 `json:"client_cpu_seconds"`
	// OtherCores is the machine's busy time not spent by the server or this process, divided
	// by the wall time: how many CPUs other work took away during the test.
	OtherCores float64 `json:"other_cores"`
}

func cpuSince(a cpuSnapshot, serverPID int) cpuUse {
	b := takeCPU(serverPID)
	if !a.hasProcs || !b.hasProcs {
		return cpuUse{}
	}
	u := cpuUse{ServerSeconds: b.server - a.server, ClientSeconds: b.client - a.client}
	if wall := b.wall.Sub(a.wall).Seconds(); wall > 0 {
		u.OtherCores = max(0, (b.machine-a.machine)-u.ServerSeconds-u.ClientSeconds) / wall
	}
	return u
}

// procCPU is utime+stime of a process in seconds, from /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) / clockTicks, nil
}

// machineBusy is the busy time of all CPUs in seconds, from the first line of /proc/stat
// (user nice system idle iowait irq softirq steal ...; idle and iowait are not busy).
func machineBusy() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy float64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += x
	}
	return busy / clockTicks, nil
}
