package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// ingestBin is the ingest binary, built once by TestMain without -race:
// producer tests run it as a process, at its real speed, and read its RSS.
var ingestBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ingest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ingestBin = filepath.Join(dir, "ingest")
	if out, err := exec.Command("go", "build", "-o", ingestBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ingest: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ingestProc is the ingest binary running on loopback ports.
type ingestProc struct {
	*redistest.Command
	redistest.IngestPorts
}

type ingestOption func(env map[string]string)

// withEnv sets an INGEST_* variable.
func withEnv(k, v string) ingestOption { return func(env map[string]string) { env[k] = v } }

// startIngest runs the ingest binary against a single Redis and waits
// until /ready answers 200; it is closed when the test ends.
func startIngest(t *testing.T, redisAddr string, opts ...ingestOption) *ingestProc {
	t.Helper()
	var ports [4]int
	for i := range ports {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	p := redistest.IngestPorts{Data: ports[0], HTTP: ports[1], Admin: ports[2], NoAck: ports[3]}
	env := map[string]string{
		"INGEST_REDIS_ADDR":     redisAddr,
		"INGEST_LISTEN_ADDR":    fmt.Sprintf("127.0.0.1:%d", p.Data),
		"INGEST_HTTP_ADDR":      fmt.Sprintf("127.0.0.1:%d", p.HTTP),
		"INGEST_NOACK_ADDR":     fmt.Sprintf("127.0.0.1:%d", p.NoAck),
		"INGEST_ADMIN_ADDR":     fmt.Sprintf("127.0.0.1:%d", p.Admin),
		"INGEST_READY_INTERVAL": "200ms",
		"INGEST_DRAIN_DELAY":    "1s",
	}
	for _, o := range opts {
		o(env)
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	c := redistest.NewCommand(t, redistest.CommandOptions{
		Name:  fmt.Sprintf("ingest-%d", p.Data),
		Path:  ingestBin,
		Env:   list,
		Ready: redistest.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", p.Admin)),
	})
	return &ingestProc{Command: c, IngestPorts: p}
}

func (p *ingestProc) dataAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.Data) }

func (p *ingestProc) httpURL() string { return fmt.Sprintf("http://127.0.0.1:%d/v1/messages", p.HTTP) }

// metrics reads /metrics: every sample summed by metric name, and each
// labelled series by itself, e.g. `sluice_ingest_connections{transport="tcp"}`.
func (p *ingestProc) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Admin), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get /metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, _, labelled := strings.Cut(line[:i], "{")
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[name] += v
			if labelled {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}

// memory reads the process's resident set size and its peak, in bytes.
func (p *ingestProc) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak, nil
}

// samplePeakRSS samples the process's resident set size every interval
// until stop is called; stop returns the largest sample.
func (p *ingestProc) samplePeakRSS(every time.Duration) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
				if rss, _, err := p.memory(); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}
