//go:build e2e

package terraform_test

// terraform apply cannot run here (the provider is not downloadable), so this
// test does what the kreuzwerker/docker provider does for the module, with
// the values the module evaluates to: it checks the images exist locally
// (docker_image never pulls here), creates the network and volumes, then
// creates each container, uploads its files before starting it (0644, or 0744
// when executable), attaches it to the network under its aliases, starts it,
// and with wait = true waits until Docker reports it healthy. Resources start
// in depends_on order; independent ones in parallel, as Terraform does.
// Then messages go through HAProxy's published port and must land in Redis.
//
// Run: SLUICE_TAG=<tag of make images> TESTCONTAINERS_RYUK_DISABLED=true \
//        go test -tags e2e -run TestModuleApplies ./terraform/
// SLUICE_TF_EXCLUDE (comma-separated resource addresses) leaves resources out,
// like `terraform apply -exclude`, e.g. while an image cannot be built yet.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mnet "github.com/moby/moby/api/types/network"
	mobyclient "github.com/moby/moby/client"
	"github.com/sluice-ingest/sluice/services/ingest/client"
	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sync/errgroup"
)

func TestModuleApplies(t *testing.T) {
	tag := os.Getenv("SLUICE_TAG")
	if tag == "" {
		t.Fatal("SLUICE_TAG must name the images `make images` built (no registry: nothing is pulled)")
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		t.Fatal("set TESTCONTAINERS_RYUK_DISABLED=true: the reaper image cannot be pulled; this test cleans up itself")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	began := time.Now()

	project := fmt.Sprintf("sluicetf-%d", os.Getpid())
	redisPassword := "tf-e2e-redis-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	statsPassword := "tf-e2e-stats-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	m, _, err := topology.LoadModule(".", topology.WithVariables(map[string]cty.Value{
		"project_name":           cty.StringVal(project),
		"image_tag":              cty.StringVal(tag),
		"redis_password":         cty.StringVal(redisPassword),
		"haproxy_stats_password": cty.StringVal(statsPassword),
		// 0: Docker picks free host ports, so the test never collides with a running stack.
		"ingest_port": cty.NumberIntVal(0),
		"http_port":   cty.NumberIntVal(0),
		"noack_port":  cty.NumberIntVal(0),
		"stats_port":  cty.NumberIntVal(0),
	}))
	if err != nil {
		t.Fatalf("evaluate module: %v", err)
	}
	excluded := map[string]bool{}
	for _, a := range strings.Split(os.Getenv("SLUICE_TF_EXCLUDE"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			excluded[a] = true
			t.Logf("excluded (SLUICE_TF_EXCLUDE): %s", a)
		}
	}

	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { _ = docker.Close() })
	host, _ := os.Hostname()
	labels := map[string]string{labelProject: project, labelPID: strconv.Itoa(os.Getpid()), labelHost: host}
	if err := sweepDeadRuns(ctx, docker, host); err != nil {
		t.Errorf("remove leftovers of killed runs: %v", err)
	}

	// docker_image: present on the host, or the provider would try a pull.
	for name, obj := range m.Objects("docker_image") {
		if excluded["docker_image."+name] {
			continue
		}
		for _, inst := range instancesOf(obj) { // none for count = 0 (monitoring off)
			img := inst.GetAttr("name").AsString()
			if _, err := docker.ImageInspect(ctx, img); err != nil {
				t.Fatalf("docker_image.%s: %s is not on the Docker host (run `make images`): %v", name, img, err)
			}
		}
	}

	// docker_network and docker_volume, removed after the containers (cleanups run LIFO).
	for name, obj := range m.Objects("docker_network") {
		netName := obj.GetAttr("name").AsString()
		if _, err := docker.NetworkCreate(ctx, netName, mobyclient.NetworkCreateOptions{
			Driver: obj.GetAttr("driver").AsString(), Labels: labels,
		}); err != nil {
			t.Fatalf("docker_network.%s: %v", name, err)
		}
		t.Cleanup(func() {
			if _, err := docker.NetworkRemove(context.Background(), netName, mobyclient.NetworkRemoveOptions{}); err != nil {
				t.Errorf("remove network %s: %v", netName, err)
			}
		})
	}
	for name, obj := range m.Objects("docker_volume") {
		var names []string
		for _, inst := range instancesOf(obj) {
			names = append(names, inst.GetAttr("name").AsString())
		}
		for _, vol := range names {
			if _, err := docker.VolumeCreate(ctx, mobyclient.VolumeCreateOptions{Name: vol, Labels: labels}); err != nil {
				t.Fatalf("docker_volume.%s: %v", name, err)
			}
			t.Cleanup(func() {
				if _, err := docker.VolumeRemove(context.Background(), vol, mobyclient.VolumeRemoveOptions{Force: true}); err != nil {
					t.Errorf("remove volume %s: %v", vol, err)
				}
			})
		}
	}

	// docker_container, resource by resource in depends_on order.
	var order []string
	byResource := map[string][]*topology.InstanceSpec{}
	for _, s := range m.Specs() {
		if excluded[s.Resource] {
			continue
		}
		if byResource[s.Resource] == nil {
			order = append(order, s.Resource)
		}
		byResource[s.Resource] = append(byResource[s.Resource], s)
	}
	var mu sync.Mutex
	started := map[string]*testcontainers.DockerContainer{} // by container name
	done := map[string]bool{}
	for len(done) < len(order) {
		var wave []string
		for _, r := range order {
			if !done[r] && !slices.ContainsFunc(byResource[r][0].DependsOn, func(d string) bool { return !done[d] && !excluded[d] }) {
				wave = append(wave, r)
			}
		}
		if len(wave) == 0 {
			t.Fatalf("depends_on cycle among %q", order)
		}
		t0 := time.Now()
		var g errgroup.Group
		for _, r := range wave {
			for _, spec := range byResource[r] {
				g.Go(func() error {
					c, err := runInstance(ctx, t, spec, labels)
					if c != nil {
						mu.Lock()
						started[spec.Name] = c
						mu.Unlock()
					}
					return err
				})
			}
		}
		if err := g.Wait(); err != nil {
			dumpLogs(t, started)
			t.Fatalf("apply %q: %v", wave, err)
		}
		t.Logf("created %q (healthy where wait = true) in %s", wave, time.Since(t0).Round(10*time.Millisecond))
		for _, r := range wave {
			done[r] = true
		}
	}
	t.Logf("apply emulation finished in %s", time.Since(began).Round(10*time.Millisecond))

	// The outputs, with the ports Docker picked.
	haproxy := started[project+"-haproxy"]
	if haproxy == nil {
		t.Fatalf("no container %s-haproxy", project)
	}
	for port, output := range map[string]string{"9501/tcp": "ingest_endpoint", "9502/tcp": "http_endpoint", "9503/tcp": "noack_endpoint", "8404/tcp": "stats_url"} {
		v, _, err := m.EvalAttr(m.Outputs[output].Body, "value")
		if err != nil {
			t.Fatalf("output %s: %v", output, err)
		}
		if !strings.Contains(v.AsString(), "127.0.0.1:") {
			t.Errorf("output %s = %q, want it on bind_address 127.0.0.1", output, v.AsString())
		}
		if _, err := haproxy.MappedPort(ctx, port); err != nil {
			t.Errorf("haproxy does not publish %s: %v", port, err)
		}
	}
	published := func(port string) string {
		p, err := haproxy.MappedPort(ctx, port)
		if err != nil {
			t.Fatalf("mapped port %s: %v", port, err)
		}
		return "127.0.0.1:" + p.Port()
	}

	t.Run("stats page behind basic auth", func(t *testing.T) {
		url := "http://" + published("8404/tcp") + "/stats"
		for _, tc := range []struct {
			name string
			auth bool
			want int
		}{{"without password", false, http.StatusUnauthorized}, {"with password", true, http.StatusOK}} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if tc.auth {
				req.SetBasicAuth("admin", statsPassword)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: GET %s = %d, want %d", tc.name, url, resp.StatusCode, tc.want)
			}
		}
	})

	t.Run("messages through haproxy land in redis", func(t *testing.T) {
		const n = 500
		sendCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		t0 := time.Now()
		c, err := client.Dial(sendCtx, client.Config{Addr: published("9501/tcp")})
		if err != nil {
			t.Fatalf("dial ingest endpoint: %v", err)
		}
		want := map[string]bool{}
		for i := range n {
			msg := fmt.Sprintf("terraform-e2e-%s-%d", project, i)
			want[msg] = true
			if _, err := c.Send(sendCtx, []byte(msg)); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		if err := c.WaitAcked(sendCtx); err != nil {
			t.Fatalf("wait for acks: %v (acked %d of %d)", err, c.Acked(), n)
		}
		c.Close()
		t.Logf("%d messages acked in %s", n, time.Since(t0).Round(time.Millisecond))
		var body strings.Builder
		for i := range n {
			msg := fmt.Sprintf("terraform-e2e-http-%s-%d", project, i)
			want[msg] = true
			body.WriteString(msg + "\n")
		}
		resp, err := http.Post("http://"+published("9502/tcp")+"/v1/messages", "text/plain", strings.NewReader(body.String()))
		if err != nil {
			t.Fatalf("POST /v1/messages: %v", err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/messages: %d %s", resp.StatusCode, answer)
		}

		// Ask a Sentinel for the master (with the Sentinels' password, which the
		// module derives), then read the list there as admin.
		sentinelPassword := fmt.Sprintf("%x", sha256.Sum256([]byte(redisPassword+"/sentinels")))
		master := strings.Fields(redisCLI(ctx, t, started[project+"-sentinel-1"], sentinelPassword,
			"-p", "26379", "SENTINEL", "get-master-addr-by-name", "sluice"))
		if len(master) != 2 {
			t.Fatalf("sentinel answer %q", master)
		}
		got := strings.Split(strings.TrimSpace(redisCLI(ctx, t, started[project+"-"+master[0]], redisPassword,
			"--user", "admin", "-p", master[1], "LRANGE", "data_queue", "0", "-1")), "\n")
		seen := map[string]int{}
		for _, msg := range got {
			seen[msg]++
		}
		for msg := range want {
			if seen[msg] == 0 {
				t.Errorf("acked message %q not in %s's data_queue", msg, master[0])
			}
		}
		t.Logf("master %s holds %d entries; every one of the %d acked messages (TCP and HTTP) is there", master[0], len(got), len(want))
	})
}

// instancesOf is a resource's instances: the object itself (it has a
// name), or the elements of the tuple or object that count or for_each
// make (none for count = 0).
func instancesOf(obj cty.Value) []cty.Value {
	if obj.Type().IsObjectType() && obj.Type().HasAttribute("name") {
		return []cty.Value{obj}
	}
	var out []cty.Value
	for it := obj.ElementIterator(); it.Next(); {
		_, v := it.Element()
		out = append(out, v)
	}
	return out
}

// Labels on everything the test creates.
const (
	labelProject = "sluice.terraform-e2e"
	labelPID     = "sluice.terraform-e2e.pid"
	labelHost    = "sluice.terraform-e2e.host"
)

// sweepDeadRuns removes what an earlier run on this host left behind when it
// was killed before its cleanups ran (go test -timeout): its PID is gone.
func sweepDeadRuns(ctx context.Context, docker *testcontainers.DockerClient, host string) error {
	dead := func(l map[string]string) bool {
		if l[labelProject] == "" || l[labelHost] != host {
			return false
		}
		pid, err := strconv.Atoi(l[labelPID])
		return err == nil && syscall.Kill(pid, 0) == syscall.ESRCH
	}
	var errs []error
	ctrs, err := docker.ContainerList(ctx, mobyclient.ContainerListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs.Items {
		if dead(c.Labels) {
			if _, err := docker.ContainerRemove(ctx, c.ID, mobyclient.ContainerRemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Errorf("remove container %v: %w", c.Names, err))
			}
		}
	}
	nets, err := docker.NetworkList(ctx, mobyclient.NetworkListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range nets.Items {
		if dead(n.Labels) {
			if _, err := docker.NetworkRemove(ctx, n.ID, mobyclient.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
	}
	vols, err := docker.VolumeList(ctx, mobyclient.VolumeListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list volumes: %w", err))...)
	}
	for _, v := range vols.Items {
		if dead(v.Labels) {
			if _, err := docker.VolumeRemove(ctx, v.Name, mobyclient.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// runInstance creates one container as the provider does (create, upload,
// connect, start) and waits for health when the module says wait = true.
func runInstance(ctx context.Context, t *testing.T, spec *topology.InstanceSpec, labels map[string]string) (*testcontainers.DockerContainer, error) {
	env := map[string]string{}
	for _, e := range spec.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	var files []testcontainers.ContainerFile
	for _, u := range spec.Uploads {
		mode := int64(0o644)
		if u.Executable {
			mode = 0o744
		}
		files = append(files, testcontainers.ContainerFile{Reader: strings.NewReader(u.Content), ContainerFilePath: u.File, FileMode: mode})
	}
	bindings := mnet.PortMap{}
	var exposed []string
	for _, p := range spec.Ports {
		port, err := mnet.ParsePort(fmt.Sprintf("%d/%s", p.Internal, p.Protocol))
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(p.IP)
		if err != nil {
			return nil, fmt.Errorf("port %d ip %q: %w", p.Internal, p.IP, err)
		}
		hostPort := ""
		if p.External != 0 {
			hostPort = strconv.Itoa(p.External)
		}
		bindings[port] = append(bindings[port], mnet.PortBinding{HostIP: ip, HostPort: hostPort})
		exposed = append(exposed, port.String())
	}
	var mounts []mount.Mount
	for _, v := range spec.Volumes {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: v.Path})
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(spec.Name),
		testcontainers.WithLabels(labels),
		testcontainers.WithEnv(env),
		testcontainers.WithFiles(files...),
		testcontainers.WithExposedPorts(exposed...),
		network.WithNetworkName(spec.Aliases, spec.Network),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.Hostname = spec.Hostname
			if spec.StopTimeout > 0 {
				c.StopTimeout = &spec.StopTimeout
			}
			if h := spec.Health; h != nil {
				c.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
					StartPeriod: h.StartPeriod, Retries: h.Retries}
			}
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			// The provider publishes only the ports blocks (publish_all_ports defaults to
			// false); testcontainers would otherwise publish every EXPOSEd port on 0.0.0.0.
			hc.PublishAllPorts = false
			hc.PortBindings = bindings
			hc.Mounts = mounts
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(spec.Restart)}
			hc.LogConfig = container.LogConfig{Type: spec.LogDriver, Config: spec.LogOpts}
			hc.Memory = int64(spec.MemoryMiB) << 20
		}),
	}
	if len(spec.Command) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.Command...))
	}
	if len(spec.Entry) > 0 {
		opts = append(opts, testcontainers.WithEntrypoint(spec.Entry...))
	}
	if spec.Wait {
		opts = append(opts, testcontainers.WithWaitStrategy(
			wait.ForHealthCheck().WithStartupTimeout(time.Duration(spec.WaitTimeout)*time.Second)))
	}
	// Docker 20.10 picks a random host port without checking that no other
	// process holds it; on a busy machine the start can fail on that. Only then
	// is the container removed and created again.
	for attempt := 1; ; attempt++ {
		c, err := testcontainers.Run(ctx, spec.Image, opts...)
		testcontainers.CleanupContainer(t, c)
		if err != nil && attempt < 3 && len(bindings) > 0 && strings.Contains(err.Error(), "address already in use") {
			t.Logf("%s: random host port taken, retrying: %v", spec.Addr, err)
			if c != nil {
				if err := c.Terminate(ctx); err != nil {
					return nil, fmt.Errorf("%s: remove before retry: %w", spec.Addr, err)
				}
			}
			continue
		}
		if err != nil {
			return c, fmt.Errorf("%s (%s): %w", spec.Addr, spec.Name, err)
		}
		return c, nil
	}
}

// redisCLI runs redis-cli in a container (the password travels in
// REDISCLI_AUTH, never on the command line) and returns its raw output.
func redisCLI(ctx context.Context, t *testing.T, c *testcontainers.DockerContainer, password string, args ...string) string {
	t.Helper()
	if c == nil {
		t.Fatal("redis-cli: no such container")
	}
	code, out, err := c.Exec(ctx, append([]string{"redis-cli", "--raw"}, args...),
		tcexec.Multiplexed(), tcexec.WithEnv([]string{"REDISCLI_AUTH=" + password}))
	if err != nil || code != 0 {
		t.Fatalf("redis-cli %q: exit %d: %v", args, code, err)
	}
	raw, err := io.ReadAll(out)
	if err != nil {
		t.Fatalf("redis-cli %q output: %v", args, err)
	}
	return string(raw)
}

// dumpLogs logs the tail of every started container's output after a failure.
func dumpLogs(t *testing.T, started map[string]*testcontainers.DockerContainer) {
	for name, c := range started {
		rc, err := c.Logs(context.Background())
		if err != nil {
			continue
		}
		out, _ := io.ReadAll(rc)
		_ = rc.Close()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("--- %s (last %d lines)\n%s", name, len(lines), strings.Join(lines, "\n"))
	}
}
