package benchkit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// ProcMemory is the resident memory of a process from /proc/PID/status, in bytes.
type ProcMemory struct {
	RSS   int64 // VmRSS
	HWM   int64 // VmHWM: the largest RSS so far, kept by the kernel
	Anon  int64 // RssAnon: heap, stacks
	File  int64 // RssFile: the binary, mapped files
	Shmem int64 // RssShmem
}

// ReadProcMemory reads the resident memory of process pid.
func ReadProcMemory(pid int) (ProcMemory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return ProcMemory{}, err
	}
	return parseStatus(path, data)
}

func parseStatus(path string, data []byte) (ProcMemory, error) {
	var m ProcMemory
	fields := map[string]*int64{"VmRSS": &m.RSS, "VmHWM": &m.HWM, "RssAnon": &m.Anon, "RssFile": &m.File, "RssShmem": &m.Shmem}
	hwm := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		p, ok := fields[string(key)]
		f := bytes.Fields(rest)
		if !ok || len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return ProcMemory{}, fmt.Errorf("%s %s: %w", path, key, err)
		}
		*p = kb << 10
		hwm = hwm || string(key) == "VmHWM"
	}
	if !hwm {
		return ProcMemory{}, fmt.Errorf("%s: no VmHWM", path)
	}
	return m, nil
}

// MemPeaks are the largest values a MemSampler saw, in bytes.
type MemPeaks struct {
	RSS, Anon, File int64
	Samples         int64 // successful reads
	Err             error // the first failed read
}

// MemSampler reads a process's resident memory at a fixed interval and keeps the peaks: the
// kernel keeps the peak RSS (VmHWM), but not that of its anonymous and file-backed parts.
type MemSampler struct {
	pid  int
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu    sync.Mutex
	peaks MemPeaks
}

// StartMemSampler samples process pid now and then every interval until Stop.
func StartMemSampler(pid int, interval time.Duration) *MemSampler {
	s := &MemSampler{pid: pid, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.Sample()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Sample reads the process's memory now, adds it to the peaks and returns it.
func (s *MemSampler) Sample() (ProcMemory, error) {
	m, err := ReadProcMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.peaks.Err == nil {
			s.peaks.Err = err
		}
		return m, err
	}
	s.peaks.Samples++
	s.peaks.RSS = max(s.peaks.RSS, m.RSS)
	s.peaks.Anon = max(s.peaks.Anon, m.Anon)
	s.peaks.File = max(s.peaks.File, m.File)
	return m, nil
}

// Peaks returns the peaks so far.
func (s *MemSampler) Peaks() MemPeaks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peaks
}

// Stop ends the sampling after one last sample and returns the peaks. Further calls only
// return the peaks.
func (s *MemSampler) Stop() MemPeaks {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		s.Sample()
	})
	return s.Peaks()
}
