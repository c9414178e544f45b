//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ingest is the ingest side of a stack (Stack.Ingest): the ingest containers
// ingest-1..ingest-N, their admin HTTP endpoints and data ports.
type Ingest struct {
	nodes    *Containers
	cfg      Config
	password string // Redis and Sentinel password of the ingest user
}

// Names are the ingest container names, ingest-1..ingest-N.
func (in *Ingest) Names() []string {
	names := make([]string, in.cfg.IngestReplicas)
	for i := range names {
		names[i] = fmt.Sprintf("ingest-%d", i+1)
	}
	return names
}

// env is the environment of the ingest containers (IngestEnv applied last).
func (in *Ingest) env() map[string]string {
	env := map[string]string{
		"INGEST_SENTINEL_ADDRS":    "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
		"INGEST_SENTINEL_MASTER":   SentinelMaster,
		"INGEST_REDIS_USERNAME":    "ingest",
		"INGEST_REDIS_PASSWORD":    in.password,
		"INGEST_SENTINEL_PASSWORD": in.password,
		"INGEST_PROXY_PROTOCOL":    "true",
		// Tests roll containers quickly; HAProxy's checks (inter/fall) take it out of rotation
		// well within this.
		"INGEST_DRAIN_DELAY": "3s",
	}
	env["INGEST_MIN_REPLICAS"] = strconv.Itoa(in.cfg.MinReplicas)
	maps.Copy(env, in.cfg.IngestEnv)
	return env
}

// start starts one ingest container and waits until it is ready.
func (in *Ingest) start(ctx context.Context, name string) error {
	if _, err := in.nodes.run(ctx, containerSpec{
		name:    name,
		image:   in.nodes.Image("ingest"),
		env:     in.env(),
		ports:   []string{dataPort, adminPort},
		aliases: []string{"ingest"}, // HAProxy's server-template resolves this alias
	}); err != nil {
		return err
	}
	return in.WaitReady(ctx, name)
}

// AdminURL is the admin HTTP base URL of one ingest container.
func (in *Ingest) AdminURL(ctx context.Context, name string) (string, error) {
	addr, err := in.nodes.Node(name).HostAddr(ctx, adminPort)
	if err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

// DataAddr is the data port of one ingest container on 127.0.0.1. It
// expects a PROXY v2 header first (INGEST_PROXY_PROTOCOL=true).
func (in *Ingest) DataAddr(ctx context.Context, name string) (string, error) {
	return in.nodes.Node(name).HostAddr(ctx, dataPort)
}

// Get does a GET on an ingest container's admin port.
func (in *Ingest) Get(ctx context.Context, name, path string) (int, string, error) {
	base, err := in.AdminURL(ctx, name)
	if err != nil {
		return 0, "", err
	}
	return httpGet(ctx, base+path, "", "")
}

// WaitReady waits until an ingest container's /ready answers 200.
func (in *Ingest) WaitReady(ctx context.Context, name string) error {
	return retry(ctx, 100*time.Millisecond, func() error {
		code, body, err := in.Get(ctx, name, "/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s /ready: %d %s", name, code, strings.TrimSpace(body))
		}
		return nil
	})
}

// Metrics reads an ingest container's /metrics and returns every sample
// summed by metric name (labels dropped).
func (in *Ingest) Metrics(ctx context.Context, name string) (map[string]float64, error) {
	code, body, err := in.Get(ctx, name, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: status %d", name, code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		metric, _, _ := strings.Cut(fields[0], "{")
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		out[metric] += v
	}
	return out, sc.Err()
}
