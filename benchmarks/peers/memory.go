package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// procStatus reads the kB fields of /proc/PID/status that we report.
func procStatus(pid int) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		switch k := string(key); k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem":
			f := bytes.Fields(rest)
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
			}
			out[k] = v
		}
	}
	if _, ok := out["VmHWM"]; !ok {
		return nil, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return out, nil
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

// memSampler watches a server process: idle RSS at start, VmHWM on demand, and the largest
// RssAnon/RssFile seen every 50 ms.
type memSampler struct {
	pid  int
	done chan struct{}
	wg   sync.WaitGroup

	mu                 sync.Mutex
	idle, hwmProduce   int64
	peakAnon, peakFile int64
}

func startMemSampler(pid int) (*memSampler, error) {
	st, err := procStatus(pid)
	if err != nil {
		return nil, err
	}
	m := &memSampler{pid: pid, done: make(chan struct{}), idle: st["VmRSS"]}
	m.observe(st)
	m.wg.Add(1)
	go m.loop()
	return m, nil
}

func (m *memSampler) loop() {
	defer m.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			if st, err := procStatus(m.pid); err == nil {
				m.observe(st)
			}
		}
	}
}

func (m *memSampler) observe(st map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakAnon = max(m.peakAnon, st["RssAnon"])
	m.peakFile = max(m.peakFile, st["RssFile"])
}

// markProduce records the high-water mark reached so far (the produce tests).
func (m *memSampler) markProduce() {
	if st, err := procStatus(m.pid); err == nil {
		m.observe(st)
		m.mu.Lock()
		m.hwmProduce = st["VmHWM"]
		m.mu.Unlock()
	}
}

// result reads the final high-water mark.
func (m *memSampler) result() *memory {
	st, err := procStatus(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &memory{IdleRSS: mib(m.idle), PeakRSSProduce: mib(m.hwmProduce), PeakAnon: mib(m.peakAnon), PeakFile: mib(m.peakFile)}
	if err == nil {
		r.PeakRSS = mib(st["VmHWM"])
	}
	return r
}

func (m *memSampler) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.wg.Wait()
}
