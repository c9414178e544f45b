//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"gopkg.in/yaml.v3"
)

// The container layout mirrors compose/compose.yaml: same images, same
// entrypoint commands, same config files at the same paths.

const (
	redisConfPath    = "/etc/sluice/redis.conf"
	sentinelConfPath = "/etc/sluice/sentinel.conf"
	haproxyCfgPath   = "/etc/haproxy/haproxy.cfg"
)

func (s *Stack) redisEnv() map[string]string {
	env := map[string]string{
		// Every ACL user of redis/redis.conf (and the Sentinels, by default) gets the one
		// test password; the harness's own clients log in as admin.
		"REDIS_PASSWORD":               s.RedisPassword,
		"REDIS_REPLICATION_PASSWORD":   s.RedisPassword,
		"REDIS_SENTINEL_PASSWORD":      s.RedisPassword,
		"REDIS_INGEST_PASSWORD":        s.RedisPassword,
		"REDIS_BACKUP_PASSWORD":        s.RedisPassword,
		"REDIS_STATUS_PASSWORD":        s.RedisPassword,
		"REDIS_CONSUMER_PASSWORD":      s.RedisPassword,
		"REDIS_MONITORING_PASSWORD":    s.RedisPassword,
		"REDIS_SENTINELS":              "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
		"REDIS_INITIAL_MASTER":         "redis-1",
		"SENTINEL_MASTER_NAME":         SentinelMaster,
		"SENTINEL_DOWN_AFTER_MS":       strconv.FormatInt(s.opts.DownAfter.Milliseconds(), 10),
		"SENTINEL_FAILOVER_TIMEOUT_MS": strconv.FormatInt(s.opts.FailoverTimeout.Milliseconds(), 10),
		// min-replicas-max-lag must stay below down-after (whole seconds, at least 1).
		"REDIS_MIN_REPLICAS_MAX_LAG": strconv.Itoa(max(1, int(s.opts.DownAfter/time.Second))),
	}
	maps.Copy(env, s.opts.RedisEnv)
	return env
}

func (s *Stack) startRedis(ctx context.Context, name string) error {
	env := s.redisEnv()
	env["REDIS_ANNOUNCE_HOST"] = name
	return s.run(ctx, containerSpec{
		name:     name,
		image:    s.Image("redis"),
		env:      env,
		cmd:      []string{"redis"},
		files:    []testcontainers.ContainerFile{s.repoFile("redis/redis.conf", redisConfPath, 0o644)},
		ports:    []string{redisPort},
		netAdmin: true,
	})
}

func (s *Stack) startSentinel(ctx context.Context, name string) error {
	env := s.redisEnv()
	env["REDIS_ANNOUNCE_HOST"] = name
	return s.run(ctx, containerSpec{
		name:     name,
		image:    s.Image("redis"),
		env:      env,
		cmd:      []string{"sentinel"},
		files:    []testcontainers.ContainerFile{s.repoFile("redis/sentinel.conf", sentinelConfPath, 0o644)},
		ports:    []string{sentinelPort},
		netAdmin: true,
	})
}

// IngestEnv is the environment of the ingest containers (before IngestEnv overrides).
func (s *Stack) ingestEnv() map[string]string {
	env := map[string]string{
		"INGEST_SENTINEL_ADDRS":    "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
		"INGEST_SENTINEL_MASTER":   SentinelMaster,
		"INGEST_REDIS_USERNAME":    "ingest",
		"INGEST_REDIS_PASSWORD":    s.RedisPassword,
		"INGEST_SENTINEL_PASSWORD": s.RedisPassword,
		"INGEST_PROXY_PROTOCOL":    "true",
		// Tests roll containers quickly; HAProxy's checks (inter/fall) take it out of rotation
		// well within this.
		"INGEST_DRAIN_DELAY": "3s",
	}
	env["INGEST_MIN_REPLICAS"] = strconv.Itoa(s.opts.MinReplicas)
	maps.Copy(env, s.opts.IngestEnv)
	return env
}

func (s *Stack) startIngest(ctx context.Context, name string) error {
	err := s.run(ctx, containerSpec{
		name:    name,
		image:   s.Image("ingest"),
		env:     s.ingestEnv(),
		ports:   []string{dataPort, adminPort},
		aliases: []string{"ingest"}, // HAProxy's server-template resolves this alias
	})
	if err != nil {
		return err
	}
	return s.WaitIngestReady(ctx, name)
}

// WaitIngestReady waits until an ingest container's /ready answers 200.
func (s *Stack) WaitIngestReady(ctx context.Context, name string) error {
	return retry(ctx, 100*time.Millisecond, func() error {
		code, body, err := s.IngestGet(ctx, name, "/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s /ready: %d %s", name, code, strings.TrimSpace(body))
		}
		return nil
	})
}

// IngestGet does a GET on an ingest container's admin port.
func (s *Stack) IngestGet(ctx context.Context, name, path string) (int, string, error) {
	base, err := s.IngestAdminURL(ctx, name)
	if err != nil {
		return 0, "", err
	}
	return httpGet(ctx, base+path, "", "")
}

func (s *Stack) startHAProxy(ctx context.Context) error {
	return s.run(ctx, containerSpec{
		name:  "haproxy",
		image: s.Image("haproxy"),
		env: map[string]string{
			"HAPROXY_STATS_USER":     s.StatsUser,
			"HAPROXY_STATS_PASSWORD": s.StatsPassword,
		},
		files: []testcontainers.ContainerFile{s.repoFile("haproxy/haproxy.cfg", haproxyCfgPath, 0o644)},
		ports: []string{dataPort, httpPort, noackPort, statsPort},
	})
}

// IngestMetrics reads an ingest container's /metrics and returns every
// sample summed by metric name (labels dropped).
func (s *Stack) IngestMetrics(ctx context.Context, name string) (map[string]float64, error) {
	code, body, err := s.IngestGet(ctx, name, "/metrics")
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

// shippedIngestEnv returns the value compose/compose.yaml gives an ingest
// environment variable; "${VAR:-default}" yields its default.
func shippedIngestEnv(root, key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "compose", "compose.yaml"))
	if err != nil {
		return "", fmt.Errorf("read compose file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("parse compose file: %w", err)
	}
	node := &doc
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	for _, k := range []string{"services", "ingest", "environment", key} {
		var next *yaml.Node
		if node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == k {
					next = node.Content[i+1]
				}
			}
		}
		if next == nil {
			return "", fmt.Errorf("compose/compose.yaml: no services.ingest.environment.%s (missing %q)", key, k)
		}
		node = next
	}
	v := node.Value
	if inner, ok := strings.CutPrefix(v, "${"+key+":-"); ok {
		v = strings.TrimSuffix(inner, "}")
	}
	return v, nil
}
