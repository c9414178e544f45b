package runner

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds reads utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat times %q %q", pid, f[11], f[12])
	}
	return (ut + st) / clockTicks, nil
}

// rssBytes reads VmRSS of pid.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// machineCPU returns busy and total jiffies over all CPUs from /proc/stat.
func machineCPU() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("parse /proc/stat: %q", line)
	}
	for i, x := range f[1:] {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc/stat: %q", line)
		}
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total, nil
}

// usage is the CPU and peak RSS of one process during a measurement.
type usage struct {
	CPUSeconds float64
	CPUPercent float64 // of one core
	PeakRSS    int64
}

// sampler samples processes every 50 ms between start and stop.
type sampler struct {
	pids    []int
	busy0   float64 // machine-wide jiffies at start
	total0  float64
	cpu0    []float64
	peak    []int64
	start   time.Time
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
}

func startSampler(pids []int) *sampler {
	s := &sampler{pids: pids, cpu0: make([]float64, len(pids)), peak: make([]int64, len(pids)), stopped: make(chan struct{})}
	for i, p := range pids {
		s.cpu0[i], _ = cpuSeconds(p)
	}
	s.busy0, s.total0, _ = machineCPU()
	s.start = time.Now()
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stopped:
				return
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.pids {
		if r, err := rssBytes(p); err == nil && r > s.peak[i] {
			s.peak[i] = r
		}
	}
}

// stop ends sampling and returns the usage of each process and the busy
// share of the whole machine, in % of one core (200 = both cores busy).
func (s *sampler) stop() ([]usage, float64) {
	close(s.stopped)
	s.wg.Wait()
	s.sample()
	machine := 0.0
	if busy, total, err := machineCPU(); err == nil && total > s.total0 {
		machine = 100 * float64(runtime.NumCPU()) * (busy - s.busy0) / (total - s.total0)
	}
	wall := time.Since(s.start).Seconds()
	out := make([]usage, len(s.pids))
	for i, p := range s.pids {
		c, _ := cpuSeconds(p)
		out[i] = usage{CPUSeconds: c - s.cpu0[i], PeakRSS: s.peak[i]}
		if wall > 0 {
			out[i].CPUPercent = 100 * out[i].CPUSeconds / wall
		}
	}
	return out, machine
}
