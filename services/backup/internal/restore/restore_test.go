package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

const (
	key      = "data_queue"
	password = "restore-secret"
)

func msg(prefix string, i int) string { return fmt.Sprintf("%s-%08d-%080d", prefix, i, i) }

func push(t *testing.T, c *redis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		var args []any
		for j := i; j < min(i+1000, n); j++ {
			args = append(args, msg(prefix, j))
		}
		if err := c.RPush(ctx, key, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRestoreIntoSentinelTopology(t *testing.T) {
	tests := []struct {
		name    string
		replace bool
	}{
		{"merge keeps messages acked after the loss", false},
		{"replace discards them", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 2, Password: password,
				RedisConfig: []string{"repl-diskless-sync-delay 0"}})
			mc := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: password})
			defer mc.Close()
			const before, after = 30000, 500
			push(t, mc, "before", before)
			if err := mc.Set(ctx, "other", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := mc.Wait(ctx, 2, 10*time.Second).Err(); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice", RedisPassword: password}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// the disaster: everything gone; then ingest acks new messages
			if err := mc.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			push(t, mc, "after", after)

			opts := Options{Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice", RedisPassword: password},
				Key: key, Replace: tc.replace, Timeout: 30 * time.Second}
			var out bytes.Buffer
			opts.Out = &out
			if _, err := Run(ctx, filepath.Join(dir, m.File), opts); !errors.Is(err, ErrNotConfirmed) {
				t.Fatalf("unconfirmed Run: err = %v, want ErrNotConfirmed", err)
			}
			t.Logf("plan:\n%s", out.String())
			if !bytes.Contains(out.Bytes(), []byte("WILL OVERWRITE")) {
				t.Errorf("the plan does not say what is overwritten:\n%s", out.String())
			}
			if n, _ := mc.LLen(ctx, key).Result(); n != after {
				t.Fatalf("unconfirmed Run changed the queue: %d elements, want %d", n, after)
			}

			out.Reset()
			opts.Confirm = true
			res, err := Run(ctx, filepath.Join(dir, m.File), opts)
			t.Logf("restore output:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := make([]string, 0, before+after)
			for i := range before {
				want = append(want, msg("before", i))
			}
			if !tc.replace {
				for i := range after {
					want = append(want, msg("after", i))
				}
			}
			if res.FinalLength != int64(len(want)) || len(res.Replicas) != 2 {
				t.Fatalf("result %+v, want final length %d and 2 replicas", res, len(want))
			}
			for _, r := range top.Redis {
				c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password})
				got, err := c.LRange(ctx, key, 0, -1).Result()
				other, _ := c.Get(ctx, "other").Result()
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s holds %d elements, want %d", r.Addr, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s element %d = %q, want %q", r.Addr, i, got[i], want[i])
					}
				}
				if other != "v" {
					t.Errorf("%s: key other = %q, want v", r.Addr, other)
				}
			}
		})
	}
}

func TestRestoreRefusesCorruptBackup(t *testing.T) {
	ctx := context.Background()
	top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 1, Password: password,
		RedisConfig: []string{"repl-diskless-sync-delay 0"}})
	mc := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: password})
	defer mc.Close()
	push(t, mc, "x", 2000)
	dir := t.TempDir()
	s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice", RedisPassword: password}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, m.File)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mc.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, p, Options{Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice", RedisPassword: password}, Key: key, Confirm: true})
	if !errors.Is(err, snapshot.ErrMismatch) {
		t.Fatalf("Run on a damaged file: err = %v, want ErrMismatch", err)
	}
	if n, _ := mc.Exists(ctx, key).Result(); n != 0 {
		t.Fatalf("a refused restore wrote %s", key)
	}
}
