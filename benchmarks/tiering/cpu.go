package main

import "github.com/samsa-io/samsa/benchmarks/internal/benchkit"

// cpuSnapshot is the CPU time used so far by the agent, MinIO, this process (the clients and
// the ceiling loops) and the whole machine: where the time of an operation went.
type cpuSnapshot struct{ s benchkit.CPUSnapshot }

// takeCPU takes a snapshot; a pid of 0 stands for a process not running.
func takeCPU(agentPID, minioPID int) cpuSnapshot {
	return cpuSnapshot{benchkit.TakeCPU(agentPID, minioPID)}
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

// since is the CPU used from a to now. agentPID and minioPID must be the ones of a, except
// that an agent started in between may be given (all of its time counts).
func (a cpuSnapshot) since(agentPID, minioPID int) cpuUse {
	u, ok := a.s.Since(agentPID, minioPID)
	if !ok {
		return cpuUse{}
	}
	return cpuUse{Agent: u.Procs[0], MinIO: u.Procs[1], Client: u.Self, OtherCores: u.OtherCores}
}
