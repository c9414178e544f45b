//go:build e2e

// Package e2e starts the whole sluice topology (3 Redis nodes, 3 Sentinels,
// N ingest containers and HAProxy) from the repository's own config files with
// testcontainers-go, and runs the smoke, compose and fault tests against it.
//
// Run with `make test-e2e` after `make images`, or by hand:
//
//	SLUICE_TAG=<tag of make images> TESTCONTAINERS_RYUK_DISABLED=true \
//	TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 go test -tags e2e -count=1 -v ./e2e/
//
// Nothing is pulled: the images must exist locally (the harness says so and
// names `make images` if one is missing). Each StartStack gets a fresh network
// and uniquely named containers (sluice-e2e-<pid>-<n>-redis-1, ...), so stacks
// can run in parallel; inside the network the containers answer to the shared
// names (redis-1, sentinel-1, ingest-1 and the alias "ingest", haproxy). Ports
// are published on 127.0.0.1 only, on Docker-chosen host ports that the
// harness re-reads after every restart.
//
// Cleanup does not need Ryuk: every container and network is removed by
// t.Cleanup (also when the test fails; the containers' logs are then saved to
// e2e/out/<test>/), and TestMain removes, before the run, what a killed run of
// the suite on this host left behind (labels sluice.e2e.pid/host) and, after
// the run, anything of its own that is still there.
//
// A Stack only composes handles, each with one job: Stack.Containers (the
// Docker network and containers), Stack.Node(name) (one container: kill,
// stop, start, pause, exec, logs, IP), Stack.Redis (nodes, Sentinels,
// clients, master, replication, convergence, the queue), Stack.Ingest (ingest
// containers' addresses, readiness, metrics) and Stack.HAProxy (data ports,
// stats, server status). StartStack takes functional options (WithMinReplicas,
// WithIngestEnv, ...); the handles return errors rather than failing the test.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Shared names (ARCHITECTURE.md).
const (
	// SentinelMaster is the master name the Sentinels monitor.
	SentinelMaster = "sluice"
	// QueueKey is the Redis list the ingest service appends to.
	QueueKey = redisconn.DefaultKey

	sentinelPort = "26379/tcp"
	dataPort     = "9501/tcp"
	httpPort     = "9502/tcp"
	noackPort    = "9503/tcp"
	adminPort    = "8086/tcp"
	statsPort    = "8404/tcp"
)

// Labels on every container and network the harness creates. TestMain removes
// what a previous, crashed run of the suite left behind (its PID is gone) and,
// after the run, anything of its own that is still there.
const (
	labelE2E   = "sluice.e2e"
	labelPID   = "sluice.e2e.pid"
	labelStack = "sluice.e2e.stack"
	labelHost  = "sluice.e2e.host"
)

// Credentials are the passwords a stack's containers are started with.
type Credentials struct {
	// RedisPassword is the password of every Redis ACL user and of the Sentinels.
	RedisPassword string
	// StatsUser and StatsPassword guard HAProxy's stats page and exporter.
	StatsUser, StatsPassword string
}

// Stack is one running topology on its own Docker network. It only composes
// the handles of its parts.
type Stack struct {
	Credentials
	// Containers is the Docker side: network, containers by name, images.
	Containers *Containers
	// Redis is the Redis nodes and Sentinels.
	Redis *Redis
	// Ingest is the ingest containers.
	Ingest *Ingest
	// HAProxy is the load balancer in front of them.
	HAProxy *HAProxy

	cfg    Config
	prefix string
}

// Config returns the configuration the stack was started with (defaults filled in).
func (s *Stack) Config() Config { return s.cfg }

// Node is the handle of one container by short name ("redis-1", "ingest-2",
// "haproxy", or one a test started, such as "backup").
func (s *Stack) Node(name string) *Node { return s.Containers.Node(name) }

// Names lists every container of the topology by its short name.
func (s *Stack) Names() []string {
	names := append(RedisNames(), SentinelNames()...)
	names = append(names, s.Ingest.Names()...)
	return append(names, "haproxy")
}

var stackSeq atomic.Int64

// StartStack starts a fresh topology on a new network and registers its
// removal with t.Cleanup. The phases return their errors; a failure ends the
// test here, after the containers' logs are written to e2e/out/.
func StartStack(t *testing.T, opts ...Option) *Stack {
	t.Helper()
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := start(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the phases: configure and create the network, start Redis and
// the Sentinels, then start ingest and HAProxy while replication converges.
func start(ctx context.Context, t testing.TB, opts []Option) (*Stack, error) {
	began := time.Now()
	s, err := newStack(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	t.Logf("e2e: INGEST_MIN_REPLICAS=%d, Sentinel down-after %s, %d ingest containers",
		s.cfg.MinReplicas, s.cfg.DownAfter, s.cfg.IngestReplicas)
	// Registered after every container's CleanupContainer, so it runs before
	// them (LIFO): the log dump and the unpause step come first.
	defer t.Cleanup(s.Containers.beforeRemove)

	if err := phase(t, "redis and sentinels up", func() error { return s.startRedisTier(ctx) }); err != nil {
		s.Containers.dumpLogs("start-failed")
		return nil, fmt.Errorf("start redis and sentinels: %w", err)
	}
	// Sentinels learn the replicas from the master's INFO, every 10 s: that
	// wait overlaps with starting ingest and HAProxy, which need only the master.
	var g errgroup.Group
	g.Go(func() error {
		return phase(t, "replication and sentinels converged", func() error {
			if err := s.Redis.WaitConverged(ctx); err != nil {
				return fmt.Errorf("redis replication: %w", err)
			}
			return nil
		})
	})
	g.Go(func() error { return s.startFrontTier(ctx, t) })
	if err := g.Wait(); err != nil {
		s.Containers.dumpLogs("start-failed")
		return nil, err
	}
	t.Logf("e2e: stack %s ready in %s", s.prefix, time.Since(began).Round(10*time.Millisecond))
	return s, nil
}

// newStack resolves the configuration, checks the images and creates the
// network; nothing runs on it yet.
func newStack(ctx context.Context, t testing.TB, opts []Option) (*Stack, error) {
	root, err := findRepoRoot()
	if err != nil {
		return nil, err
	}
	tag, err := imageTag()
	if err != nil {
		return nil, err
	}
	cfg, err := newConfig(root, opts...)
	if err != nil {
		return nil, err
	}
	creds := Credentials{
		RedisPassword: "e2e-redis-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		StatsUser:     "admin",
		StatsPassword: "e2e-stats-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36),
	}
	prefix := fmt.Sprintf("sluice-e2e-%d-%d", os.Getpid(), stackSeq.Add(1))
	ctrs, err := newContainers(ctx, t, prefix, root, tag)
	if err != nil {
		return nil, err
	}
	if err := ctrs.RequireImages(ctx, "redis", "haproxy", "ingest"); err != nil {
		return nil, err
	}
	if err := ctrs.createNetwork(ctx); err != nil {
		return nil, err
	}
	s := &Stack{
		Credentials: creds,
		Containers:  ctrs,
		Redis:       newRedis(ctrs, cfg, creds.RedisPassword),
		Ingest:      &Ingest{nodes: ctrs, cfg: cfg, password: creds.RedisPassword},
		HAProxy:     &HAProxy{nodes: ctrs, statsUser: creds.StatsUser, statsPassword: creds.StatsPassword},
		cfg:         cfg,
		prefix:      prefix,
	}
	t.Cleanup(s.Redis.close)
	return s, nil
}

// startRedisTier starts the Redis nodes and the Sentinels together: a
// Sentinel waits until the initial master's name resolves, a Redis node asks
// the Sentinels who the master is, so neither can come first.
func (s *Stack) startRedisTier(ctx context.Context) error {
	var g errgroup.Group
	for _, n := range RedisNames() {
		g.Go(func() error { return s.Redis.StartNode(ctx, n) })
	}
	for _, n := range SentinelNames() {
		g.Go(func() error { return s.Redis.start(ctx, n, true) })
	}
	return g.Wait()
}

// startFrontTier starts the ingest containers, waits until each is ready,
// then starts HAProxy and waits until it sees all of them UP.
func (s *Stack) startFrontTier(ctx context.Context, t testing.TB) error {
	err := phase(t, "ingest ready", func() error {
		var g errgroup.Group
		for _, n := range s.Ingest.Names() {
			g.Go(func() error { return s.Ingest.start(ctx, n) })
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("start ingest: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return phase(t, fmt.Sprintf("haproxy sees %d ingest servers UP", s.cfg.IngestReplicas), func() error {
		if err := s.HAProxy.start(ctx); err != nil {
			return fmt.Errorf("start haproxy: %w", err)
		}
		if err := s.HAProxy.WaitUp(ctx, s.cfg.IngestReplicas); err != nil {
			return fmt.Errorf("haproxy backends: %w", err)
		}
		return nil
	})
}

// phase runs f and logs how long it took when it succeeds.
func phase(t testing.TB, what string, f func() error) error {
	t.Helper()
	t0 := time.Now()
	if err := f(); err != nil {
		return err
	}
	t.Logf("e2e: %s in %s", what, time.Since(t0).Round(10*time.Millisecond))
	return nil
}
