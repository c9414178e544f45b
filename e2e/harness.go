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
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Shared names (ARCHITECTURE.md).
const (
	// SentinelMaster is the master name the Sentinels monitor.
	SentinelMaster = "sluice"
	// QueueKey is the Redis list the ingest service appends to.
	QueueKey = redisconn.DefaultKey

	redisPort    = "6379/tcp"
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

// Options shapes one stack. The zero value starts the shipped configuration
// with a short Sentinel down-after.
type Options struct {
	// MinReplicas sets INGEST_MIN_REPLICAS on the ingest containers; 0 means the
	// shipped default, read from compose/compose.yaml.
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

func (o Options) withDefaults() Options {
	if o.DownAfter <= 0 {
		o.DownAfter = 1500 * time.Millisecond
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 10 * time.Second
	}
	if o.IngestReplicas <= 0 {
		o.IngestReplicas = 3
	}
	return o
}

// Stack is one running topology on its own Docker network.
type Stack struct {
	t      testing.TB
	opts   Options
	prefix string
	root   string
	tag    string
	docker *testcontainers.DockerClient
	net    *testcontainers.DockerNetwork

	// RedisPassword is the password of the Redis nodes and Sentinels.
	RedisPassword string
	// StatsUser and StatsPassword guard HAProxy's stats page and exporter.
	StatsUser, StatsPassword string

	mu      sync.Mutex
	ctrs    map[string]*testcontainers.DockerContainer
	clients map[string]*redis.Client
	sents   map[string]*redis.SentinelClient
}

var stackSeq atomic.Int64

// StartStack starts a fresh topology on a new network and registers its removal
// with t.Cleanup. On failure the containers' logs are written to e2e/out/.
func StartStack(t *testing.T, opts Options) *Stack {
	t.Helper()
	requireEnv(t)
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()

	s := &Stack{
		t:             t,
		opts:          opts,
		prefix:        fmt.Sprintf("sluice-e2e-%d-%d", os.Getpid(), stackSeq.Add(1)),
		root:          repoRoot(t),
		tag:           imageTag(t),
		RedisPassword: "e2e-redis-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		StatsUser:     "admin",
		StatsPassword: "e2e-stats-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36),
		ctrs:          map[string]*testcontainers.DockerContainer{},
		clients:       map[string]*redis.Client{},
		sents:         map[string]*redis.SentinelClient{},
	}
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { _ = docker.Close() })
	s.docker = docker
	s.requireImages(ctx)
	if s.opts.MinReplicas == 0 {
		v, err := shippedIngestEnv(s.root, "INGEST_MIN_REPLICAS")
		if err != nil {
			t.Fatalf("e2e: shipped INGEST_MIN_REPLICAS: %v", err)
		}
		if s.opts.MinReplicas, err = strconv.Atoi(v); err != nil {
			t.Fatalf("e2e: shipped INGEST_MIN_REPLICAS %q: %v", v, err)
		}
	}
	t.Logf("e2e: INGEST_MIN_REPLICAS=%d, Sentinel down-after %s, %d ingest containers",
		s.opts.MinReplicas, s.opts.DownAfter, s.opts.IngestReplicas)

	nw, err := network.New(ctx, network.WithLabels(s.labels()))
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	s.net = nw
	t.Cleanup(s.closeClients)

	// Registered after every container's CleanupContainer below would run
	// before them (LIFO), so register the log dump and the unpause step last.
	defer func() {
		t.Cleanup(s.beforeRemove)
	}()

	step := func(what string, names []string, start func(name string) error) {
		t.Helper()
		t0 := time.Now()
		var g errgroup.Group
		for _, n := range names {
			g.Go(func() error { return start(n) })
		}
		if err := g.Wait(); err != nil {
			s.dumpLogs("start-failed")
			t.Fatalf("start %s: %v", what, err)
		}
		t.Logf("e2e: %s up in %s", what, time.Since(t0).Round(10*time.Millisecond))
	}

	// Redis nodes and Sentinels start together: a Sentinel waits until the
	// initial master's name resolves, a Redis node asks the Sentinels who the
	// master is, so neither can come first.
	step("redis and sentinels", append(RedisNames(), SentinelNames()...), func(n string) error {
		if strings.HasPrefix(n, "sentinel-") {
			if err := s.startSentinel(ctx, n); err != nil {
				return err
			}
			return s.waitPing(ctx, n, true)
		}
		if err := s.startRedis(ctx, n); err != nil {
			return err
		}
		return s.waitPing(ctx, n, false)
	})
	// Sentinels learn the replicas from the master's INFO, every 10 s: that
	// wait overlaps with starting ingest and HAProxy, which need only the master.
	var g errgroup.Group
	g.Go(func() error {
		t0 := time.Now()
		if err := s.WaitConverged(ctx); err != nil {
			return fmt.Errorf("redis replication: %w", err)
		}
		t.Logf("e2e: replication and sentinels converged in %s", time.Since(t0).Round(10*time.Millisecond))
		return nil
	})
	g.Go(func() error {
		t0 := time.Now()
		var ig errgroup.Group
		for _, n := range s.IngestNames() {
			ig.Go(func() error { return s.startIngest(ctx, n) })
		}
		if err := ig.Wait(); err != nil {
			return fmt.Errorf("start ingest: %w", err)
		}
		t.Logf("e2e: ingest ready in %s", time.Since(t0).Round(10*time.Millisecond))
		t0 = time.Now()
		if err := s.startHAProxy(ctx); err != nil {
			return fmt.Errorf("start haproxy: %w", err)
		}
		if err := s.WaitHAProxyUp(ctx, s.opts.IngestReplicas); err != nil {
			return fmt.Errorf("haproxy backends: %w", err)
		}
		t.Logf("e2e: haproxy sees %d ingest servers UP after %s", s.opts.IngestReplicas, time.Since(t0).Round(10*time.Millisecond))
		return nil
	})
	if err := g.Wait(); err != nil {
		s.dumpLogs("start-failed")
		t.Fatal(err)
	}
	t.Logf("e2e: stack %s ready in %s", s.prefix, time.Since(began).Round(10*time.Millisecond))
	return s
}

// RedisNames are the Redis node names; redis-1 is the initial master.
func RedisNames() []string { return []string{"redis-1", "redis-2", "redis-3"} }

// SentinelNames are the Sentinel names.
func SentinelNames() []string { return []string{"sentinel-1", "sentinel-2", "sentinel-3"} }

// IngestNames are the ingest container names, ingest-1..ingest-N.
func (s *Stack) IngestNames() []string {
	names := make([]string, s.opts.IngestReplicas)
	for i := range names {
		names[i] = fmt.Sprintf("ingest-%d", i+1)
	}
	return names
}

// Names lists every container of the stack by its short name.
func (s *Stack) Names() []string {
	names := append(RedisNames(), SentinelNames()...)
	names = append(names, s.IngestNames()...)
	return append(names, "haproxy")
}

// Options returns the options the stack was started with (defaults filled in).
func (s *Stack) Options() Options { return s.opts }

// NetworkName is the Docker network of the stack.
func (s *Stack) NetworkName() string { return s.net.Name }

// ContainerName is the Docker container name of a short name ("redis-1").
func (s *Stack) ContainerName(name string) string { return s.prefix + "-" + name }

// ContainerID is the Docker ID of a short name.
func (s *Stack) ContainerID(name string) string { return s.ctr(name).GetContainerID() }

// Docker is the Docker API client the harness uses (for network connect and
// disconnect, inspect and the like).
func (s *Stack) Docker() *client.Client { return s.docker.Client }

func (s *Stack) ctr(name string) *testcontainers.DockerContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ctrs[name]
	if !ok {
		// A programming error; panic rather than FailNow, which would be wrong
		// from a subtest's goroutine.
		panic(fmt.Sprintf("e2e: no container %q in this stack (have %v)", name, s.Names()))
	}
	return c
}

func (s *Stack) labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		labelE2E:   "1",
		labelPID:   strconv.Itoa(os.Getpid()),
		labelHost:  host,
		labelStack: s.prefix,
	}
}

// Image returns the image name of one part: "ingest", "redis" or "haproxy".
func (s *Stack) Image(part string) string { return "sluice/" + part + ":" + s.tag }

func (s *Stack) requireImages(ctx context.Context) {
	s.t.Helper()
	var missing []string
	for _, part := range []string{"redis", "haproxy", "ingest"} {
		if _, err := s.docker.ImageInspect(ctx, s.Image(part)); err != nil {
			missing = append(missing, s.Image(part))
		}
	}
	if len(missing) > 0 {
		s.t.Fatalf("e2e: image(s) %s not found: run `make images` (SLUICE_TAG=%q must match the tag it builds; "+
			"no registry is reachable, so nothing is pulled)", strings.Join(missing, ", "), s.tag)
	}
}

// container describes one container to start.
type containerSpec struct {
	name       string
	image      string
	env        map[string]string
	cmd        []string
	entrypoint []string
	files      []testcontainers.ContainerFile
	ports      []string
	aliases    []string
	netAdmin   bool
}

func (s *Stack) run(ctx context.Context, spec containerSpec) error {
	bindings := mnet.PortMap{}
	for _, p := range spec.ports {
		port, err := mnet.ParsePort(p)
		if err != nil {
			return fmt.Errorf("port %s: %w", p, err)
		}
		// Published on loopback only; the host port is chosen by Docker and
		// re-read after every start (it changes when a container restarts).
		bindings[port] = []mnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
	}
	aliases := append([]string{spec.name}, spec.aliases...)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(s.ContainerName(spec.name)),
		testcontainers.WithLabels(s.labels()),
		testcontainers.WithEnv(spec.env),
		testcontainers.WithExposedPorts(spec.ports...),
		testcontainers.WithFiles(spec.files...),
		network.WithNetwork(aliases, s.net),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			// Some entrypoints derive the announced name from the hostname.
			c.Hostname = spec.name
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = bindings
			if spec.netAdmin {
				// The fault suite partitions with `ip route add blackhole`.
				hc.CapAdd = append(hc.CapAdd, "NET_ADMIN")
			}
		}),
	}
	if len(spec.cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.cmd...))
	}
	if len(spec.entrypoint) > 0 {
		opts = append(opts, testcontainers.WithEntrypoint(spec.entrypoint...))
	}
	c, err := testcontainers.Run(ctx, spec.image, opts...)
	testcontainers.CleanupContainer(s.t, c)
	if c != nil {
		s.mu.Lock()
		s.ctrs[spec.name] = c
		s.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("run %s (%s): %w", spec.name, spec.image, err)
	}
	return nil
}

// repoFile is a file of the repository copied into a container: the same
// files compose mounts, never copies kept in e2e/.
func (s *Stack) repoFile(rel, dst string, mode int64) testcontainers.ContainerFile {
	p := filepath.Join(s.root, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		s.t.Fatalf("e2e: config file %s: %v", rel, err)
	}
	return testcontainers.ContainerFile{HostFilePath: p, ContainerFilePath: dst, FileMode: mode}
}

// HostAddr is the 127.0.0.1 address a container port is published on, read
// afresh from Docker (the host port changes when a container restarts).
func (s *Stack) HostAddr(ctx context.Context, name, port string) (string, error) {
	c := s.ctr(name)
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("mapped port %s of %s: %w", port, name, err)
	}
	return net.JoinHostPort("127.0.0.1", p.Port()), nil
}

// mustHostAddr is HostAddr for the getters without an error result. On error
// it marks the test failed (Errorf is safe from subtests, FailNow is not) and
// returns an address that cannot be dialled, so the caller fails visibly.
func (s *Stack) mustHostAddr(name, port string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.HostAddr(ctx, name, port)
	if err != nil {
		s.t.Errorf("e2e: %v", err)
		return "127.0.0.1:0"
	}
	return addr
}

// HAProxyAddr is HAProxy's data port on 127.0.0.1.
func (s *Stack) HAProxyAddr() string { return s.mustHostAddr("haproxy", dataPort) }

// StatsURL is HAProxy's stats page (basic auth: StatsUser/StatsPassword).
func (s *Stack) StatsURL() string { return "http://" + s.mustHostAddr("haproxy", statsPort) + "/stats" }

// IngestAdminURL is the admin HTTP base URL of one ingest container.
func (s *Stack) IngestAdminURL(ctx context.Context, name string) (string, error) {
	addr, err := s.HostAddr(ctx, name, adminPort)
	if err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

// IngestDataAddr is the data port of one ingest container on 127.0.0.1. It
// expects a PROXY v2 header first (INGEST_PROXY_PROTOCOL=true).
func (s *Stack) IngestDataAddr(ctx context.Context, name string) (string, error) {
	return s.HostAddr(ctx, name, dataPort)
}

// dialer dials a published port of a container, resolving it on every dial so
// that clients keep working across container restarts.
func (s *Stack) dialer(name, port string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		hostAddr, err := s.HostAddr(ctx, name, port)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", hostAddr)
	}
}

// Redis is a go-redis client to one Redis node through its published port. It
// re-resolves the port on every new connection. The stack closes it.
func (s *Stack) Redis(name string) *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[name]; ok {
		return c
	}
	c := redis.NewClient(&redis.Options{
		Addr:       name + ":6379", // informational; Dialer decides
		Dialer:     s.dialer(name, redisPort),
		Username:   "admin", // redis/redis.conf: the default user is off
		Password:   s.RedisPassword,
		MaxRetries: -1, // the harness and the tests retry themselves
		// One dial attempt: a stopped container fails at once instead of five times.
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   5 * time.Second,
		WriteTimeout:  5 * time.Second,
		PoolSize:      4,
	})
	s.clients[name] = c
	return c
}

// Sentinel is a go-redis Sentinel client to one Sentinel through its published port.
func (s *Stack) Sentinel(name string) *redis.SentinelClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.sents[name]; ok {
		return c
	}
	c := redis.NewSentinelClient(&redis.Options{
		Addr:          name + ":26379",
		Dialer:        s.dialer(name, sentinelPort),
		Password:      s.RedisPassword,
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   3 * time.Second,
		WriteTimeout:  3 * time.Second,
		PoolSize:      2,
	})
	s.sents[name] = c
	return c
}

func (s *Stack) closeClients() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		_ = c.Close()
	}
	for _, c := range s.sents {
		_ = c.Close()
	}
}

// State is the Docker state of a container ("running", "paused", "exited", ...).
func (s *Stack) State(ctx context.Context, name string) (container.ContainerState, error) {
	res, err := s.docker.ContainerInspect(ctx, s.ContainerID(name), client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	if res.Container.State == nil {
		return "", fmt.Errorf("inspect %s: no state", name)
	}
	return res.Container.State.Status, nil
}

// running reports whether a container is running and not paused.
func (s *Stack) running(ctx context.Context, name string) bool {
	st, err := s.State(ctx, name)
	return err == nil && st == container.StateRunning
}

// Kill sends SIGKILL to a container.
func (s *Stack) Kill(ctx context.Context, name string) error {
	return s.Signal(ctx, name, "SIGKILL")
}

// Signal sends a signal ("SIGTERM", "SIGKILL", "SIGHUP", ...) to a container's main process.
func (s *Stack) Signal(ctx context.Context, name, sig string) error {
	if _, err := s.docker.ContainerKill(ctx, s.ContainerID(name), client.ContainerKillOptions{Signal: sig}); err != nil {
		return fmt.Errorf("signal %s %s: %w", sig, name, err)
	}
	return nil
}

// Stop stops a container (SIGTERM, then SIGKILL after timeout).
func (s *Stack) Stop(ctx context.Context, name string, timeout time.Duration) error {
	secs := int(timeout.Round(time.Second) / time.Second)
	if _, err := s.docker.ContainerStop(ctx, s.ContainerID(name), client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Start starts a stopped (or killed) container. Its host ports change; every
// harness client re-resolves them.
func (s *Stack) Start(ctx context.Context, name string) error {
	if _, err := s.docker.ContainerStart(ctx, s.ContainerID(name), client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// Restart stops (SIGTERM, 10 s grace) and starts a container.
func (s *Stack) Restart(ctx context.Context, name string) error {
	secs := 10
	if _, err := s.docker.ContainerRestart(ctx, s.ContainerID(name), client.ContainerRestartOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	return nil
}

// Pause freezes every process of a container (docker pause).
func (s *Stack) Pause(ctx context.Context, name string) error {
	if _, err := s.docker.ContainerPause(ctx, s.ContainerID(name), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// Unpause thaws a paused container.
func (s *Stack) Unpause(ctx context.Context, name string) error {
	if _, err := s.docker.ContainerUnpause(ctx, s.ContainerID(name), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w", name, err)
	}
	return nil
}

// IP is a container's address on the stack network.
func (s *Stack) IP(ctx context.Context, name string) (string, error) {
	res, err := s.docker.ContainerInspect(ctx, s.ContainerID(name), client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	if res.Container.NetworkSettings == nil {
		return "", fmt.Errorf("%s has no network settings", name)
	}
	ep, ok := res.Container.NetworkSettings.Networks[s.net.Name]
	if !ok || ep == nil || !ep.IPAddress.IsValid() {
		return "", fmt.Errorf("%s has no address on network %s", name, s.net.Name)
	}
	return ep.IPAddress.String(), nil
}

// Exec runs a command in a container and returns its combined output. A
// non-zero exit status is an error that carries the output.
func (s *Stack) Exec(ctx context.Context, name string, cmd ...string) (string, error) {
	code, r, err := s.ctr(name).Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: %w", cmd, name, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: read output: %w", cmd, name, err)
	}
	if code != 0 {
		return string(out), fmt.Errorf("exec %q in %s: exit status %d: %s", cmd, name, code, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Logs returns a container's stdout and stderr so far (an error text if they
// cannot be read).
func (s *Stack) Logs(ctx context.Context, name string) string {
	rc, err := s.ctr(name).Logs(ctx)
	if err != nil {
		return fmt.Sprintf("<logs of %s: %v>", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return string(b) + fmt.Sprintf("\n<logs of %s: %v>", name, err)
	}
	return string(b)
}

// beforeRemove runs first among the stack's cleanups: it saves the logs of a
// failed test, then removes the containers in parallel.
func (s *Stack) beforeRemove() {
	if s.t.Failed() {
		s.dumpLogs("failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.mu.Lock()
	names := make([]string, 0, len(s.ctrs))
	for n := range s.ctrs {
		names = append(names, n)
	}
	s.mu.Unlock()
	// Remove every container at once (SIGKILL, no drain): the per-container
	// CleanupContainer that runs next finds them gone, which it accepts, and a
	// stack goes in about a second instead of one stop timeout per container.
	var g errgroup.Group
	for _, n := range names {
		g.Go(func() error {
			if st, err := s.State(ctx, n); err == nil && st == container.StatePaused {
				_ = s.Unpause(ctx, n)
			}
			_, err := s.docker.ContainerRemove(ctx, s.ContainerID(n), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil {
				s.t.Logf("e2e: remove %s: %v", n, err)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// dumpLogs writes every container's log to e2e/out/<test>/<name>.log.
func (s *Stack) dumpLogs(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(s.root, "e2e", "out", sanitize(s.t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Logf("e2e: logs dir: %v", err)
		return
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.ctrs))
	for n := range s.ctrs {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		_ = os.WriteFile(filepath.Join(dir, n+".log"), []byte(s.Logs(ctx, n)), 0o644)
	}
	s.t.Logf("e2e: %s: container logs in %s", why, dir)
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}

// requireEnv fails fast when the environment would make testcontainers pull
// the Ryuk image (no registry is reachable) or map ports oddly.
func requireEnv(t testing.TB) {
	t.Helper()
	if err := checkEnv(); err != nil {
		t.Fatal(err)
	}
}

func checkEnv() error {
	var errs []error
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		errs = append(errs, errors.New("TESTCONTAINERS_RYUK_DISABLED must be exactly \"true\" (Ryuk needs an image pull; the harness cleans up itself)"))
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		errs = append(errs, errors.New("TESTCONTAINERS_HOST_OVERRIDE must be set, e.g. 127.0.0.1 (ports are published on loopback)"))
	}
	return errors.Join(errs...)
}

// imageTag is SLUICE_TAG, or `git describe --always --dirty` as `make images` computes it.
func imageTag(t testing.TB) string {
	t.Helper()
	if tag := os.Getenv("SLUICE_TAG"); tag != "" {
		return tag
	}
	t.Fatal("e2e: SLUICE_TAG is not set: run `make images` and then `make test-e2e` " +
		"(or export SLUICE_TAG=$(git describe --always --dirty) after `make images`)")
	return ""
}

// repoRoot finds the directory holding go.mod, upwards from the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("e2e: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// httpGet does a GET (with basic auth when user is set) and returns the status and body.
func httpGet(ctx context.Context, url, user, password string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, string(body), fmt.Errorf("get %s: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}

// retry calls f until it succeeds or ctx ends, and returns the last error.
func retry(ctx context.Context, every time.Duration, f func() error) error {
	var last error
	for {
		err := f()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(every):
		}
	}
}
