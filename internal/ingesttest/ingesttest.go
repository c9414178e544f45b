// Package ingesttest runs the real ingest binary for tests, as a process on
// loopback ports: built once per test binary (without -race, so it runs at
// its real speed and its RSS can be read), configured with functional
// options, closed when the test ends.
package ingesttest

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
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// Package is the ingest binary's import path.
const Package = "github.com/sluice-ingest/sluice/services/ingest"

var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ingesttest-")
	if err != nil {
		return "", fmt.Errorf("build ingest: %w", err)
	}
	bin := filepath.Join(dir, "ingest")
	if out, err := exec.Command("go", "build", "-o", bin, Package).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", Package, err, out)
	}
	return bin, nil
})

// Binary builds the ingest binary (once) and returns its path.
func Binary() (string, error) { return binary() }

// Remove deletes the built binary; call it from TestMain after m.Run.
func Remove() {
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
}

// Ingest is the ingest binary running on loopback ports.
type Ingest struct {
	*redistest.Command
	redistest.IngestPorts
}

// Option sets environment variables of the process.
type Option func(env map[string]string)

// WithEnv sets an INGEST_* variable.
func WithEnv(k, v string) Option { return func(env map[string]string) { env[k] = v } }

// WithOff turns the HTTP and no-ack front ends off.
func WithOff() Option {
	return func(env map[string]string) { env["INGEST_HTTP_ADDR"], env["INGEST_NOACK_ADDR"] = "off", "off" }
}

// Start runs the ingest binary against a single Redis at redisAddr, on
// free loopback ports (TCP, HTTP, no-ack, admin), and waits until /ready
// answers 200; it is closed when the test ends.
func Start(t redistest.TB, redisAddr string, opts ...Option) *Ingest {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var ports [4]int
	for i := range ports {
		if ports[i], err = redistest.FreePort(); err != nil {
			t.Fatalf("%v", err)
		}
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
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	c := redistest.NewCommand(t, redistest.CommandOptions{
		Name:  fmt.Sprintf("ingest-%d", p.Data),
		Path:  bin,
		Env:   list,
		Ready: redistest.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", p.Admin)),
	})
	return &Ingest{Command: c, IngestPorts: p}
}

// DataAddr is the TCP port with acks, host:port.
func (i *Ingest) DataAddr() string { return fmt.Sprintf("127.0.0.1:%d", i.Data) }

// HTTPAddr is the HTTP port, host:port.
func (i *Ingest) HTTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", i.HTTP) }

// HTTPURL is the URL of POST /v1/messages.
func (i *Ingest) HTTPURL() string { return "http://" + i.HTTPAddr() + "/v1/messages" }

// Metrics reads /metrics: every sample summed by metric name, and each
// labelled series by itself, e.g. `sluice_ingest_connections{transport="tcp"}`.
func (i *Ingest) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", i.Admin), nil)
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
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name, _, labelled := strings.Cut(line[:sp], "{")
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err == nil {
			out[name] += v
			if labelled {
				out[line[:sp]] = v
			}
		}
	}
	return out, sc.Err()
}

// Memory reads the process's resident set size and its peak, in bytes.
func (i *Ingest) Memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", i.PID()))
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

// SamplePeakRSS samples the resident set size every interval until stop
// is called; stop returns the largest sample.
func (i *Ingest) SamplePeakRSS(every time.Duration) (stop func() int64) {
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
				if rss, _, err := i.Memory(); err == nil {
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
