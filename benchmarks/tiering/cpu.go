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

// cpuSnapshot is the CPU time used so far by the agent, MinIO, this process (the clients and
// the ceiling loops) and the whole machine: where the time of an operation went.
type cpuSnapshot struct {
	wall    time.Time
	agent   float64 // seconds; 0 without an agent
	minio   float64
	client  float64
	machine float64 // busy seconds over all CPUs
	ok      bool
}

func takeCPU(agentPID, minioPID int) cpuSnapshot {
	s := cpuSnapshot{wall: time.Now(), ok: true}
	for _, p := range []struct {
		pid int
		v   *float64
	}{{agentPID, &s.agent}, {minioPID, &s.minio}, {os.Getpid(), &s.client}} {
		if p.pid > 0 {
			v, err := procCPU(p.pid)
			*p.v, s.ok = v, s.ok && err == nil
		}
	}
	m, err := machineBusy()
	s.machine, s.ok = m, s.ok && err == nil
	return s
}

// cpuUse is the CPU spent during one operation, in seconds, and the cores other work took.
type cpuUse struct {
	Agent  float64 `json:"agent_cpu_seconds"`
	MinIO  float64 `json:"minio_cpu_seconds"`
	Client float64 `json:"client_cpu_seconds"`
	// OtherCores is the machine's busy time not spent by the agent, MinIO or this process,
	// divided by the wall time: how many CPUs unrelated work took away meanwhile.
	OtherCores float64 `json:"other_cores"`
}

// since is the CPU used from a to now. agentPID and minioPID must be the ones of a.
func (a cpuSnapshot) since(agentPID, minioPID int) cpuUse {
	b := takeCPU(agentPID, minioPID)
	if !a.ok || !b.ok {
		return cpuUse{}
	}
	u := cpuUse{Agent: b.agent - a.agent, MinIO: b.minio - a.minio, Client: b.client - a.client}
	if wall := b.wall.Sub(a.wall).Seconds(); wall > 0 {
		u.OtherCores = max(0, (b.machine-a.machine)-u.Agent-u.MinIO-u.Client) / wall
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
// (user nice system idle iowait irq softirq steal; idle and iowait are not busy).
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
