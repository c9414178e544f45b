//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the resolved shape of one stack: the defaults with every Option
// applied. Stack.Config returns it.
type Config struct {
	// MinReplicas is INGEST_MIN_REPLICAS of the ingest containers; 0 until
	// resolved means the shipped default, read from compose/compose.yaml.
	MinReplicas int
	// DownAfter is Sentinel's down-after-milliseconds (default 1500 ms).
	DownAfter time.Duration
	// FailoverTimeout is Sentinel's failover-timeout (default 10 s).
	FailoverTimeout time.Duration
	// IngestReplicas is the number of ingest containers (default 3).
	IngestReplicas int
	// IngestEnv adds or overrides ingest environment variables.
	IngestEnv map[string]string
	// RedisEnv adds or overrides environment variables of the Redis and Sentinel containers.
	RedisEnv map[string]string
}

// Option changes one setting of a stack started by StartStack. No option
// means the shipped configuration with a short Sentinel down-after.
type Option func(*Config)

// WithMinReplicas sets INGEST_MIN_REPLICAS on the ingest containers (0: the
// shipped default of compose/compose.yaml).
func WithMinReplicas(n int) Option { return func(c *Config) { c.MinReplicas = n } }

// WithDownAfter sets Sentinel's down-after-milliseconds.
func WithDownAfter(d time.Duration) Option { return func(c *Config) { c.DownAfter = d } }

// WithFailoverTimeout sets Sentinel's failover-timeout.
func WithFailoverTimeout(d time.Duration) Option { return func(c *Config) { c.FailoverTimeout = d } }

// WithIngestReplicas sets the number of ingest containers.
func WithIngestReplicas(n int) Option { return func(c *Config) { c.IngestReplicas = n } }

// WithIngestEnv adds or overrides ingest environment variables (merged over
// earlier WithIngestEnv options).
func WithIngestEnv(env map[string]string) Option {
	return func(c *Config) { c.IngestEnv = merged(c.IngestEnv, env) }
}

// WithRedisEnv adds or overrides environment variables of the Redis and
// Sentinel containers (merged over earlier WithRedisEnv options).
func WithRedisEnv(env map[string]string) Option {
	return func(c *Config) { c.RedisEnv = merged(c.RedisEnv, env) }
}

func merged(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

// newConfig applies opts over the defaults; MinReplicas 0 is resolved from
// the compose file of the repository at root.
func newConfig(root string, opts ...Option) (Config, error) {
	var c Config
	for _, o := range opts {
		o(&c)
	}
	if c.DownAfter <= 0 {
		c.DownAfter = 1500 * time.Millisecond
	}
	if c.FailoverTimeout <= 0 {
		c.FailoverTimeout = 10 * time.Second
	}
	if c.IngestReplicas <= 0 {
		c.IngestReplicas = 3
	}
	if c.MinReplicas == 0 {
		v, err := shippedEnv(root, "ingest", "INGEST_MIN_REPLICAS")
		if err != nil {
			return c, fmt.Errorf("e2e: shipped INGEST_MIN_REPLICAS: %w", err)
		}
		if c.MinReplicas, err = strconv.Atoi(v); err != nil {
			return c, fmt.Errorf("e2e: shipped INGEST_MIN_REPLICAS %q: %w", v, err)
		}
	}
	return c, nil
}

// shippedEnv returns the value compose/compose.yaml gives an environment
// variable of one service, its x- anchors merged in; "${VAR:-default}" yields
// its default. The suite reads the shipped settings from there, so that it
// tests what users run.
func shippedEnv(root, service, key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "compose", "compose.yaml"))
	if err != nil {
		return "", fmt.Errorf("read compose file: %w", err)
	}
	var doc struct {
		Services map[string]struct {
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("parse compose file: %w", err)
	}
	raw, ok := doc.Services[service].Environment[key]
	if !ok {
		return "", fmt.Errorf("compose/compose.yaml: no services.%s.environment.%s", service, key)
	}
	v := fmt.Sprint(raw)
	if inner, ok := strings.CutPrefix(v, "${"+key+":-"); ok {
		v = strings.TrimSuffix(inner, "}")
	}
	return v, nil
}
