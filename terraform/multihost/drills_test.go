//go:build multihost

// The host-loss drills of issue #13 on simulated hosts: three network
// namespaces with their own dockerd (terraform/internal/hostlab), joined by a
// bridge, run what terraform/multihost evaluates to; clients send to the
// HAProxy pair's virtual IP and a set checker (e2e.Recorder) counts acked,
// lost and duplicated messages for each drill.
//
// Run: make test-multihost (as root; builds the images first), or
//
//	SLUICE_TAG=<tag of make images> go test -tags multihost -run TestDrills -v -timeout 40m ./terraform/multihost/
//
// SLUICE_MULTIHOST_REPORT=FILE appends the per-drill table to FILE.
package multihost_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/e2e"
	"github.com/sluice-ingest/sluice/terraform/internal/hostlab"
	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"github.com/zclconf/go-cty/cty"
)

const (
	subnet      = "10.77.0"
	vip         = subnet + ".100"
	ingestPort  = 9501
	redisPort   = 6379
	sentinelPrt = 26379
)

// cluster is the deployed topology the drills act on.
type cluster struct {
	t             *testing.T
	lab           *hostlab.Lab
	tag           string
	redisPassword string
	statsPassword string
	domains       map[string]*hostlab.Host // domain -> host running it
	rec           *e2e.Recorder            // of the running drill
	fault         time.Time                // of the running drill
}

// mark logs a step of the running drill: the time since the fault and the
// acks since then.
func (c *cluster) mark(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("+%s %s (acks since the fault: %d)", time.Since(c.fault).Round(100*time.Millisecond),
		fmt.Sprintf(format, args...), c.rec.AcksBetween(c.fault, time.Now()))
}

func (c *cluster) images() []string {
	return []string{"sluice/redis:" + c.tag, "sluice/ingest:" + c.tag, "sluice/haproxy:" + c.tag}
}

func (c *cluster) sentinelPassword() string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(c.redisPassword+"/sentinels")))
}

// evaluate loads terraform/multihost with the domains' current hosts.
func (c *cluster) evaluate() *topology.Module {
	c.t.Helper()
	obj := func(f func(h *hostlab.Host) string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{
			"a": cty.StringVal(f(c.domains["a"])), "b": cty.StringVal(f(c.domains["b"])), "c": cty.StringVal(f(c.domains["c"])),
		})
	}
	m, _, err := topology.LoadModule(".", topology.WithVariables(map[string]cty.Value{
		"docker_hosts":           obj(func(h *hostlab.Host) string { return h.Socket }),
		"addresses":              obj(func(h *hostlab.Host) string { return h.Addr }),
		"image_tag":              cty.StringVal(c.tag),
		"redis_password":         cty.StringVal(c.redisPassword),
		"haproxy_stats_password": cty.StringVal(c.statsPassword),
		"vip":                    cty.StringVal(vip),
		"vip_interface":          cty.StringVal("eth0"),
	}))
	if err != nil {
		c.t.Fatalf("evaluate terraform/multihost: %v", err)
	}
	return m
}

// placements are the module calls' containers on the hosts whose sockets the
// calls' provider aliases name, for the domains given (all when none).
func (c *cluster) placements(m *topology.Module, domains ...string) []hostlab.Placement {
	c.t.Helper()
	var out []hostlab.Placement
	for _, call := range m.Calls() {
		if len(domains) > 0 && !contains(domains, call.Name) {
			continue
		}
		h := c.domains[call.Name]
		if call.DockerHost != h.Socket {
			c.t.Fatalf("module.%s deploys to %s, want host %s (%s)", call.Name, call.DockerHost, h.Name, h.Socket)
		}
		out = append(out, hostlab.Placement{Host: h, Specs: call.Specs})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// redisCLI runs redis-cli on this machine against addr (host:port).
func redisCLI(ctx context.Context, password, addr string, admin bool, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	full := []string{"--raw", "-h", host, "-p", port}
	if admin {
		full = append(full, "--user", "admin")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append(full, args...)...)
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+password)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s %q: %w", addr, args, err)
	}
	return string(out), nil
}

// master is the master most reachable Sentinels name (address:port).
func (c *cluster) master(ctx context.Context) (string, error) {
	votes := map[string]int{}
	for _, h := range c.domains {
		// 2 s: a cut-off host must not hold up the drill.
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := redisCLI(sctx, c.sentinelPassword(), net.JoinHostPort(h.Addr, itoa(sentinelPrt)), false,
			"SENTINEL", "get-master-addr-by-name", "sluice")
		cancel()
		if f := strings.Fields(out); err == nil && len(f) == 2 {
			votes[net.JoinHostPort(f[0], f[1])]++
		}
	}
	best, n := "", 0
	for m, v := range votes {
		if v > n {
			best, n = m, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("no Sentinel named a master")
	}
	return best, nil
}

// readBack reads data_queue on the master and on every other reachable node
// (after they caught up, bounded).
func (c *cluster) readBack(ctx context.Context) (master []string, replicas map[string][]string, err error) {
	m, err := c.master(ctx)
	if err != nil {
		return nil, nil, err
	}
	read := func(addr string) ([]string, error) {
		out, err := redisCLI(ctx, c.redisPassword, addr, true, "LRANGE", "data_queue", "0", "-1")
		if err != nil {
			return nil, err
		}
		out = strings.TrimRight(out, "\n")
		if out == "" {
			return nil, nil
		}
		return strings.Split(out, "\n"), nil
	}
	if master, err = read(m); err != nil {
		return nil, nil, err
	}
	replicas = map[string][]string{}
	for d, h := range c.domains {
		addr := net.JoinHostPort(h.Addr, itoa(redisPort))
		if addr == m {
			continue
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			l, err := read(addr)
			if err == nil && (len(l) == len(master) || time.Now().After(deadline)) {
				replicas[d+"@"+h.Name] = l
				break
			}
			if err != nil && time.Now().After(deadline) {
				break // unreachable (cut off or dead): nothing to compare
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return master, replicas, nil
}

func itoa(i int) string { return fmt.Sprint(i) }

// result is one drill's line of the report.
type result struct {
	Drill                         string
	Stall                         time.Duration // the longest time without an ack after the fault
	AfterHeal                     time.Duration // heal to the first ack after it
	VIPOutage, VIPOutageAt        time.Duration // the longest time the VIP refused connections, from when (after the fault)
	Attempted, Acked, Lost, Dupes int
	Recovered, Unacked            int
	Problems                      []string
}

func (r result) String() string {
	vipOut := "none"
	if r.VIPOutage > 0 {
		vipOut = round(r.VIPOutage) + " from +" + round(r.VIPOutageAt)
	} else if r.VIPOutage < 0 {
		vipOut = "never back"
	}
	return fmt.Sprintf("%-28s stall %-6s first-ack-after-heal %-6s vip-outage %-16s attempted %6d acked %6d lost %d duplicates %d recovered %d unacked-at-end %d",
		r.Drill, round(r.Stall), round(r.AfterHeal), vipOut, r.Attempted, r.Acked, r.Lost, r.Dupes, r.Recovered, r.Unacked)
}

func round(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

// drill runs load against the VIP around fault: before runs for a few
// seconds, fault injects the failure (and may wait and heal: it calls heal
// when it healed), then the load runs until acks flowed for a while after
// recovery (bounded), and the read-back is checked.
func (c *cluster) drill(ctx context.Context, name string, fault func(heal func())) result {
	t := c.t
	t.Helper()
	rec := e2e.NewRecorder(strings.ReplaceAll(name, " ", "_"), time.Now())
	load := e2e.StartLoad(ctx, rec, e2e.LoadOptions{
		Addr:    func() string { return net.JoinHostPort(vip, itoa(ingestPort)) },
		Workers: 4, Rate: 100, Window: 400, MaxPerWorker: 40000, Size: 64,
	})
	time.Sleep(8 * time.Second)
	probe := startVIPProbe(ctx)
	t0 := time.Now()
	c.rec, c.fault = rec, t0
	rec.MarkFault(t0)
	var healed time.Time
	fault(func() { c.mark("healed"); healed = time.Now(); rec.MarkHeal(healed) })
	if healed.IsZero() {
		healed = time.Now()
		rec.MarkHeal(healed)
	}
	// Run on for 10 s after the heal, and until acks flowed for 5 s (at most 3 minutes).
	deadline := healed.Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if time.Since(healed) >= 10*time.Second && rec.AcksBetween(time.Now().Add(-5*time.Second), time.Now()) > 0 {
			break
		}
		time.Sleep(time.Second)
	}
	vipOut := probe.stop()
	unacked := load.Stop(60 * time.Second)
	master, replicas, err := c.readBack(ctx)
	if err != nil {
		t.Fatalf("%s: read back: %v", name, err)
	}
	v := rec.Check(master, replicas, e2e.CheckOptions{IgnoreForeign: true})
	tm := rec.Timing()
	c.mark("load stopped; first ack after the heal at heal+%s, longest time without acks %s", round(tm.AcksAfterHeal), round(tm.MaxAckGap))
	// Acks per 2 s from the fault on: where the stall sits.
	var buckets []string
	for from := t0; from.Before(time.Now()) && len(buckets) < 90; from = from.Add(2 * time.Second) {
		buckets = append(buckets, itoa(rec.AcksBetween(from, from.Add(2*time.Second))))
	}
	t.Logf("acks per 2 s from the fault: %s", strings.Join(buckets, " "))
	r := result{Drill: name, Stall: tm.MaxAckGap, AfterHeal: tm.AcksAfterHeal, VIPOutage: vipOut.to.Sub(vipOut.from), VIPOutageAt: vipOut.from.Sub(t0),
		Attempted: v.Attempted, Acked: v.Acked, Lost: len(v.Lost), Dupes: v.Duplicates, Recovered: v.Recovered,
		Unacked: unacked, Problems: v.Problems()}
	t.Log(r)
	for _, p := range r.Problems {
		t.Errorf("%s: %s", name, p)
	}
	if tm.AcksResume < 0 || tm.AcksAfterHeal < 0 {
		t.Errorf("%s: acks did not resume after the heal", name)
	}
	return r
}

// vipProbe dials the VIP every 200 ms and remembers when it first answered
// again after failing.
type vipProbe struct {
	done    chan struct{}
	stopped chan struct{}
	down    time.Time // start of the current outage; zero while it answers
	longest outage
}

// outage is a time the VIP did not accept connections.
type outage struct{ from, to time.Time }

func startVIPProbe(ctx context.Context) *vipProbe {
	p := &vipProbe{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		for {
			select {
			case <-p.done:
				return
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(vip, itoa(ingestPort)), 300*time.Millisecond)
			if err != nil {
				if p.down.IsZero() {
					p.down = time.Now()
				}
				continue
			}
			conn.Close()
			if !p.down.IsZero() {
				if o := (outage{p.down, time.Now()}); o.to.Sub(o.from) > p.longest.to.Sub(p.longest.from) {
					p.longest = o
				}
				p.down = time.Time{}
			}
		}
	}()
	return p
}

// stop ends the probe and returns its longest outage (zero when the VIP
// always answered; to is zero when it never came back).
func (p *vipProbe) stop() outage {
	close(p.done)
	<-p.stopped
	if !p.down.IsZero() {
		return outage{from: p.down}
	}
	return p.longest
}

func TestDrills(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the multi-host drills need root (network namespaces, dockerd per host)")
		}
		t.Skip("the multi-host drills need root (network namespaces, one dockerd per simulated host): sudo make test-multihost")
	}
	// What a killed run (go test -timeout) left behind goes first: its bridge holds our subnet.
	if err := hostlab.SweepDead(t.Logf); err != nil {
		t.Errorf("remove the labs of killed runs: %v", err)
	}
	tag := os.Getenv("SLUICE_TAG")
	if tag == "" {
		t.Fatal("SLUICE_TAG must name the images `make images` built")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()

	lab, err := hostlab.NewLab(ctx, hostlab.WithSubnet(subnet), hostlab.WithLog(t.Logf))
	if lab != nil {
		// Registered first: everything goes, also after a failure.
		t.Cleanup(func() {
			if err := lab.Close(); err != nil {
				t.Errorf("clean up the lab: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, lab: lab, tag: tag, domains: map[string]*hostlab.Host{},
		redisPassword: "multihost-drills-" + fmt.Sprint(time.Now().UnixNano()),
		statsPassword: "stats-" + fmt.Sprint(time.Now().UnixNano()%1e9)}
	for i, d := range []string{"a", "b", "c"} {
		h, err := lab.AddHost(ctx, d, 11+i)
		if err != nil {
			t.Fatal(err)
		}
		c.domains[d] = h
	}
	if err := lab.LoadImages(ctx, c.images(), c.domains["a"], c.domains["b"], c.domains["c"]); err != nil {
		t.Fatal(err)
	}
	m := c.evaluate()
	if err := hostlab.Deploy(ctx, t.Logf, c.placements(m)...); err != nil {
		c.dumpLogs(ctx)
		t.Fatal(err)
	}
	if err := waitVIP(ctx, 60*time.Second); err != nil {
		c.dumpLogs(ctx)
		t.Fatal(err)
	}
	c.settle(ctx)
	var results []result
	defer func() { report(t, results) }()

	ok := t.Run("host a dies", func(t *testing.T) {
		c.t = t
		a := c.domains["a"]
		// The case of the issue: a holds the master, a Sentinel and the primary HAProxy (the VIP).
		if m, err := c.master(ctx); err != nil || !c.isMaster("a", m) || c.vipHolder(ctx) != "a" {
			t.Fatalf("before the drill: master %q (%v), VIP on %q; want both on a", m, err, c.vipHolder(ctx))
		}
		results = append(results, c.drill(ctx, "host a dies (down 30 s)", func(heal func()) {
			must(t, a.KillAll(ctx))
			must(t, a.Cut(ctx))
			time.Sleep(30 * time.Second)
			// The host boots again: a fresh network stack (no stale VIP), its containers start.
			must(t, a.ResetAddresses(ctx))
			must(t, a.Heal(ctx))
			must(t, a.StartAll(ctx))
			heal()
		}))
	})
	if !ok {
		c.dumpLogs(ctx)
		return
	}
	c.t = t
	c.settle(ctx)
	ok = t.Run("host b cut off 20 s", func(t *testing.T) {
		c.t = t
		b := c.domains["b"]
		results = append(results, c.drill(ctx, "host b cut off 20 s", func(heal func()) {
			must(t, b.Cut(ctx))
			time.Sleep(20 * time.Second)
			must(t, b.Heal(ctx))
			heal()
		}))
	})
	if !ok {
		c.dumpLogs(ctx)
		return
	}
	c.t = t
	c.settle(ctx)
	ok = t.Run("host a replaced by d", func(t *testing.T) {
		c.t = t
		results = append(results, c.replaceA(ctx))
	})
	if !ok {
		c.dumpLogs(ctx)
		return
	}
	c.t = t
	c.settle(ctx)
	t.Run("rolling upgrade", func(t *testing.T) {
		c.t = t
		results = append(results, c.rollingUpgrade(ctx))
	})
	c.t = t
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitVIP(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(vip, itoa(ingestPort)), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("virtual IP %s:%d does not answer within %s", vip, ingestPort, d)
}

// settle waits until every container of every domain is healthy again and
// the master has two connected replicas (bounded), between drills.
func (c *cluster) settle(ctx context.Context) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := c.master(ctx)
		if err == nil {
			out, err := redisCLI(ctx, c.redisPassword, m, true, "INFO", "replication")
			if err == nil && strings.Contains(out, "connected_slaves:2") && c.vipHolder(ctx) == "a" {
				c.t.Logf("settled: master %s with 2 replicas, the VIP on domain a's host (the primary)", m)
				return
			}
		}
		time.Sleep(time.Second)
	}
	c.t.Logf("not settled after 3 minutes (master or replicas missing, or the VIP is on %q); the next drill starts anyway", c.vipHolder(ctx))
}

// vipHolder is the domain whose host carries the VIP ("" for none, "a+b" for both).
func (c *cluster) vipHolder(ctx context.Context) string {
	var holders []string
	for _, d := range []string{"a", "b"} {
		if ok, err := c.domains[d].HasAddress(ctx, vip); err == nil && ok {
			holders = append(holders, d)
		}
	}
	return strings.Join(holders, "+")
}

func (c *cluster) dumpLogs(ctx context.Context) {
	names := make([]string, 0, len(c.domains))
	for d := range c.domains {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		h := c.domains[d]
		out, _ := h.Docker(ctx, "ps", "-a", "--format", "{{.Names}}")
		for _, n := range strings.Fields(out) {
			c.t.Logf("--- %s on %s\n%s", n, h.Name, h.Logs(ctx, n, 15))
		}
	}
}

// report logs the drills' table and appends it to SLUICE_MULTIHOST_REPORT.
func report(t *testing.T, results []result) {
	var b strings.Builder
	fmt.Fprintf(&b, "multihost drills %s (INGEST_MIN_REPLICAS=2, shipped Sentinel timings)\n", time.Now().UTC().Format(time.RFC3339))
	for _, r := range results {
		fmt.Fprintln(&b, r)
	}
	t.Log("\n" + b.String())
	if f := os.Getenv("SLUICE_MULTIHOST_REPORT"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer fh.Close()
		fmt.Fprint(fh, b.String())
	}
}
