package main

import (
	"sync"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// memSampler watches a server process: idle RSS at start, VmHWM on demand, and the largest
// RssAnon/RssFile seen every 50 ms.
type memSampler struct {
	pid     int
	sampler *benchkit.MemSampler

	mu               sync.Mutex
	idle, hwmProduce int64 // bytes
}

func startMemSampler(pid int) (*memSampler, error) {
	st, err := benchkit.ReadProcMemory(pid)
	if err != nil {
		return nil, err
	}
	return &memSampler{pid: pid, idle: st.RSS, sampler: benchkit.StartMemSampler(pid, 50*time.Millisecond)}, nil
}

// markProduce records the high-water mark reached so far (the produce tests).
func (m *memSampler) markProduce() {
	if st, err := m.sampler.Sample(); err == nil {
		m.mu.Lock()
		m.hwmProduce = st.HWM
		m.mu.Unlock()
	}
}

// result reads the final high-water mark.
func (m *memSampler) result() *memory {
	st, err := benchkit.ReadProcMemory(m.pid)
	p := m.sampler.Peaks()
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &memory{IdleRSS: benchkit.MiB(m.idle), PeakRSSProduce: benchkit.MiB(m.hwmProduce), PeakAnon: benchkit.MiB(p.Anon), PeakFile: benchkit.MiB(p.File)}
	if err == nil {
		r.PeakRSS = benchkit.MiB(st.HWM)
	}
	return r
}

func (m *memSampler) stop() { m.sampler.Stop() }
