//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"
)

// Containers is the Docker side of one stack: its network, the containers
// started on it (by short name: "redis-1", "backup", ...) and their removal.
type Containers struct {
	t      testing.TB
	prefix string
	root   string
	tag    string
	docker *testcontainers.DockerClient
	net    *testcontainers.DockerNetwork

	mu    sync.Mutex
	nodes map[string]*Node
}

// newContainers opens a Docker client; t's cleanup closes it.
func newContainers(ctx context.Context, t testing.TB, prefix, root, tag string) (*Containers, error) {
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	t.Cleanup(func() { _ = docker.Close() })
	return &Containers{t: t, prefix: prefix, root: root, tag: tag, docker: docker, nodes: map[string]*Node{}}, nil
}

// createNetwork creates the stack's network; t's cleanup removes it after
// the containers.
func (c *Containers) createNetwork(ctx context.Context) error {
	nw, err := network.New(ctx, network.WithLabels(c.labels()))
	testcontainers.CleanupNetwork(c.t, nw)
	if err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	c.net = nw
	return nil
}

// Node is the handle of a container by its short name. An unknown name is a
// programming error: Node panics (FailNow would be wrong from a subtest's
// goroutine).
func (c *Containers) Node(name string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		have := make([]string, 0, len(c.nodes))
		for k := range c.nodes {
			have = append(have, k)
		}
		sort.Strings(have)
		panic(fmt.Sprintf("e2e: no container %q in this stack (have %v)", name, have))
	}
	return n
}

// Network is the name of the stack's Docker network.
func (c *Containers) Network() string { return c.net.Name }

// Client is the Docker API client the harness uses (for network connect and
// disconnect, inspect, volumes and the like).
func (c *Containers) Client() *client.Client { return c.docker.Client }

// Image returns the image name of one part: "ingest", "redis", "backup", ...
func (c *Containers) Image(part string) string { return "sluice/" + part + ":" + c.tag }

// RequireImages returns an error naming every part whose image is missing.
// Nothing is pulled: no registry is reachable.
func (c *Containers) RequireImages(ctx context.Context, parts ...string) error {
	var missing []string
	for _, part := range parts {
		if _, err := c.docker.ImageInspect(ctx, c.Image(part)); err != nil {
			missing = append(missing, c.Image(part))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("e2e: image(s) %s not found: run `make images` (SLUICE_TAG=%q must match the tag it builds; "+
			"no registry is reachable, so nothing is pulled)", strings.Join(missing, ", "), c.tag)
	}
	return nil
}

// dialer dials a published port of a container, looking the container up and
// resolving the port on every dial, so that clients keep working across
// restarts and across a container replaced under the same name.
func (c *Containers) dialer(name, port string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		hostAddr, err := c.Node(name).HostAddr(ctx, port)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", hostAddr)
	}
}

func (c *Containers) labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		labelE2E:   "1",
		labelPID:   strconv.Itoa(os.Getpid()),
		labelHost:  host,
		labelStack: c.prefix,
	}
}

// containerSpec describes one container to start.
type containerSpec struct {
	name       string
	image      string
	env        map[string]string
	cmd        []string
	entrypoint []string
	files      []repoFile
	ports      []string
	aliases    []string
	netAdmin   bool
}

// repoFile is a file of the repository copied into a container: the same
// files compose mounts, never copies kept in e2e/. rel is relative to the
// repository root.
type repoFile struct {
	rel, dst string
	mode     int64
}

// run starts a container on the stack's network and registers its removal
// with t.Cleanup. A container started again under a name replaces the old
// one's handle.
func (c *Containers) run(ctx context.Context, spec containerSpec) (*Node, error) {
	bindings := mnet.PortMap{}
	for _, p := range spec.ports {
		port, err := mnet.ParsePort(p)
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", p, err)
		}
		// Published on loopback only; the host port is chosen by Docker and
		// re-read after every start (it changes when a container restarts).
		bindings[port] = []mnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
	}
	files := make([]testcontainers.ContainerFile, 0, len(spec.files))
	for _, f := range spec.files {
		p := filepath.Join(c.root, filepath.FromSlash(f.rel))
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("e2e: config file %s: %w", f.rel, err)
		}
		files = append(files, testcontainers.ContainerFile{HostFilePath: p, ContainerFilePath: f.dst, FileMode: f.mode})
	}
	aliases := append([]string{spec.name}, spec.aliases...)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(c.ContainerName(spec.name)),
		testcontainers.WithLabels(c.labels()),
		testcontainers.WithEnv(spec.env),
		testcontainers.WithExposedPorts(spec.ports...),
		testcontainers.WithFiles(files...),
		network.WithNetwork(aliases, c.net),
		testcontainers.WithConfigModifier(func(cfg *container.Config) {
			// Some entrypoints derive the announced name from the hostname.
			cfg.Hostname = spec.name
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
	ctr, err := testcontainers.Run(ctx, spec.image, opts...)
	testcontainers.CleanupContainer(c.t, ctr)
	var n *Node
	if ctr != nil {
		n = &Node{name: spec.name, ctr: ctr, docker: c.docker.Client, network: c.net.Name}
		c.mu.Lock()
		c.nodes[spec.name] = n
		c.mu.Unlock()
	}
	if err != nil {
		return n, fmt.Errorf("run %s (%s): %w", spec.name, spec.image, err)
	}
	return n, nil
}

func (c *Containers) all() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// beforeRemove runs first among the stack's cleanups: it saves the logs of a
// failed test, then removes the containers in parallel.
func (c *Containers) beforeRemove() {
	if c.t.Failed() {
		c.dumpLogs("failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Remove every container at once (SIGKILL, no drain): the per-container
	// CleanupContainer that runs next finds them gone, which it accepts, and a
	// stack goes in about a second instead of one stop timeout per container.
	var g errgroup.Group
	for _, n := range c.all() {
		g.Go(func() error {
			if st, err := n.State(ctx); err == nil && st == container.StatePaused {
				_ = n.Unpause(ctx)
			}
			_, err := c.docker.ContainerRemove(ctx, n.ID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil {
				c.t.Logf("e2e: remove %s: %v", n.name, err)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// dumpLogs writes every container's log to e2e/out/<test>/<name>.log.
func (c *Containers) dumpLogs(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(c.root, "e2e", "out", sanitize(c.t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("e2e: logs dir: %v", err)
		return
	}
	for _, n := range c.all() {
		_ = os.WriteFile(filepath.Join(dir, n.name+".log"), []byte(n.Logs(ctx)), 0o644)
	}
	c.t.Logf("e2e: %s: container logs in %s", why, dir)
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

// ContainerName is the Docker container name of a short name ("redis-1"),
// also for a container the harness did not start itself.
func (c *Containers) ContainerName(name string) string { return c.prefix + "-" + name }
