package benchkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux we run on).
const clockTicks = 100

// ProcCPU is the CPU time (utime + stime) process pid has used so far, in seconds, from
// /proc/PID/stat.
func ProcCPU(pid int) (float64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatCPU(path, string(data))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat line.
func parseStatCPU(path, s string) (float64, error) {
	i := strings.LastIndexByte(s, ')') // the command name in parentheses may hold spaces
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime/stime", path)
	}
	return (ut + st) / clockTicks, nil
}

// MachineBusy is the busy time of all CPUs so far, in seconds, from the first line of
// /proc/stat (user nice system idle iowait irq softirq steal; idle and iowait are not busy).
func MachineBusy() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseMachineBusy(line)
}

func parseMachineBusy(line string) (float64, error) {
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

// CPUSnapshot is the CPU time used so far by some processes, by this process and by the whole
// machine. Two snapshots tell where the CPU time between them went; on a shared machine the
// CPU time per unit of work is steadier than a rate.
type CPUSnapshot struct {
	wall    time.Time
	procs   []float64 // seconds, in the order of the pids; 0 for a pid <= 0
	self    float64
	machine float64 // busy seconds over all CPUs
	ok      bool    // every read succeeded
}

// TakeCPU takes a snapshot of the processes pids (a pid <= 0 stands for none and counts 0),
// of this process and of the machine.
func TakeCPU(pids ...int) CPUSnapshot {
	s := CPUSnapshot{wall: time.Now(), procs: make([]float64, len(pids)), ok: true}
	for i, pid := range pids {
		if pid > 0 {
			v, err := ProcCPU(pid)
			s.procs[i], s.ok = v, s.ok && err == nil
		}
	}
	v, err := ProcCPU(os.Getpid())
	s.self, s.ok = v, s.ok && err == nil
	m, err := MachineBusy()
	s.machine, s.ok = m, s.ok && err == nil
	return s
}

// CPUUse is the CPU time spent between two snapshots, in seconds.
type CPUUse struct {
	Procs []float64 // per process, in the order of the pids
	Self  float64   // this process
	// OtherCores is the machine's busy time not spent by the processes or this one, divided
	// by the wall time: how many CPUs unrelated work took meanwhile.
	OtherCores float64
}

// Since is the CPU time used from s to now. pids are the processes of s in the same order; a
// pid may be given now that was <= 0 then (a process started in between: all of its time
// counts). ok is false, and the use zero, when a read failed in either snapshot.
func (s CPUSnapshot) Since(pids ...int) (u CPUUse, ok bool) {
	b := TakeCPU(pids...)
	if !s.ok || !b.ok || len(s.procs) != len(b.procs) {
		return CPUUse{}, false
	}
	u = CPUUse{Procs: make([]float64, len(pids)), Self: b.self - s.self}
	other := b.machine - s.machine
	for i := range pids {
		u.Procs[i] = b.procs[i] - s.procs[i]
		other -= u.Procs[i]
	}
	other -= u.Self
	if wall := b.wall.Sub(s.wall).Seconds(); wall > 0 {
		u.OtherCores = max(0, other) / wall
	}
	return u, true
}
