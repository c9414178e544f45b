package redis_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// entrypoint runs redis/entrypoint.sh with exactly env (plus PATH) and returns
// its exit code, stdout and stderr.
func entrypoint(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"entrypoint.sh"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run entrypoint.sh %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// needBinaries fails under CI and skips elsewhere when a host binary is missing.
func needBinaries(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", n, err)
			}
			t.Skipf("%s not installed: %v", n, err)
		}
	}
}

// The entrypoint refuses to start without a password and rejects malformed
// numbers before it starts anything.
func TestEntrypointRefusesBadEnvironment(t *testing.T) {
	needBinaries(t, "sh", "hostname")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"redis without password", []string{"redis"}, nil, "set REDIS_PASSWORD or REDIS_PASSWORD_FILE"},
		{"sentinel without password", []string{"sentinel"}, nil, "set REDIS_PASSWORD or REDIS_PASSWORD_FILE"},
		{"empty password file", []string{"redis"}, []string{"REDIS_PASSWORD_FILE=" + empty}, "set REDIS_PASSWORD or REDIS_PASSWORD_FILE"},
		{"missing password file", []string{"redis"}, []string{"REDIS_PASSWORD_FILE=" + filepath.Join(dir, "nope")}, "is not readable"},
		{"lag not a number", []string{"redis"}, []string{"REDIS_PASSWORD=x", "REDIS_MIN_REPLICAS_MAX_LAG=1.5"}, "REDIS_MIN_REPLICAS_MAX_LAG=1.5 is not a whole number"},
		{"sentinel wait not a number", []string{"redis"}, []string{"REDIS_PASSWORD=x", "REDIS_SENTINEL_WAIT_S=soon"}, "REDIS_SENTINEL_WAIT_S=soon"},
		{"down-after not a number", []string{"sentinel"}, []string{"REDIS_PASSWORD=x", "SENTINEL_DOWN_AFTER_MS=5s"}, "must be whole numbers (got 5s)"},
		{"redis port not a number", []string{"redis"}, []string{"REDIS_PASSWORD=x", "REDIS_PORT=63a9"}, "REDIS_PORT=63a9 is not a port number"},
		{"sentinel port not a number", []string{"sentinel"}, []string{"REDIS_PASSWORD=x", "SENTINEL_PORT=-1"}, "must be whole numbers (got -1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := entrypoint(t, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit code 0, want failure; stderr: %s", stderr)
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantErr)
			}
		})
	}
}

// `entrypoint.sh master` is the role decision a Redis node makes at start:
// the master named by most reachable Sentinels, not by the first one asked.
func TestEntrypointAsksSentinelsForMaster(t *testing.T) {
	needBinaries(t, "sh", "hostname", "timeout", "redis-cli", "redis-server", "redis-sentinel")
	const pw = "entrypoint-test-password"
	current := redistest.NewRedis(t, redistest.RedisOptions{Password: pw})
	stale := redistest.NewRedis(t, redistest.RedisOptions{Password: pw})
	sentinel := func(master string) *redistest.Sentinel {
		return redistest.NewSentinel(t, redistest.SentinelOptions{MasterAddr: master, AuthPass: pw, Password: pw})
	}
	a, b := sentinel(current.Addr), sentinel(current.Addr)
	odd := sentinel(stale.Addr) // e.g. a Sentinel that has not seen the failover yet
	dead, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "127.0.0.1:" + strconv.Itoa(dead)
	want := "127.0.0.1 " + strconv.Itoa(current.Port)

	// `master` follows most of the Sentinels that answer; `majority-master`
	// (what a stale master steps down to, and what a node without data waits
	// for) needs more than half of all the Sentinels it was given.
	tests := []struct {
		name      string
		command   string
		sentinels []string
		want      string // empty: the command fails
		stderr    string // with want empty: what the failure says
	}{
		{"all agree", "master", []string{a.Addr, b.Addr}, want, ""},
		{"majority wins over the first answer", "master", []string{odd.Addr, a.Addr, b.Addr}, want, ""},
		{"unreachable Sentinel is skipped", "master", []string{unreachable, a.Addr, odd.Addr, b.Addr}, want, ""},
		{"one reachable Sentinel decides", "master", []string{unreachable, unreachable, a.Addr}, want, ""},
		{"none reachable", "master", []string{unreachable}, "", "answered"},
		{"majority: all agree", "majority-master", []string{a.Addr, b.Addr}, want, ""},
		{"majority: two of three", "majority-master", []string{odd.Addr, a.Addr, b.Addr}, want, ""},
		{"majority: two of three answer", "majority-master", []string{unreachable, a.Addr, b.Addr}, want, ""},
		{"majority: half is not enough", "majority-master", []string{unreachable, a.Addr, odd.Addr, b.Addr}, "", "more than half"},
		{"majority: one of three answers", "majority-master", []string{unreachable, unreachable, a.Addr}, "", "more than half"},
		{"majority: none reachable", "majority-master", []string{unreachable}, "", "more than half"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := []string{"REDIS_PASSWORD=" + pw, "REDIS_SENTINELS=" + strings.Join(tc.sentinels, ",")}
			start := time.Now()
			code, stdout, stderr := entrypoint(t, env, tc.command)
			t.Logf("answered in %s", time.Since(start).Round(time.Millisecond))
			if tc.want == "" {
				if code == 0 {
					t.Fatalf("exit code 0 with output %q, want failure", stdout)
				}
				if !strings.Contains(stderr, tc.stderr) {
					t.Errorf("stderr = %q, want the no-answer message", stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit code %d; stderr: %s", code, stderr)
			}
			if got := strings.TrimSpace(stdout); got != tc.want {
				t.Errorf("master = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("wrong password gets no answer", func(t *testing.T) {
		env := []string{"REDIS_PASSWORD=wrong", "REDIS_SENTINELS=" + a.Addr}
		if code, stdout, _ := entrypoint(t, env, "master"); code == 0 {
			t.Fatalf("exit code 0 with output %q, want failure", stdout)
		}
	})
}
