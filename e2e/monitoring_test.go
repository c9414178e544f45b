//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestMonitoring runs the monitoring of compose/monitoring.yaml next to a stack: the
// sluice/monitoring image as redis-exporter and as Prometheus, with the repository's
// monitoring/prometheus.yml and rules.yml, on the stack's network under the same names.
// Prometheus must find every ingest container through Docker DNS and scrape every target
// (ingest, backup, HAProxy with basic auth, the three Redis nodes through the exporter)
// successfully, and load the alert rules.
func TestMonitoring(t *testing.T) {
	s := StartStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	image := s.Containers.Image("monitoring")
	if _, err := s.Containers.Client().ImageInspect(ctx, image); err != nil {
		t.Fatalf("e2e: image %s not found: run `make images`", image)
	}
	startBackup(ctx, t, s)

	// As compose/monitoring.yaml runs them.
	if _, err := s.Containers.run(ctx, containerSpec{
		name:  "redis-exporter",
		image: image,
		cmd:   []string{"redis-exporter"},
		env:   map[string]string{"REDIS_USER": "monitoring", "REDIS_PASSWORD": s.RedisPassword},
	}); err != nil {
		t.Fatalf("start redis-exporter: %v", err)
	}
	healthy := func(name, what string) {
		t.Helper()
		if err := retry(ctx, 200*time.Millisecond, func() error {
			_, err := s.Node(name).Exec(ctx, "/usr/local/bin/sluice-monitoring", "healthcheck", what)
			return err
		}); err != nil {
			t.Fatalf("%s not healthy: %v\n%s", name, err, s.Node(name).Logs(ctx))
		}
	}
	healthy("redis-exporter", "redis-exporter")
	if _, err := s.Containers.run(ctx, containerSpec{
		name:  "prometheus",
		image: image,
		cmd:   []string{"prometheus"},
		env: map[string]string{
			"HAPROXY_STATS_USER":     s.StatsUser,
			"HAPROXY_STATS_PASSWORD": s.StatsPassword,
		},
		files: []repoFile{
			{"monitoring/prometheus.yml", "/etc/sluice/monitoring/prometheus.yml", 0o644},
			{"monitoring/rules.yml", "/etc/sluice/monitoring/rules.yml", 0o644},
		},
		ports: []string{"9090/tcp"},
	}); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	healthy("prometheus", "prometheus")
	addr, err := s.Node("prometheus").HostAddr(ctx, "9090/tcp")
	if err != nil {
		t.Fatal(err)
	}
	api := "http://" + addr + "/api/v1/"

	// The ingest targets are the ingest containers' addresses, found by DNS.
	var want []string
	for _, n := range s.Ingest.Names() {
		ip, err := s.Node(n).IP(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ip+":8086")
	}
	sort.Strings(want)
	wantJobs := map[string]int{"prometheus": 1, "ingest": len(want), "backup": 1, "haproxy": 1, "redis": 3, "redis_exporter": 1}

	t.Run("every target is discovered and up", func(t *testing.T) {
		// Scrapes run every 10 s: wait until each target has been scraped successfully once.
		var last targetsReport
		err := retry(ctx, time.Second, func() error {
			r, err := getTargets(ctx, api)
			if err != nil {
				return err
			}
			last = r
			return r.check(wantJobs, want)
		})
		for _, tg := range last.Active {
			t.Logf("target %s %s: %s %s", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError)
		}
		if err != nil {
			t.Fatalf("targets: %v", err)
		}
	})

	t.Run("alert rules are loaded", func(t *testing.T) {
		code, body, err := httpGet(ctx, api+"rules?type=alert", "", "")
		if err != nil || code != 200 {
			t.Fatalf("GET rules: %d %v", code, err)
		}
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				names = append(names, rule.Name)
			}
		}
		for _, n := range []string{"SluiceIngestDown", "SluiceAcksStalled", "SluiceRedisReplicaMissing", "SluiceHAProxyNoIngest", "SluiceBackupStale"} {
			if !slices.Contains(names, n) {
				t.Errorf("alert %s not loaded (loaded: %q)", n, names)
			}
		}
	})

	t.Run("replicas, Redis nodes and HAProxy servers are scraped", func(t *testing.T) {
		// Values, not just targets: the exporter logs in to every node, HAProxy answers with auth.
		for q, want := range map[string]float64{
			`max(redis_connected_slaves and on (instance) redis_instance_info{role="master"})`: 2,
			`count(redis_up == 1)`:                                3,
			`sum(haproxy_backend_active_servers{proxy="ingest"})`: float64(len(s.Ingest.Names())),
		} {
			err := retry(ctx, time.Second, func() error {
				got, err := queryScalar(ctx, api, q)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("%s = %v, want %v", q, got, want)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
	})
}

type targetsReport struct {
	Active []struct {
		ScrapePool       string            `json:"scrapePool"`
		ScrapeURL        string            `json:"scrapeUrl"`
		Health           string            `json:"health"`
		LastError        string            `json:"lastError"`
		DiscoveredLabels map[string]string `json:"discoveredLabels"`
		Labels           map[string]string `json:"labels"`
	} `json:"activeTargets"`
}

func getTargets(ctx context.Context, api string) (targetsReport, error) {
	var r struct {
		Data targetsReport `json:"data"`
	}
	code, body, err := httpGet(ctx, api+"targets?state=active", "", "")
	if err != nil {
		return r.Data, err
	}
	if code != 200 {
		return r.Data, fmt.Errorf("GET targets: status %d", code)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r.Data, fmt.Errorf("decode targets: %w", err)
	}
	return r.Data, nil
}

// check: every job has its targets, all up, and the ingest targets are exactly the ingest
// containers, discovered through the DNS name "ingest".
func (r targetsReport) check(jobs map[string]int, ingest []string) error {
	count := map[string]int{}
	var problems, ingestAddrs []string
	for _, tg := range r.Active {
		count[tg.ScrapePool]++
		if tg.Health != "up" {
			problems = append(problems, fmt.Sprintf("%s %s is %q (%s)", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError))
		}
		if tg.ScrapePool == "ingest" {
			ingestAddrs = append(ingestAddrs, tg.Labels["instance"])
			if tg.DiscoveredLabels["__meta_dns_name"] != "ingest" {
				problems = append(problems, fmt.Sprintf("ingest target %s not found through DNS (labels %v)", tg.ScrapeURL, tg.DiscoveredLabels))
			}
		}
	}
	for job, n := range jobs {
		if count[job] != n {
			problems = append(problems, fmt.Sprintf("job %s has %d targets, want %d", job, count[job], n))
		}
	}
	sort.Strings(ingestAddrs)
	if !slices.Equal(ingestAddrs, ingest) {
		problems = append(problems, fmt.Sprintf("ingest targets %q, want the containers %q", ingestAddrs, ingest))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// queryScalar runs an instant query whose result is one sample.
func queryScalar(ctx context.Context, api, q string) (float64, error) {
	code, body, err := httpGet(ctx, api+"query?query="+url.QueryEscape(q), "", "")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("query %s: status %d: %s", q, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return 0, fmt.Errorf("decode query %s: %w", q, err)
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d samples, want 1", q, len(r.Data.Result))
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	var f float64
	if _, err := fmt.Sscan(v, &f); err != nil {
		return 0, fmt.Errorf("query %s: value %q: %w", q, v, err)
	}
	return f, nil
}
