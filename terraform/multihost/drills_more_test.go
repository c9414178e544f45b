//go:build multihost

package multihost_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/terraform/internal/hostlab"
)

// sentinelList is every domain's Sentinel, host:port, comma separated.
func (c *cluster) sentinelList() string {
	var l []string
	for _, d := range []string{"a", "b", "c"} {
		l = append(l, net.JoinHostPort(c.domains[d].Addr, itoa(sentinelPrt)))
	}
	return strings.Join(l, ",")
}

// sentinelReset runs tools/sentinel-reset.sh, the documented path.
func (c *cluster) sentinelReset(ctx context.Context) error {
	script, err := filepath.Abs(filepath.Join("..", "..", "tools", "sentinel-reset.sh"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, c.sentinelList())
	cmd.Env = append(os.Environ(), "SENTINEL_PASSWORD="+c.sentinelPassword())
	out, err := cmd.CombinedOutput()
	c.t.Logf("tools/sentinel-reset.sh:\n%s", strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("sentinel-reset: %w", err)
	}
	return nil
}

// replaceA: host a is lost for good; the spare host d takes domain a (the
// module evaluated with a's docker host and address pointing at d, deployed
// there), its Redis node syncs as a replica, the Sentinels forget a's node
// (tools/sentinel-reset.sh), and acks resume with INGEST_MIN_REPLICAS=2.
func (c *cluster) replaceA(ctx context.Context) result {
	t := c.t
	// The same case every run: a holds a replica (drill 1 covers a dead master).
	if m, err := c.master(ctx); err == nil && c.isMaster("a", m) {
		must(t, c.failoverAway(ctx, m))
	}
	return c.drill(ctx, "host a replaced by spare d", func(heal func()) {
		a := c.domains["a"]
		must(t, a.KillAll(ctx))
		must(t, a.Cut(ctx))
		c.mark("host a killed and cut off for good; the master's replicas: %s", c.replicaLines(ctx))
		t0 := time.Now()
		d, err := c.lab.AddHost(ctx, "d", 14)
		must(t, err)
		must(t, c.lab.LoadImages(ctx, c.images(), d))
		c.mark("spare host d up, images loaded; the master's replicas: %s", c.replicaLines(ctx))
		c.domains["a"] = d
		m := c.evaluate()
		if err := hostlab.Deploy(ctx, t.Logf, c.placements(m, "a")...); err != nil {
			c.dumpLogs(ctx)
			t.Fatalf("deploy domain a on d: %v", err)
		}
		c.mark("domain a runs on d: host created, images loaded, containers healthy in %s", time.Since(t0).Round(100*time.Millisecond))
		must(t, c.sentinelReset(ctx))
		heal()
	})
}

// rollingUpgrade re-creates every container host by host from the current
// evaluation (the same image tag: what `terraform apply` does to a domain
// whose configuration changed, e.g. after the replacement above), the host
// of the master last and only after a SENTINEL FAILOVER moved the master
// away; the next host starts only when the master has two replicas again.
func (c *cluster) rollingUpgrade(ctx context.Context) result {
	t := c.t
	return c.drill(ctx, "rolling upgrade, host by host", func(heal func()) {
		m := c.evaluate()
		order := []string{"a", "b", "c"}
		master, err := c.master(ctx)
		must(t, err)
		// The master's domain last.
		slices.SortStableFunc(order, func(x, y string) int {
			return btoi(c.isMaster(x, master)) - btoi(c.isMaster(y, master))
		})
		for _, dom := range order {
			h := c.domains[dom]
			if cur, err := c.master(ctx); err == nil && c.isMaster(dom, cur) {
				must(t, c.failoverAway(ctx, cur))
			}
			t0 := time.Now()
			out, err := h.Docker(ctx, "ps", "-aq")
			must(t, err)
			if ids := strings.Fields(out); len(ids) > 0 {
				// docker stop: each container's stop timeout (ingest drains, Redis fsyncs).
				_, err := h.Docker(ctx, append([]string{"stop"}, ids...)...)
				must(t, err)
				_, err = h.Docker(ctx, append([]string{"rm"}, ids...)...)
				must(t, err)
			}
			if err := hostlab.Deploy(ctx, t.Logf, c.placements(m, dom)...); err != nil {
				c.dumpLogs(ctx)
				t.Fatalf("upgrade domain %s: %v", dom, err)
			}
			c.settle(ctx)
			c.mark("domain %s (host %s) upgraded in %s", dom, h.Name, time.Since(t0).Round(100*time.Millisecond))
		}
		heal()
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *cluster) isMaster(domain, master string) bool {
	return net.JoinHostPort(c.domains[domain].Addr, itoa(redisPort)) == master
}

// failoverAway asks a Sentinel to fail over and waits until another node is
// master with two replicas.
func (c *cluster) failoverAway(ctx context.Context, from string) error {
	for _, d := range []string{"b", "c", "a"} {
		s := net.JoinHostPort(c.domains[d].Addr, itoa(sentinelPrt))
		if _, err := redisCLI(ctx, c.sentinelPassword(), s, false, "SENTINEL", "FAILOVER", "sluice"); err == nil {
			break
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m, err := c.master(ctx); err == nil && m != from {
			c.t.Logf("master moved from %s to %s", from, m)
			c.settle(ctx)
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("the master stayed on %s for 2 minutes after SENTINEL FAILOVER", from)
}

// replicaLines are the slaveN lines of the master's INFO replication.
func (c *cluster) replicaLines(ctx context.Context) string {
	m, err := c.master(ctx)
	if err != nil {
		return err.Error()
	}
	out, err := redisCLI(ctx, c.redisPassword, m, true, "INFO", "replication")
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "slave") || strings.HasPrefix(l, "master_repl_offset") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return m + " " + strings.Join(lines, " ")
}
