package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Metric names read from the services' /metrics.
const (
	AckedTotal      = "sluice_ingest_messages_acked_total"
	AckLatency      = "sluice_ingest_ack_latency_seconds"
	BackupLastOK    = "sluice_backup_last_success_timestamp_seconds"
	BackupSize      = "sluice_backup_last_size_bytes"
	BackupFailures  = "sluice_backup_failures_total"
	BackupSnapshots = "sluice_backup_snapshots_total"
)

// Collector gathers a Snapshot from a running stack.
type Collector struct {
	cfg  Config
	http *http.Client
	// Resolver finds the ingest containers; nil: net.DefaultResolver.
	Resolver *net.Resolver
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// NewCollector returns a Collector for cfg.
func NewCollector(cfg Config) *Collector {
	return &Collector{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout}}
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) resolver() *net.Resolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

// Collect asks every part of the stack at once; the ingest scrapes take
// cfg.Sample longer. Every failure lands in the Snapshot, next to the part
// it concerns.
func (c *Collector) Collect(ctx context.Context) Snapshot {
	s := Snapshot{Key: c.cfg.Key, BackupMaxAge: c.cfg.BackupMaxAge}
	var wg sync.WaitGroup
	wg.Go(func() { c.redis(ctx, &s) })
	wg.Go(func() { c.ingests(ctx, &s) })
	wg.Go(func() {
		if c.cfg.StatsURL == Off {
			s.HAProxyOff = true
			return
		}
		s.HAProxy, s.HAProxyErr = c.haproxy(ctx)
	})
	wg.Go(func() {
		if c.cfg.BackupURL == Off {
			s.BackupOff = true
			return
		}
		s.Backup = c.backup(ctx)
	})
	wg.Wait()
	s.Time = c.now()
	return s
}

// redisOptions are those of every Sentinel and Redis client: one try,
// one connection, and (Minimal) nothing sent but AUTH and the commands
// below, so a small ACL suffices.
func (c *Collector) redisOptions() redisconn.Options {
	return redisconn.Options{
		Minimal:     true,
		DialTimeout: c.cfg.Timeout, ReadTimeout: c.cfg.Timeout, WriteTimeout: c.cfg.Timeout,
		NoRetries: true, OneDial: true, PoolSize: 1,
	}
}

// dialErr words a connection failure the way every sluice binary does.
func dialErr(what, addr string, err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return fmt.Errorf("dial %s %s: %w", what, addr, err)
	}
	return err
}

// redis asks every Sentinel, then the master they name.
func (c *Collector) redis(ctx context.Context, s *Snapshot) {
	views := make([]SentinelView, len(c.cfg.SentinelAddrs))
	replicaFlags := make([]map[string]string, len(views))
	var wg sync.WaitGroup
	for i, addr := range c.cfg.SentinelAddrs {
		wg.Go(func() { views[i], replicaFlags[i] = c.sentinel(ctx, addr) })
	}
	wg.Wait()
	s.Sentinels = views
	master, _, _ := Snapshot{Sentinels: views}.Agreement() // not s: the other collectors write s meanwhile
	if master == "" {
		return
	}
	var flags map[string]string
	for i, v := range views {
		if v.Err == nil && v.Master == master && replicaFlags[i] != nil {
			flags = replicaFlags[i]
			break
		}
	}
	s.Master = c.master(ctx, master, flags)
}

func (c *Collector) sentinel(ctx context.Context, addr string) (SentinelView, map[string]string) {
	v := SentinelView{Addr: addr}
	sc := c.cfg.NewSentinel(addr, c.redisOptions())
	defer sc.Close()
	name := c.cfg.SentinelMaster
	m, err := sc.Master(ctx, name).Result()
	if err != nil {
		v.Err = dialErr("sentinel", addr, err)
		return v, nil
	}
	v.Master = net.JoinHostPort(m["ip"], m["port"])
	v.Quorum = m["quorum"]
	if v.CkQuorum, err = sc.CkQuorum(ctx, name).Result(); err != nil {
		v.CkErr = err
	}
	flags := map[string]string{}
	if reps, err := sc.Replicas(ctx, name).Result(); err == nil {
		for _, r := range reps {
			flags[net.JoinHostPort(r["ip"], r["port"])] = r["flags"]
		}
	}
	return v, flags
}

func (c *Collector) master(ctx context.Context, addr string, sentinelFlags map[string]string) Master {
	m := Master{Addr: addr}
	rdb := c.cfg.Node(addr, c.redisOptions())
	defer rdb.Close()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		m.Err = dialErr("redis", addr, err)
		m.Replicas = mergeReplicas(0, nil, sentinelFlags)
		return m
	}
	r, err := ParseReplication(info)
	if err != nil {
		m.Err = err
		return m
	}
	m.Role, m.Offset = r.Role, r.Offset
	m.Replicas = mergeReplicas(r.Offset, r.Replicas, sentinelFlags)
	if m.QueueLen, err = rdb.LLen(ctx, c.cfg.Key).Result(); err != nil {
		m.QueueErr = err
	}
	return m
}

// ingests finds every ingest container and reads /ready and two /metrics
// scrapes a sample apart.
func (c *Collector) ingests(ctx context.Context, s *Snapshot) {
	host, port, _ := net.SplitHostPort(c.cfg.IngestAdmin)
	lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	ips, err := c.resolver().LookupHost(lctx, host)
	cancel()
	if err != nil {
		s.IngestErr = fmt.Errorf("resolve %s: %w", host, err)
		return
	}
	sort.Strings(ips)
	views := make([]IngestView, len(ips))
	first := make([][]Sample, len(ips))
	second := make([][]Sample, len(ips))
	took := make([]time.Duration, len(ips))
	errs := make([]error, len(ips))
	var wg sync.WaitGroup
	for i, ip := range ips {
		wg.Go(func() {
			base := "http://" + net.JoinHostPort(ip, port)
			v := IngestView{Name: c.reverseName(ctx, ip), Addr: net.JoinHostPort(ip, port)}
			code, body, err := c.get(ctx, base+"/ready", "", "")
			switch {
			case err != nil:
				v.Err = dialErr("ingest", v.Addr, err)
			case code == http.StatusOK:
				v.Ready = true
			default:
				v.Info = fmt.Sprintf("%d %s", code, firstLine(body))
			}
			views[i] = v
			t0 := time.Now()
			if first[i], errs[i] = c.scrape(ctx, base+"/metrics"); errs[i] != nil {
				return
			}
			select {
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			case <-time.After(c.cfg.Sample):
			}
			second[i], errs[i] = c.scrape(ctx, base+"/metrics")
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	sort.SliceStable(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	s.Ingests = views
	s.Rate = RateFrom(first, second, took, errs)
}

// RateFrom computes the ack rate and the p99 ack latency over the ingests
// scraped twice: acked messages summed over labels and instances, divided
// by the mean window; latency buckets summed the same way, as deltas.
func RateFrom(first, second [][]Sample, took []time.Duration, errs []error) Rate {
	var r Rate
	var acked float64
	buckets := map[float64]float64{}
	var windows time.Duration
	var failed []error
	for i := range first {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		a1, _ := Sum(first[i], AckedTotal)
		a2, ok := Sum(second[i], AckedTotal)
		if !ok {
			failed = append(failed, fmt.Errorf("no %s", AckedTotal))
			continue
		}
		acked += CounterDelta(a1, a2)
		for le, v := range Delta(Buckets(first[i], AckLatency), Buckets(second[i], AckLatency)) {
			buckets[le] += v
		}
		windows += took[i]
		r.Instances++
	}
	r.Err = errors.Join(failed...)
	if r.Instances == 0 {
		return r
	}
	r.Window = windows / time.Duration(r.Instances)
	if r.Window > 0 {
		// Each instance's delta over its own window, as a rate; the windows
		// are equal up to scheduling, so the mean is used for all.
		r.Acked = acked / r.Window.Seconds()
	}
	r.P99, r.HaveP99 = Quantile(0.99, buckets)
	return r
}

func (c *Collector) reverseName(ctx context.Context, ip string) string {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	names, err := c.resolver().LookupAddr(lctx, ip)
	if err != nil || len(names) == 0 {
		return ip
	}
	name, _, _ := strings.Cut(names[0], ".")
	return name
}

func (c *Collector) scrape(ctx context.Context, url string) ([]Sample, error) {
	code, body, err := c.get(ctx, url, "", "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, code)
	}
	return ParseMetrics(body)
}

func (c *Collector) get(ctx context.Context, url, user, password string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("GET %s: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}

func (c *Collector) haproxy(ctx context.Context) ([]Backend, error) {
	code, body, err := c.get(ctx, c.cfg.StatsURL, c.cfg.StatsUser, c.cfg.StatsPassword)
	if err != nil {
		return nil, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("GET %s: 401: wrong STATUS_HAPROXY_STATS_USER or _PASSWORD", c.cfg.StatsURL)
	default:
		return nil, fmt.Errorf("GET %s: status %d", c.cfg.StatsURL, code)
	}
	rows, err := ParseStatsCSV(body)
	if err != nil {
		return nil, err
	}
	var out []Backend
	for _, b := range Backends(rows) {
		if b.Status != "" { // proxies with a backend part
			out = append(out, b)
		}
	}
	return out, nil
}

func (c *Collector) backup(ctx context.Context) BackupView {
	var v BackupView
	code, body, err := c.get(ctx, c.cfg.BackupURL, "", "")
	if err != nil {
		v.Err = err
		return v
	}
	if code != http.StatusOK {
		v.Err = fmt.Errorf("GET %s: status %d", c.cfg.BackupURL, code)
		return v
	}
	samples, err := ParseMetrics(body)
	if err != nil {
		v.Err = err
		return v
	}
	return BackupFrom(samples)
}

// BackupFrom reads the backup service's metrics.
func BackupFrom(samples []Sample) BackupView {
	var v BackupView
	ts, ok := Sum(samples, BackupLastOK)
	if !ok {
		v.Err = fmt.Errorf("no %s in the backup metrics", BackupLastOK)
		return v
	}
	if ts > 0 {
		sec := int64(ts)
		v.LastSuccess = time.Unix(sec, int64((ts-float64(sec))*1e9)).UTC()
	}
	v.SizeBytes, _ = Sum(samples, BackupSize)
	v.Failures, _ = Sum(samples, BackupFailures)
	v.Snapshots, _ = Sum(samples, BackupSnapshots)
	return v
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
