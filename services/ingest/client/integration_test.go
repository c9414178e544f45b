package client

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// ingestBinary builds the ingest binary once per test run.
var ingestBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "client-it-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ingest")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-ingest/sluice/services/ingest").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ingest: %w: %s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := ingestBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// startIngest runs the real ingest binary against redisAddr.
func startIngest(t *testing.T, redisAddr string, extra ...string) (*redistest.Command, string) {
	t.Helper()
	bin, err := ingestBinary()
	if err != nil {
		t.Fatal(err)
	}
	dp, err1 := redistest.FreePort()
	ap, err2 := redistest.FreePort()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	data, admin := fmt.Sprintf("127.0.0.1:%d", dp), fmt.Sprintf("127.0.0.1:%d", ap)
	env := append([]string{
		"INGEST_LISTEN_ADDR=" + data, "INGEST_ADMIN_ADDR=" + admin, "INGEST_REDIS_ADDR=" + redisAddr,
		"INGEST_HTTP_ADDR=off", "INGEST_NOACK_ADDR=off",
		"INGEST_DRAIN_DELAY=0s", "INGEST_REDIS_RETRY_TIMEOUT=60s",
	}, extra...)
	c := redistest.NewCommand(t, redistest.CommandOptions{
		Name: "ingest", Path: bin, Env: env, Ready: redistest.HTTPReady("http://" + admin + "/ready"),
	})
	return c, data
}

func itMsg(client, i int) []byte { return []byte("k" + strconv.Itoa(client) + "-" + strconv.Itoa(i)) }

// checkList verifies that LRANGE holds every message 1..n of each client
// (first copies in order) and returns the number of duplicates.
func checkList(t *testing.T, r *redistest.Redis, clients, n int) int {
	t.Helper()
	rc := r.Client()
	defer rc.Close()
	vals, err := rc.LRange(context.Background(), "data_queue", 0, -1).Result()
	if err != nil {
		t.Fatalf("lrange: %v", err)
	}
	next := make([]int, clients)
	seen := map[string]bool{}
	dups := 0
	for _, v := range vals {
		if seen[v] {
			dups++
			continue
		}
		seen[v] = true
		var c, i int
		if _, err := fmt.Sscanf(strings.ReplaceAll(v, "-", " "), "k%d %d", &c, &i); err != nil || c < 0 || c >= clients {
			t.Fatalf("unexpected value %q", v)
		}
		if i != next[c]+1 {
			t.Fatalf("client %d: first copy of message %d follows %d", c, i, next[c])
		}
		next[c] = i
	}
	for c, got := range next {
		if got != n {
			t.Fatalf("client %d: %d of %d messages stored", c, got, n)
		}
	}
	return dups
}

// TestAgainstIngest streams through the real ingest binary and real Redis
// while a fault hits the middle of the stream; every message must end up
// acked and stored in order.
func TestAgainstIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ingest binary")
	}
	tests := []struct {
		name string
		// fault runs in the middle of the stream (from a sender goroutine).
		fault func(ctx context.Context, r *redistest.Redis, ing *redistest.Command) error
	}{
		{name: "no fault", fault: func(context.Context, *redistest.Redis, *redistest.Command) error { return nil }},
		{name: "ingest killed and restarted", fault: func(ctx context.Context, _ *redistest.Redis, ing *redistest.Command) error {
			if err := ing.Kill(); err != nil {
				return err
			}
			return ing.Restart(ctx)
		}},
		{name: "ingest drained with SIGTERM and restarted", fault: func(ctx context.Context, _ *redistest.Redis, ing *redistest.Command) error {
			return ing.Restart(ctx) // Restart = SIGTERM, wait for the drain, start
		}},
		{name: "redis killed and restarted", fault: func(ctx context.Context, r *redistest.Redis, _ *redistest.Command) error {
			if err := r.Kill(); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond) // the stream runs into a dead Redis
			return r.Restart(ctx)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.NewRedis(t, redistest.RedisOptions{})
			ing, addr := startIngest(t, r.Addr)
			const clients, n = 3, 30_000
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cs := make([]*Client, clients)
			for i := range cs {
				c, err := Dial(ctx, Config{Addr: addr, MaxUnacked: 2000, BackoffMax: 200 * time.Millisecond, ReconnectTimeout: 60 * time.Second})
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				cs[i] = c
			}
			var wg sync.WaitGroup
			errs := make([]error, clients)
			for ci, c := range cs {
				wg.Go(func() {
					for i := 1; i <= n; i++ {
						if _, err := c.Send(ctx, itMsg(ci, i)); err != nil {
							errs[ci] = err
							return
						}
						if i == n/2 && ci == 0 {
							if err := tc.fault(ctx, r, ing); err != nil {
								errs[ci] = fmt.Errorf("fault: %w", err)
								return
							}
						}
					}
					errs[ci] = c.WaitAcked(ctx)
				})
			}
			wg.Wait()
			for ci, err := range errs {
				if err != nil {
					t.Fatalf("client %d: %v (status %+v)", ci, err, cs[ci].Status())
				}
			}
			var connects, resent uint64
			for _, c := range cs {
				st := c.Close()
				if st.Acked != n || st.Outcome(n) != Acked {
					t.Fatalf("status %+v, want %d acked", st, n)
				}
				connects += st.Connects
				resent += st.Resent
			}
			dups := checkList(t, r, clients, n)
			t.Logf("connections %d, resent %d, duplicates in the list %d", connects, resent, dups)
		})
	}
}
