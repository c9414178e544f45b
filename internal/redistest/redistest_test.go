package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond every 50 ms until it returns nil or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestRedisProcessControl(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name     string
		password string
		// stop ends the process in a way that must keep data written
		// before it (once the AOF holds it).
		stop func(*Redis) error
	}{
		{name: "kill then restart reloads AOF", password: "", stop: (*Redis).Kill},
		{name: "stop then restart reloads AOF", password: "s3cret", stop: (*Redis).Stop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRedis(t, RedisOptions{Password: tc.password})
			c := r.Client()
			defer c.Close()
			if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
				t.Fatalf("set: %v", err)
			}
			// appendfsync everysec: wait until the AOF on disk holds the write.
			waitFor(t, 10*time.Second, "AOF holds the write", func() error {
				files, _ := filepath.Glob(filepath.Join(r.Dir(), "appendonlydir", "*.incr.aof"))
				for _, f := range files {
					b, _ := os.ReadFile(f)
					if bytes.Contains(b, []byte("v1")) {
						return nil
					}
				}
				return fmt.Errorf("not in %v", files)
			})
			pid, port := r.PID(), r.Port
			if err := tc.stop(r); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if alive(pid) || r.Running() {
				t.Fatalf("process %d still alive after stop", pid)
			}
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatalf("ping succeeded on a stopped server")
			}
			if err := r.Restart(ctx); err != nil {
				t.Fatalf("restart: %v", err)
			}
			if r.Port != port {
				t.Fatalf("port changed on restart: %d -> %d", port, r.Port)
			}
			got, err := c.Get(ctx, "k").Result()
			if err != nil || got != "v1" {
				t.Fatalf("get after restart = %q, %v; want v1", got, err)
			}
		})
	}
}

func TestRedisPauseResume(t *testing.T) {
	ctx := t.Context()
	r := NewRedis(t, RedisOptions{})
	c := r.Client()
	defer c.Close()
	if err := r.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := c.Ping(pctx).Err()
	cancel()
	if err == nil {
		t.Fatalf("ping answered while paused")
	}
	if err := r.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitFor(t, 10*time.Second, "ping after resume", func() error { return c.Ping(ctx).Err() })
}

func TestHAProxyForwardsToRedis(t *testing.T) {
	ctx := t.Context()
	r := NewRedis(t, RedisOptions{})
	h := NewHAProxy(t, HAProxyOptions{Ports: 1, Config: func(p []int) string {
		return fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server r1 %s
`, p[0], r.Addr)
	}})
	c := (&Redis{Addr: h.Addr}).Client()
	defer c.Close()
	if err := c.Set(ctx, "through", "haproxy", 0).Err(); err != nil {
		t.Fatalf("set through haproxy: %v", err)
	}
	rc := r.Client()
	defer rc.Close()
	if got, err := rc.Get(ctx, "through").Result(); err != nil || got != "haproxy" {
		t.Fatalf("get on redis = %q, %v", got, err)
	}
}

func TestTopologyFailover(t *testing.T) {
	ctx := t.Context()
	top := NewTopology(t, TopologyOptions{
		Replicas:         2,
		Password:         "pw",
		SentinelPassword: "spw",
		DownAfter:        time.Second,
		FailoverTimeout:  3 * time.Second,
	})
	old, err := top.MasterRedis(ctx)
	if err != nil {
		t.Fatalf("master: %v", err)
	}
	if old != top.Redis[0] {
		t.Fatalf("initial master %s, want %s", old.Addr, top.Redis[0].Addr)
	}
	c := old.Client()
	if err := c.RPush(ctx, "q", "a", "b").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	if n, err := c.Do(ctx, "WAIT", 2, 5000).Int(); err != nil || n != 2 {
		t.Fatalf("WAIT 2 = %d, %v", n, err)
	}
	c.Close()

	oldPID := old.PID()
	if err := old.Kill(); err != nil {
		t.Fatalf("kill master: %v", err)
	}
	if alive(oldPID) {
		t.Fatalf("old master %d alive after Kill", oldPID)
	}
	var newAddr string
	waitFor(t, 30*time.Second, "sentinels promote a replica", func() error {
		a, err := top.Master(ctx)
		if err != nil {
			return err
		}
		if a == old.Addr {
			return errors.New("still the old master")
		}
		newAddr = a
		return nil
	})
	nm := top.ByAddr(newAddr)
	if nm == nil {
		t.Fatalf("new master %s unknown", newAddr)
	}
	nc := nm.Client()
	defer nc.Close()
	waitFor(t, 30*time.Second, "new master reports role master", func() error {
		role, err := nc.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("role %v", role)
		}
		return nil
	})
	got, err := nc.LRange(ctx, "q", 0, -1).Result()
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("lrange on new master = %v, %v; want [a b]", got, err)
	}

	// The old master comes back with its AOF; Sentinel turns it into a
	// replica of the new master, and the topology is whole again.
	if err := old.Restart(ctx); err != nil {
		t.Fatalf("restart old master: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := top.WaitReady(wctx); err != nil {
		t.Fatalf("topology after rejoin: %v", err)
	}
	t.Logf("old master rejoined as replica after %s", time.Since(start).Round(time.Millisecond))
	if m, _ := top.Master(ctx); m != newAddr {
		t.Fatalf("master changed again: %s, want %s", m, newAddr)
	}

	// A forced failover moves the master again, with nothing killed.
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	start = time.Now()
	forced, err := top.Failover(fctx)
	if err != nil {
		t.Fatalf("forced failover: %v", err)
	}
	if forced == newAddr {
		t.Fatalf("forced failover kept master %s", forced)
	}
	t.Logf("forced failover to %s after %s", forced, time.Since(start).Round(time.Millisecond))
	fc := top.ByAddr(forced).Client()
	defer fc.Close()
	if got, err := fc.LRange(ctx, "q", 0, -1).Result(); err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("lrange on the forced master = %v, %v", got, err)
	}
}

func TestCloseLeavesNoProcess(t *testing.T) {
	ctx := t.Context()
	top, err := StartTopology(ctx, TopologyOptions{Replicas: 1, Sentinels: 1})
	if err != nil {
		if errors.Is(err, ErrBinaryMissing) && os.Getenv("CI") == "" {
			t.Skipf("skip: %v", err)
		}
		t.Fatalf("start: %v", err)
	}
	var pids []int
	for _, r := range top.Redis {
		pids = append(pids, r.PID())
	}
	for _, s := range top.Sentinels {
		pids = append(pids, s.PID())
	}
	dirs := []string{top.Redis[0].Dir(), top.Sentinels[0].Dir()}
	// A paused process must be killed too.
	if err := top.Redis[1].Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if err := top.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, pid := range pids {
		if pid == 0 || alive(pid) {
			t.Errorf("pid %d alive after Close", pid)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("dir %s still exists after Close: %v", d, err)
		}
	}
}

// fakeTB records what the wrappers call; Fatalf and Skipf end the goroutine
// like the real ones do.
type fakeTB struct {
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper()             {}
func (f *fakeTB) Cleanup(func())      {}
func (f *fakeTB) Failed() bool        { return f.failed }
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Fatalf(s string, a ...any) {
	f.failed, f.msg = true, fmt.Sprintf(s, a...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(s string, a ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(s, a...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		wantFailed  bool
		wantSkipped bool
	}{
		{name: "CI set fails", ci: "true", wantFailed: true},
		{name: "CI unset skips", ci: "", wantSkipped: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // no redis-server here
			t.Setenv("CI", tc.ci)
			if _, err := StartRedis(t.Context(), RedisOptions{}); !errors.Is(err, ErrBinaryMissing) {
				t.Fatalf("StartRedis err = %v, want ErrBinaryMissing", err)
			}
			f := &fakeTB{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				NewRedis(f, RedisOptions{})
			}()
			<-done
			if f.failed != tc.wantFailed || f.skipped != tc.wantSkipped {
				t.Fatalf("failed=%v skipped=%v (%s), want failed=%v skipped=%v", f.failed, f.skipped, f.msg, tc.wantFailed, tc.wantSkipped)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := NewCommand(t, CommandOptions{
		Name:  "plain redis-server",
		Path:  "sh",
		Args:  []string{"-c", fmt.Sprintf("echo marker=$SLUICE_TEST_MARKER; exec redis-server --port %d --bind 127.0.0.1 --save ''", port)},
		Env:   []string{"SLUICE_TEST_MARKER=1"},
		Ready: TCPReady(addr),
	})
	pid := c.PID()
	if !strings.Contains(c.Logs(), "marker=1") {
		t.Fatalf("the program did not see the extra variable: %s", c.Logs())
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if c.PID() == pid || !alive(c.PID()) {
		t.Fatalf("restart kept pid %d or is dead", pid)
	}
	if _, err := StartCommand(t.Context(), CommandOptions{Name: "nothing", Path: "/nonexistent/bin"}); !errors.Is(err, ErrBinaryMissing) {
		t.Fatalf("missing path: %v", err)
	}
}
