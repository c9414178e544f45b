//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/client"
)

// TestStatusScreen runs `status -watch` (the sluice/status image that `make
// status` runs) on the stack's network in a real terminal (a tmux pane of
// 160x50) and reads the screen: the master, both replicas, the Sentinels
// agreeing, 3/3 ingest ready and the queue length; then Ctrl-C ends it.
// The harness has no backup service, so the backup row is turned off.
func TestStatusScreen(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is required: %v", err)
	}
	s := StartStack(t)
	img := s.Containers.Image("status")
	if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
		t.Fatalf("image %s not found: run `make images`", img)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const n = 100
	c, err := client.Dial(ctx, client.Config{Addr: haproxyDataAddr(t, s)})
	if err != nil {
		t.Fatalf("dial haproxy: %v", err)
	}
	for i := range n {
		if _, err := c.Send(ctx, []byte(fmt.Sprintf("status-%03d", i))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		t.Fatalf("acks: %v", err)
	}
	c.Close()
	master, err := s.Redis.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Own tmux server (-L) and a named container: the cleanup removes exactly these.
	sock := fmt.Sprintf("sluice-e2e-status-%d", os.Getpid())
	name := s.Containers.ContainerName("status")
	tmux := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		_, _ = tmux("kill-server")
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	cmd := strings.Join([]string{
		"docker run --rm -it --name", name, "--network", s.Containers.Network(),
		"-e STATUS_REDIS_USERNAME=status -e STATUS_REDIS_PASSWORD=" + s.RedisPassword,
		"-e STATUS_SENTINEL_PASSWORD=" + s.RedisPassword,
		"-e STATUS_HAPROXY_STATS_USER=" + s.StatsUser,
		"-e STATUS_HAPROXY_STATS_PASSWORD=" + s.StatsPassword,
		"-e STATUS_BACKUP_METRICS_URL=off",
		img, "-watch",
	}, " ")
	if out, err := tmux("new-session", "-d", "-x", "160", "-y", "50", "-s", "status", cmd); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}

	masterAddr := master + ":" + redisPorts[master]
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^REDIS +master +` + masterAddr + ` `),
		regexp.MustCompile(`(?m)^ +replica +redis-\d:63(79|80|81) +online `),
		regexp.MustCompile(`3/3 agree master ` + masterAddr + `, quorum 2`),
		regexp.MustCompile(`CKQUORUM OK 3 usable Sentinels`),
		regexp.MustCompile(`(?m)^INGEST +3/3 ready`),
		regexp.MustCompile(`(?m)^HAPROXY +ingest +UP +3/3 UP`),
		regexp.MustCompile(fmt.Sprintf(`(?m)^QUEUE +`+QueueKey+` length %d on %s`, n, masterAddr)),
		regexp.MustCompile(`(?m)^ACKS +[0-9.]+ msg/s acked`),
	}
	// Bounded: the first screen comes after one sample (1 s); Sentinels may
	// take a few refreshes to list both replicas.
	var screen string
	var missing []string
	for try := 0; try < 60; try++ {
		out, err := tmux("capture-pane", "-p", "-t", "status")
		if err != nil {
			t.Fatalf("capture-pane: %v: %s (the command may have exited)", err, out)
		}
		screen = out
		missing = missing[:0]
		for _, re := range want {
			if !re.MatchString(screen) {
				missing = append(missing, re.String())
			}
		}
		replicas := regexp.MustCompile(`(?m)^ +replica +redis-\d:63(79|80|81) +online `).FindAllString(screen, -1)
		if len(missing) == 0 && len(replicas) == 2 {
			break
		}
		if len(replicas) != 2 {
			missing = append(missing, fmt.Sprintf("2 online replicas (have %d)", len(replicas)))
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		t.Fatalf("screen lacks %q:\n%s", missing, screen)
	}
	if strings.Contains(screen, "PROBLEM") {
		t.Errorf("healthy stack shows problems:\n%s", screen)
	}
	t.Logf("screen:\n%s", screen)

	// Ctrl-C ends -watch (the session closes with its only command).
	if out, err := tmux("send-keys", "-t", "status", "C-c"); err != nil {
		t.Fatalf("send-keys: %v: %s", err, out)
	}
	for try := 0; ; try++ {
		if _, err := tmux("has-session", "-t", "status"); err != nil {
			break
		}
		if try == 50 {
			t.Fatal("status -watch still runs 10 s after Ctrl-C")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
