//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/client"
)

var composeSeq atomic.Int64

// TestCompose runs compose/compose.yaml itself (not a copy), once with
// docker-compose 1.29 and once with Compose v2, each under a unique project
// name on free loopback ports: it waits until every container is healthy,
// sends messages through HAProxy's published ports and finds them in the
// master's list. `down -v` removes everything, also when the test fails.
func TestCompose(t *testing.T) {
	requireEnv(t)
	root := repoRoot(t)
	tag, err := imageTag()
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"redis", "haproxy", "ingest", "backup"} {
		img := "sluice/" + part + ":" + tag
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			t.Fatalf("image %s not found: run `make images` (SLUICE_TAG=%q)", img, tag)
		}
	}
	for _, impl := range composeImplementations(t) {
		t.Run(impl.name, func(t *testing.T) { testCompose(t, root, tag, impl.cmd) })
	}
}

type composeImpl struct {
	name string
	cmd  []string
}

// composeImplementations are docker-compose 1.29 (on PATH) and Compose v2
// (SLUICE_COMPOSE_V2: the binary tools/compose-v2.sh builds, run
// standalone; `make test-e2e` sets it). In CI both are required.
func composeImplementations(t *testing.T) []composeImpl {
	t.Helper()
	var impls []composeImpl
	if p, err := exec.LookPath("docker-compose"); err == nil {
		impls = append(impls, composeImpl{"v1", []string{p}})
	} else if os.Getenv("CI") != "" {
		t.Errorf("docker-compose 1.29 is required in CI: %v", err)
	}
	if p := os.Getenv("SLUICE_COMPOSE_V2"); p != "" {
		impls = append(impls, composeImpl{"v2", []string{p}})
	} else if exec.Command("docker", "compose", "version").Run() == nil {
		impls = append(impls, composeImpl{"v2", []string{"docker", "compose"}})
	} else if os.Getenv("CI") != "" {
		t.Errorf("Compose v2 is required in CI: set SLUICE_COMPOSE_V2 (make test-e2e builds it with tools/compose-v2.sh)")
	}
	if len(impls) == 0 {
		t.Skip("neither docker-compose nor Compose v2 is installed")
	}
	return impls
}

func testCompose(t *testing.T, root, tag string, compose []string) {
	project := composeProjectName(composeSeq.Add(1))
	redisPassword := "e2e-compose-redis-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	env := append(os.Environ(),
		"SLUICE_TAG="+tag,
		"REDIS_PASSWORD="+redisPassword,
		"REDIS_REPLICATION_PASSWORD="+redisPassword+"-replication",
		"REDIS_SENTINEL_PASSWORD="+redisPassword+"-sentinel",
		"REDIS_INGEST_PASSWORD="+redisPassword+"-ingest",
		"REDIS_BACKUP_PASSWORD="+redisPassword+"-backup",
		"REDIS_STATUS_PASSWORD="+redisPassword+"-status",
		"REDIS_CONSUMER_PASSWORD="+redisPassword+"-consumer",
		"REDIS_MONITORING_PASSWORD="+redisPassword+"-monitoring",
		"SENTINEL_PASSWORD="+redisPassword+"-sentinels",
		"HAPROXY_STATS_USER=admin",
		"HAPROXY_STATS_PASSWORD=e2e-compose-stats",
		"SLUICE_BIND=127.0.0.1",
		"SLUICE_PORT="+strconv.Itoa(freePort(t)),
		"SLUICE_HTTP_PORT="+strconv.Itoa(freePort(t)),
		"SLUICE_NOACK_PORT="+strconv.Itoa(freePort(t)),
		"SLUICE_STATS_PORT="+strconv.Itoa(freePort(t)),
	)
	port, statsPort, httpPort := envValue(env, "SLUICE_PORT"), envValue(env, "SLUICE_STATS_PORT"), envValue(env, "SLUICE_HTTP_PORT")
	file := filepath.Join(root, "compose", "compose.yaml")
	run := func(ctx context.Context, args ...string) (string, error) {
		full := append(append(append([]string{}, compose[1:]...), "-p", project, "-f", file), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Env = env
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil {
			return out.String(), fmt.Errorf("%s %s: %w\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out.String())
		}
		return out.String(), nil
	}

	// Registered before `up`: whatever happens from here on, the project goes.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			if out, err := run(ctx, "logs", "--no-color", "--tail=200"); err == nil {
				dir := filepath.Join(root, "e2e", "out", sanitize(t.Name()))
				if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(filepath.Join(dir, "compose.log"), []byte(out), 0o644) == nil {
					t.Logf("compose logs in %s", dir)
				}
			}
		}
		t0 := time.Now()
		if _, err := run(ctx, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Errorf("compose down: %v", err)
		}
		t.Logf("%s down -v in %s", project, time.Since(t0).Round(10*time.Millisecond))
	})

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t0 := time.Now()
	if _, err := run(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s up -d returned after %s", project, time.Since(t0).Round(10*time.Millisecond))
	ids := composeWaitHealthy(ctx, t, run)
	t.Logf("all %d containers healthy after %s", len(ids), time.Since(t0).Round(10*time.Millisecond))

	// The HAProxy stats page is published too, behind basic auth, and lists
	// every ingest container as UP.
	rows, err := readStats(ctx, "http://127.0.0.1:"+statsPort+"/stats;csv", "admin", "e2e-compose-stats")
	if err != nil {
		t.Fatalf("stats page: %v", err)
	}
	up := 0
	for _, r := range rows {
		if r.IsServer() && r.Proxy == "ingest" && strings.HasPrefix(r.Status, "UP") {
			up++
		}
	}
	if up != 3 {
		t.Errorf("HAProxy lists %d ingest servers UP, want 3: %s", up, describeRows(rows))
	}
	if code, _, err := httpGet(ctx, "http://127.0.0.1:"+statsPort+"/stats", "", ""); err != nil || code != 401 {
		t.Errorf("stats page without credentials: status %d, err %v; want 401", code, err)
	}

	// Messages through the published data port land in the master's list.
	const n = 500
	addr := net.JoinHostPort("127.0.0.1", port)
	c, err := client.Dial(ctx, client.Config{Addr: addr})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("%s-msg-%04d", project, i)
		if _, err := c.Send(ctx, []byte(want[i])); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		t.Fatalf("acks: %v (status %+v)", err, c.Status())
	}
	t.Logf("%d messages acked through %s", n, addr)
	// And through the published HTTP port, after them.
	var body strings.Builder
	for i := range 100 {
		msg := fmt.Sprintf("%s-http-%04d", project, i)
		want = append(want, msg)
		body.WriteString(msg + "\n")
	}
	resp, err := http.Post("http://127.0.0.1:"+httpPort+"/v1/messages", "text/plain", strings.NewReader(body.String()))
	if err != nil {
		t.Fatalf("POST /v1/messages: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/messages: %d %s", resp.StatusCode, answer)
	}

	redisExec := func(service string, args ...string) (string, error) {
		out, err := run(ctx, "ps", "-q", service)
		if err != nil {
			return "", err
		}
		id := strings.TrimSpace(out)
		if id == "" {
			return "", fmt.Errorf("no container for service %s", service)
		}
		// Redis nodes: the admin ACL user; Sentinels: their own password.
		auth := []string{"-e", "REDISCLI_AUTH=" + redisPassword, id, "redis-cli", "--user", "admin", "--raw"}
		if strings.HasPrefix(service, "sentinel-") {
			auth = []string{"-e", "REDISCLI_AUTH=" + redisPassword + "-sentinels", id, "redis-cli", "--raw"}
		}
		cmd := exec.CommandContext(ctx, "docker", append(append([]string{"exec"}, auth...), args...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			return string(b), fmt.Errorf("docker exec %s redis-cli %v: %w: %s", service, args, err, b)
		}
		return string(b), nil
	}
	out, err := redisExec("sentinel-1", "-p", "26379", "SENTINEL", "get-master-addr-by-name", "sluice")
	if err != nil {
		t.Fatal(err)
	}
	master := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if !strings.HasPrefix(master, "redis-") {
		t.Fatalf("sentinel-1 names master %q", out)
	}
	// The shipped INGEST_MIN_REPLICAS waits for both replicas before an ack,
	// so every node holds the acked messages already.
	nodes := []string{master}
	for _, r := range RedisNames() {
		if r != master {
			nodes = append(nodes, r)
		}
	}
	for _, node := range nodes {
		out, err := redisExec(node, "-p", redisPorts[node], "LRANGE", QueueKey, "0", "-1")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSpace(out), "\n")
		if len(got) != len(want) {
			t.Fatalf("%s holds %d entries, want %d (first: %q)", node, len(got), len(want), got[0])
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %q, want %q", node, i, got[i], want[i])
			}
		}
		t.Logf("%s holds the %d messages in order (master %s)", node, n, master)
	}
}

// composeWaitHealthy waits until every container of the project is healthy and
// returns their IDs.
func composeWaitHealthy(ctx context.Context, t *testing.T, run func(context.Context, ...string) (string, error)) []string {
	t.Helper()
	var ids []string
	err := retry(ctx, 2*time.Second, func() error {
		out, err := run(ctx, "ps", "-q")
		if err != nil {
			return err
		}
		ids = strings.Fields(out)
		if len(ids) == 0 {
			return fmt.Errorf("no containers")
		}
		args := append([]string{"inspect", "-f", "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"}, ids...)
		b, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("docker inspect: %w: %s", err, b)
		}
		var bad []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasSuffix(line, " healthy") {
				bad = append(bad, line)
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("not healthy: %s", strings.Join(bad, ", "))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("compose stack: %v", err)
	}
	return ids
}

// freePort is a currently unused loopback TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}
