// Package monitoring_test checks the files of monitoring/ against the real processes: every
// alert expression (rules.yml) and every dashboard query (dashboard.json) parses with
// Prometheus's own PromQL parser (the version of the Prometheus the stack runs, 2.42), and
// every metric and label it selects is exported by the process that Prometheus scrapes for it:
// the ingest binary, HAProxy with the shipped haproxy.cfg, Debian's redis_exporter against a
// real Redis, and the backup service (from its code: it needs a whole Sentinel topology).
package monitoring_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ingesttest.Remove()
	os.Exit(code)
}

// query is one PromQL expression of the monitoring files.
type query struct {
	Where string // "rules.yml alert SluiceAcksStalled", "dashboard.json panel ..."
	Expr  string
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// loadRules returns the expressions of a rules file, and its alert and recording rule names.
func loadRules(t *testing.T, path string) (qs []query, alerts, records []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert != "":
				alerts = append(alerts, r.Alert)
				qs = append(qs, query{fmt.Sprintf("%s alert %s", filepath.Base(path), r.Alert), r.Expr})
			case r.Record != "":
				records = append(records, r.Record)
				qs = append(qs, query{fmt.Sprintf("%s record %s", filepath.Base(path), r.Record), r.Expr})
			}
		}
	}
	return qs, alerts, records
}

// loadDashboard returns every target expression of a Grafana dashboard.
func loadDashboard(t *testing.T, path string) []query {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("%s: __inputs %+v, want one Prometheus datasource input DS_PROMETHEUS", path, d.Inputs)
	}
	var qs []query
	for _, p := range d.Panels {
		if p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("%s: panel %q datasource %q, want ${DS_PROMETHEUS}", path, p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("%s panel %q %s", filepath.Base(path), p.Title, tg.RefID), tg.Expr})
		}
	}
	return qs
}

// grafanaVars are Grafana's built-in range variables, replaced by a duration before parsing.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

// selector is one metric selected by an expression, with the label names it matches on.
type selector struct {
	Metric string
	Labels []string
}

// selectors parses expr and lists the metrics it selects.
func selectors(expr string) ([]selector, error) {
	e, err := parser.ParseExpr(grafanaVars.ReplaceAllString(expr, "1m"))
	if err != nil {
		return nil, err
	}
	var out []selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if s.Metric == "" && m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Labels = append(s.Labels, m.Name)
		}
		out = append(out, s)
		return nil
	})
	return out, nil
}

// exported maps a metric name to the label names of its series.
type exported map[string]map[string]bool

func (e exported) add(name string, lbls ...string) {
	if e[name] == nil {
		e[name] = map[string]bool{}
	}
	for _, l := range lbls {
		e[name][l] = true
	}
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// check reports the problems of one expression against what is exported.
func (e exported) check(q query) []string {
	sels, err := selectors(q.Expr)
	if err != nil {
		return []string{fmt.Sprintf("%s: does not parse: %v", q.Where, err)}
	}
	if len(sels) == 0 {
		return []string{fmt.Sprintf("%s: selects no metric", q.Where)}
	}
	var out []string
	for _, s := range sels {
		if s.Metric == "" {
			out = append(out, fmt.Sprintf("%s: a selector without a metric name", q.Where))
			continue
		}
		have, ok := e[s.Metric]
		if !ok {
			out = append(out, fmt.Sprintf("%s: metric %s is exported by nothing Prometheus scrapes", q.Where, s.Metric))
			continue
		}
		for _, l := range s.Labels {
			if !have[l] && !slices.Contains(targetLabels, l) {
				out = append(out, fmt.Sprintf("%s: metric %s has no label %q", q.Where, s.Metric, l))
			}
		}
	}
	return out
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+`)
var labelName = regexp.MustCompile(`(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)="`)

// parseExposition adds every sample's metric and label names of a text exposition.
func (e exported) parseExposition(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var lbls []string
		for _, l := range labelName.FindAllStringSubmatch(m[3], -1) {
			lbls = append(lbls, l[1])
		}
		e.add(m[1], lbls...)
		n++
	}
	return n, sc.Err()
}

// scrape GETs a metrics URL (with basic auth when user is set) into e.
func (e exported) scrape(ctx context.Context, url, user, password string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: status %s", url, resp.Status)
	}
	n, err := e.parseExposition(resp.Body)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	if n == 0 {
		return fmt.Errorf("scrape %s: no samples", url)
	}
	return nil
}

// backupMetrics lists the sluice_backup_* metrics the backup service registers, from its code:
// running it needs a Sentinel topology and a replica to snapshot, which the e2e suite has.
var backupMetric = regexp.MustCompile(`Name:\s*"(sluice_backup_[a-z0-9_]+)"`)

func (e exported) addBackupFromCode(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob("../services/backup/internal/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range backupMetric.FindAllStringSubmatch(string(raw), -1) {
			e.add(m[1]) // plain gauges and counters: no labels
			n++
		}
	}
	if n == 0 {
		t.Fatal("no sluice_backup_* metric found in services/backup/internal")
	}
}

// startStack runs what Prometheus scrapes, on loopback, and returns everything it exports:
// a Redis with a password, the ingest binary writing to it (a few messages sent, so the
// labelled series exist), HAProxy with the shipped config in front of it, and redis_exporter
// scraping the Redis through /scrape?target= as monitoring/prometheus.yml does.
func startStack(t *testing.T) exported {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const password = "monitoring-test"
	r := redistest.NewRedis(t, redistest.RedisOptions{Password: password})
	replica := redistest.NewRedis(t, redistest.RedisOptions{Password: password, ReplicaOf: r.Addr})

	ing := ingesttest.Start(t, r.Addr, ingesttest.WithEnv("INGEST_REDIS_PASSWORD", password))
	in := ing.IngestPorts
	// Two messages and their ack: data_queue exists, the ack series are observed.
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", in.Data), 5*time.Second)
	if err != nil {
		t.Fatalf("dial ingest: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "hello\nworld\n"); err != nil {
		t.Fatalf("send to ingest: %v", err)
	}
	ack, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(ack) != "OK 2" {
		t.Fatalf("ack %q, %v; want OK 2", ack, err)
	}

	cfg, err := os.ReadFile("../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	const statsUser, statsPassword = "admin", "monitoring-test-stats"
	t.Setenv("HAPROXY_STATS_USER", statsUser)
	t.Setenv("HAPROXY_STATS_PASSWORD", statsPassword)
	var cfgErr error
	h := redistest.NewHAProxy(t, redistest.HAProxyOptions{
		Ports: 4,
		Config: func(p []int) string {
			var out string
			out, cfgErr = redistest.ShippedHAProxyConfig(string(cfg), redistest.ShippedPorts{
				Stats: p[0], Data: p[1], HTTP: p[2], NoAck: p[3], Ingests: []redistest.IngestPorts{in}})
			return out
		},
	})
	if cfgErr != nil {
		t.Fatal(cfgErr)
	}

	exporterPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The flags of monitoring/entrypoint.sh (redis-exporter), on loopback.
	redistest.NewCommand(t, redistest.CommandOptions{
		Name: "redis_exporter",
		Path: "prometheus-redis-exporter",
		Args: []string{fmt.Sprintf("-web.listen-address=127.0.0.1:%d", exporterPort), "-redis.addr=",
			"-check-single-keys=db0=data_queue"},
		Env:   []string{"REDIS_PASSWORD=" + password},
		Ready: redistest.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/health", exporterPort)),
	})

	e := exported{}
	for _, s := range []struct{ url, user, password string }{
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", in.Admin), "", ""},
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", h.Ports[0]), statsUser, statsPassword},
		{fmt.Sprintf("http://127.0.0.1:%d/scrape?target=redis://%s", exporterPort, r.Addr), "", ""},
		{fmt.Sprintf("http://127.0.0.1:%d/scrape?target=redis://%s", exporterPort, replica.Addr), "", ""},
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", exporterPort), "", ""},
	} {
		if err := e.scrape(ctx, s.url, s.user, s.password); err != nil {
			t.Fatal(err)
		}
	}
	e.addBackupFromCode(t)
	// Prometheus's own series for every target (the recording rules are added by the caller).
	e.add("up", targetLabels...)
	return e
}

// TestQueriesUseExportedMetrics: every alert and dashboard expression parses and selects
// only metrics (and labels) that the scraped processes export.
func TestQueriesUseExportedMetrics(t *testing.T) {
	if _, err := exec.LookPath("prometheus-redis-exporter"); err != nil {
		t.Skip("prometheus-redis-exporter not installed (make deps)")
	}
	rules, _, records := loadRules(t, "rules.yml")
	dash := loadDashboard(t, "dashboard.json")
	e := startStack(t)
	for _, r := range records {
		e.add(r)
	}
	var names []string
	for n := range e {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metric names exported", len(names))
	for _, q := range append(rules, dash...) {
		t.Run(q.Where, func(t *testing.T) {
			for _, p := range e.check(q) {
				t.Error(p)
			}
		})
	}
}

// TestRedisExporterAuthAndKey: the exporter, run as the image runs it, logs in to a node
// as the shipped `monitoring` ACL user (REDIS_USER, REDIS_PASSWORD) through /scrape and
// reports data_queue's length (the queue alerts and panel rely on both), and the node
// refused it nothing (its ACL log stays empty).
func TestRedisExporterAuthAndKey(t *testing.T) {
	if _, err := exec.LookPath("prometheus-redis-exporter"); err != nil {
		t.Skip("prometheus-redis-exporter not installed (make deps)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conf, err := os.ReadFile("../redis/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	users, err := redistest.ShippedUsers(string(conf), func(user string) string { return "pw-" + user })
	if err != nil {
		t.Fatal(err)
	}
	r := redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: "pw-admin", ExtraConfig: users})
	if err := r.Client().RPush(ctx, "data_queue", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	redistest.NewCommand(t, redistest.CommandOptions{
		Name:  "redis_exporter",
		Path:  "prometheus-redis-exporter",
		Args:  []string{fmt.Sprintf("-web.listen-address=127.0.0.1:%d", port), "-redis.addr=", "-check-single-keys=db0=data_queue"},
		Env:   []string{"REDIS_USER=monitoring", "REDIS_PASSWORD=pw-monitoring"},
		Ready: redistest.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/health", port)),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/scrape?target=redis://%s", port, r.Addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"redis_up": 1,
		`redis_key_size{db="db0",key="data_queue"}`: 3,
	}
	if refused, err := r.Client().Do(ctx, "acl", "log").Slice(); err != nil || len(refused) > 0 {
		t.Errorf("the node refused the exporter %d times (%v): %v", len(refused), err, refused)
	}
	for series, v := range want {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
		m := re.FindSubmatch(body)
		if m == nil {
			t.Errorf("no series %s in /scrape", series)
			continue
		}
		if got, _ := strconv.ParseFloat(string(m[1]), 64); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}

// TestCheckerBites: the checks above fail on the fixture's bad expressions (testdata), so a
// typo in a metric or label name, or an expression that does not parse, cannot pass.
func TestCheckerBites(t *testing.T) {
	e := exported{}
	raw, err := os.Open(filepath.Join("testdata", "exported.prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := e.parseExposition(raw); err != nil {
		t.Fatal(err)
	}
	qs, _, _ := loadRules(t, filepath.Join("testdata", "bad_rules.yml"))
	want := map[string]string{
		"bad_rules.yml alert Good":          "",
		"bad_rules.yml alert Grafana":       "",
		"bad_rules.yml alert Typo":          "metric sluice_ingest_mesages_acked_total is exported by nothing",
		"bad_rules.yml alert WrongLabel":    `has no label "transprt"`,
		"bad_rules.yml alert Syntax":        "does not parse",
		"bad_rules.yml alert NoMetric":      "selects no metric",
		"bad_rules.yml alert NameMatcherRe": "a selector without a metric name",
	}
	if len(qs) != len(want) {
		t.Fatalf("%d fixture rules, want %d", len(qs), len(want))
	}
	for _, q := range qs {
		t.Run(q.Where, func(t *testing.T) {
			w, ok := want[q.Where]
			if !ok {
				t.Fatalf("unexpected fixture rule %s", q.Where)
			}
			got := strings.Join(e.check(q), "\n")
			if w == "" && got != "" {
				t.Errorf("problems %q, want none", got)
			}
			if w != "" && !strings.Contains(got, w) {
				t.Errorf("problems %q, want %q", got, w)
			}
		})
	}
}

// TestEveryAlertIsUnitTested: each alert of rules.yml appears in rules_test.yml (promtool
// test rules runs them in make test-monitoring), and the test file names only real alerts.
func TestEveryAlertIsUnitTested(t *testing.T) {
	_, alerts, _ := loadRules(t, "rules.yml")
	if len(alerts) == 0 {
		t.Fatal("no alerts in rules.yml")
	}
	raw, err := os.ReadFile("rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rules_test.yml rule_files %q, want [rules.yml]", f.RuleFiles)
	}
	fires := map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if !slices.Contains(alerts, a.Alertname) {
				t.Errorf("rules_test.yml tests %s, which rules.yml does not define", a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("alert %s has no promtool test in which it fires", a)
		}
	}
}

// TestPrometheusConfigTargets: prometheus.yml discovers ingest through Docker DNS on the
// admin port and scrapes the other parts under their compose/Terraform names.
func TestPrometheusConfigTargets(t *testing.T) {
	raw, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			MetricsPath  string `yaml:"metrics_path"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			BasicAuth map[string]string `yaml:"basic_auth"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		var targets []string
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				targets = append(targets, fmt.Sprintf("dns %s %s:%d", d.Type, n, d.Port))
			}
		}
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
		jobs[sc.JobName] = sc.MetricsPath + " " + strings.Join(targets, ",")
		if sc.JobName == "haproxy" && (sc.BasicAuth["username"] == "" || sc.BasicAuth["password_file"] == "") {
			t.Errorf("haproxy job: basic_auth %v, want username and password_file", sc.BasicAuth)
		}
	}
	want := map[string]string{
		"prometheus":     " localhost:9090",
		"ingest":         " dns A ingest:8086",
		"backup":         " backup:8087",
		"haproxy":        "/metrics haproxy:8404",
		"redis":          "/scrape redis://redis-1:6379,redis://redis-2:6380,redis://redis-3:6381",
		"redis_exporter": " redis-exporter:9121",
	}
	for job, w := range want {
		if got := jobs[job]; got != w {
			t.Errorf("job %s: %q, want %q", job, got, w)
		}
	}
	if len(jobs) != len(want) {
		t.Errorf("jobs %v, want %v", jobs, want)
	}
	if !slices.Equal(cfg.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rule_files %q, want [rules.yml]", cfg.RuleFiles)
	}
}
