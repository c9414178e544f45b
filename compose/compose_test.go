package compose_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// service holds the parts of a Compose service these rules look at. yaml.v3
// resolves the `<<: *anchor` merges, and rejects duplicate keys the way
// Compose v2 does (docker-compose 1.29 silently keeps the last one).
type service struct {
	Image       string            `yaml:"image"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck map[string]any    `yaml:"healthcheck"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Configs  any `yaml:"configs"`
	Profiles any `yaml:"profiles"`
}

func load(t *testing.T) (map[string]any, map[string]service) {
	t.Helper()
	return loadFile(t, "compose.yaml")
}

func loadFile(t *testing.T, name string) (map[string]any, map[string]service) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := yaml.Unmarshal(raw, &top); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var doc struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s services: %v", name, err)
	}
	if len(doc.Services) == 0 {
		t.Fatalf("%s has no services", name)
	}
	return top, doc.Services
}

// Rules that keep the file working on docker-compose 1.29 and Compose v2.
func TestPortableAcrossComposeVersions(t *testing.T) {
	top, services := load(t)
	for _, key := range []string{"version", "name"} {
		if _, ok := top[key]; ok {
			t.Errorf("top-level %q: 1.29 and v2 disagree on it; use -p for the project name", key)
		}
	}
	for name, s := range services {
		if s.Configs != nil {
			t.Errorf("%s: service-level configs are dropped by 1.29; bind-mount instead", name)
		}
		if s.Profiles != nil {
			t.Errorf("%s: profiles are not in 1.29", name)
		}
		if _, ok := s.Healthcheck["start_interval"]; ok {
			t.Errorf("%s: healthcheck.start_interval is rejected by 1.29", name)
		}
	}
}

// What the platform issue promises about the stack.
func TestTopologyPromises(t *testing.T) {
	_, services := load(t)
	want := []string{"redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3", "ingest", "haproxy", "backup"}
	for _, n := range want {
		if _, ok := services[n]; !ok {
			t.Errorf("service %s missing", n)
		}
	}
	image := regexp.MustCompile(`^sluice/(redis|haproxy|ingest|backup):\$\{SLUICE_TAG(:\?[^}]*)?\}$`)
	published := regexp.MustCompile(`^"?\$\{SLUICE_BIND:-127\.0\.0\.1\}:\$\{SLUICE_(PORT:-9501|HTTP_PORT:-9502|NOACK_PORT:-9503|STATS_PORT:-8404)\}:(9501|9502|9503|8404)"?$`)
	for name, s := range services {
		t.Run(name, func(t *testing.T) {
			if !image.MatchString(s.Image) {
				t.Errorf("image %q is not sluice/<part>:${SLUICE_TAG}", s.Image)
			}
			if test, _ := s.Healthcheck["test"].([]any); len(test) == 0 {
				t.Errorf("no healthcheck test")
			}
			for dep, d := range s.DependsOn {
				if d.Condition != "service_healthy" {
					t.Errorf("depends_on %s: condition %q, want service_healthy", dep, d.Condition)
				}
			}
			if name != "haproxy" && len(s.Ports) > 0 {
				t.Errorf("publishes %v; only HAProxy is published", s.Ports)
			}
			for _, p := range s.Ports {
				if !published.MatchString(p) {
					t.Errorf("port %q is not bound to ${SLUICE_BIND:-127.0.0.1} with an overridable host port", p)
				}
			}
			for k, v := range s.Environment {
				if strings.Contains(k, "PASSWORD") && !strings.HasPrefix(v, "${") {
					t.Errorf("%s has a literal value; passwords come from the environment", k)
				}
				if strings.Contains(k, "PASSWORD") && !strings.Contains(v, ":?") {
					t.Errorf("%s=%s has no ${VAR:?} guard: a missing password must stop compose", k, v)
				}
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") {
					if _, err := os.Stat(filepath.Join(".", src)); err != nil {
						t.Errorf("bind mount source %s: %v", src, err)
					}
				}
			}
		})
	}
	if got := services["haproxy"].Ports; len(got) != 4 {
		t.Errorf("haproxy publishes %v, want the TCP, HTTP, no-ack and stats ports", got)
	}
	if r := services["ingest"].Deploy.Replicas; r != 3 {
		t.Errorf("ingest deploy.replicas = %d, want 3", r)
	}
	ingestEnv := services["ingest"].Environment
	for k, want := range map[string]string{
		"INGEST_MIN_REPLICAS":    "${INGEST_MIN_REPLICAS:-2}",
		"INGEST_PROXY_PROTOCOL":  "true",
		"INGEST_SENTINEL_MASTER": "sluice",
	} {
		if got := ingestEnv[k]; got != want {
			t.Errorf("ingest %s = %q, want %q", k, got, want)
		}
	}
	for i := 1; i <= 3; i++ {
		for _, kind := range []string{"redis-", "sentinel-"} {
			name := kind + string(rune('0'+i))
			mounts := services[name].Volumes
			if !slices.ContainsFunc(mounts, func(v string) bool { return strings.HasPrefix(v, name+"-data:") }) {
				t.Errorf("%s: no named data volume in %v", name, mounts)
			}
		}
	}
}

// tls.yaml (make up TLS=1) only adds HAProxy's TLS settings: the variables
// haproxy.cfg reads, and the certificate directory they point into.
func TestTLSOverride(t *testing.T) {
	top, services := loadFile(t, "tls.yaml")
	if _, ok := top["version"]; ok {
		t.Error("top-level version")
	}
	if len(services) != 1 {
		t.Fatalf("services %v, want only haproxy", services)
	}
	hp, ok := services["haproxy"]
	if !ok {
		t.Fatal("no haproxy service")
	}
	cfg, err := os.ReadFile("../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for k := range hp.Environment {
		if !strings.Contains(string(cfg), "$"+k) {
			t.Errorf("%s is set but haproxy.cfg does not read it", k)
		}
	}
	if cert := hp.Environment["HAPROXY_TLS_CERT"]; !strings.HasPrefix(cert, "/etc/sluice/tls/") {
		t.Errorf("HAPROXY_TLS_CERT=%q is not in the mounted /etc/sluice/tls", cert)
	}
	if len(hp.Volumes) != 1 || !strings.HasSuffix(hp.Volumes[0], ":/etc/sluice/tls:ro") {
		t.Errorf("volumes %v, want the certificate directory read-only at /etc/sluice/tls", hp.Volumes)
	}
}

// monitoring.yaml (make up MONITORING=1) adds Prometheus and redis_exporter with the same
// rules as compose.yaml: portable to 1.29, healthchecks, sluice images, published ports
// on ${SLUICE_BIND:-127.0.0.1}, guarded passwords, config files from ../monitoring.
func TestMonitoringOverride(t *testing.T) {
	top, services := loadFile(t, "monitoring.yaml")
	for _, key := range []string{"version", "name"} {
		if _, ok := top[key]; ok {
			t.Errorf("top-level %q: 1.29 and v2 disagree on it", key)
		}
	}
	_, base := load(t)
	want := map[string][]string{
		"prometheus":     {`"${SLUICE_BIND:-127.0.0.1}:${SLUICE_PROMETHEUS_PORT:-9090}:9090"`},
		"redis-exporter": nil,
	}
	if len(services) != len(want) {
		t.Errorf("services %d, want prometheus and redis-exporter", len(services))
	}
	for name, ports := range want {
		t.Run(name, func(t *testing.T) {
			s, ok := services[name]
			if !ok {
				t.Fatal("missing")
			}
			if _, clash := base[name]; clash {
				t.Errorf("%s is already a service of compose.yaml: the override would change it", name)
			}
			if s.Image != "sluice/monitoring:${SLUICE_TAG:?set SLUICE_TAG (make up exports it)}" {
				t.Errorf("image %q is not sluice/monitoring:${SLUICE_TAG}", s.Image)
			}
			if s.Configs != nil || s.Profiles != nil {
				t.Error("configs or profiles: not in docker-compose 1.29")
			}
			if test, _ := s.Healthcheck["test"].([]any); len(test) == 0 {
				t.Error("no healthcheck test")
			}
			if _, ok := s.Healthcheck["start_interval"]; ok {
				t.Error("healthcheck.start_interval is rejected by 1.29")
			}
			var quoted []string
			for _, p := range s.Ports {
				quoted = append(quoted, `"`+p+`"`)
			}
			if !slices.Equal(quoted, ports) {
				t.Errorf("ports %v, want %v", quoted, ports)
			}
			for k, v := range s.Environment {
				if strings.Contains(k, "PASSWORD") && (!strings.HasPrefix(v, "${") || !strings.Contains(v, ":?")) {
					t.Errorf("%s=%s: passwords come from the environment with a ${VAR:?} guard", k, v)
				}
			}
			for dep, d := range s.DependsOn {
				if d.Condition != "service_healthy" {
					t.Errorf("depends_on %s: condition %q, want service_healthy", dep, d.Condition)
				}
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") {
					if !strings.HasPrefix(src, "../monitoring/") {
						t.Errorf("bind mount %s is not from ../monitoring", src)
					}
					if _, err := os.Stat(filepath.Join(".", src)); err != nil {
						t.Errorf("bind mount source %s: %v", src, err)
					}
				}
			}
		})
	}
	// Prometheus reads HAProxy's basic auth; the exporter the Redis password.
	if env := services["prometheus"].Environment; env["HAPROXY_STATS_PASSWORD"] == "" || env["HAPROXY_STATS_USER"] != "${HAPROXY_STATS_USER:-admin}" {
		t.Errorf("prometheus environment %v lacks HAProxy's stats credentials", env)
	}
	if env := services["redis-exporter"].Environment; env["REDIS_PASSWORD"] == "" {
		t.Errorf("redis-exporter environment %v lacks REDIS_PASSWORD", env)
	}
}

// The queue key the services are given is the one the Go code defaults to
// (redisconn.DefaultKey): consumers, backup and status read that list.
func TestQueueKeyIsTheDefault(t *testing.T) {
	_, services := load(t)
	keys := regexp.MustCompile(`^(INGEST_REDIS|BACKUP|CONSUMER|STATUS)_KEY$`)
	seen := 0
	for name, s := range services {
		for k, v := range s.Environment {
			if !keys.MatchString(k) {
				continue
			}
			seen++
			if v != redisconn.DefaultKey {
				t.Errorf("%s: %s=%s, want redisconn.DefaultKey %q", name, k, v, redisconn.DefaultKey)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no service sets a queue key (INGEST_REDIS_KEY): the test looks for the wrong names")
	}
}
