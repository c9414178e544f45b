package client

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ingesttest.Remove()
	os.Exit(code)
}

// startIngest runs the real ingest binary against redisAddr (TCP only).
func startIngest(t *testing.T, redisAddr string) (*ingesttest.Ingest, string) {
	t.Helper()
	in := ingesttest.Start(t, redisAddr, ingesttest.WithOff(),
		ingesttest.WithEnv("INGEST_DRAIN_DELAY", "0s"), ingesttest.WithEnv("INGEST_REDIS_RETRY_TIMEOUT", "60s"))
	return in, in.DataAddr()
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
		fault func(ctx context.Context, r *redistest.Redis, ing *ingesttest.Ingest) error
	}{
		{name: "no fault", fault: func(context.Context, *redistest.Redis, *ingesttest.Ingest) error { return nil }},
		{name: "ingest killed and restarted", fault: func(ctx context.Context, _ *redistest.Redis, ing *ingesttest.Ingest) error {
			if err := ing.Kill(); err != nil {
				return err
			}
			return ing.Restart(ctx)
		}},
		{name: "ingest drained with SIGTERM and restarted", fault: func(ctx context.Context, _ *redistest.Redis, ing *ingesttest.Ingest) error {
			return ing.Restart(ctx) // Restart = SIGTERM, wait for the drain, start
		}},
		{name: "redis killed and restarted", fault: func(ctx context.Context, r *redistest.Redis, _ *ingesttest.Ingest) error {
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
