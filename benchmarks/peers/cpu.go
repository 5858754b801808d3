package main

import "github.com/samsa-io/samsa/benchmarks/internal/benchkit"

// cpuUse is the CPU spent during one test, from /proc: by the server, by this process (the
// clients) and by other work. On a shared machine the per-record CPU cost is steadier than the
// rate.
type cpuUse struct {
	ServerSeconds float64 `json:"server_cpu_seconds"`
	ClientSeconds float64 `json:"client_cpu_seconds"`
	// OtherCores is the machine's busy time not spent by the server or this process, divided
	// by the wall time: how many CPUs other work took away during the test.
	OtherCores float64 `json:"other_cores"`
}

// cpuSince is the CPU used from a (taken with benchkit.TakeCPU(serverPID)) to now; zero when
// /proc could not be read. serverPID 0 means no server process.
func cpuSince(a benchkit.CPUSnapshot, serverPID int) cpuUse {
	u, ok := a.Since(serverPID)
	if !ok {
		return cpuUse{}
	}
	return cpuUse{ServerSeconds: u.Procs[0], ClientSeconds: u.Self, OtherCores: u.OtherCores}
}
