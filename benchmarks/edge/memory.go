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

// procStatus reads the kB fields of /proc/PID/status that are reported, in bytes.
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
			out[k] = v * 1024
		}
	}
	if _, ok := out["VmHWM"]; !ok {
		return nil, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return out, nil
}

// sampler records the largest VmRSS, RssAnon and RssFile of a process every 50 ms.
type sampler struct {
	pid  int
	done chan struct{}
	wg   sync.WaitGroup

	mu                sync.Mutex
	peakRSS, peakAnon int64
	peakFile, samples int64
	firstErr          error
}

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	st, err := procStatus(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.samples++
	s.peakRSS = max(s.peakRSS, st["VmRSS"])
	s.peakAnon = max(s.peakAnon, st["RssAnon"])
	s.peakFile = max(s.peakFile, st["RssFile"])
}

// stop ends sampling (after one last sample) and returns the peaks.
func (s *sampler) stop() (rss, anon, file, n int64, err error) {
	close(s.done)
	s.wg.Wait()
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakRSS, s.peakAnon, s.peakFile, s.samples, s.firstErr
}
