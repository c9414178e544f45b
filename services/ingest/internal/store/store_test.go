package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func args(vals ...string) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		a := Arg(v)
		out[i] = &a
	}
	return out
}

func waitOnline(t *testing.T, master *redistest.Redis, replicas int) {
	t.Helper()
	c := master.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Count(info, "state=online") == replicas {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("replicas not online: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPush covers the RPUSH (+WAIT) pipeline and the ROLE check on real
// servers: a master with one replica.
func TestPush(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{Password: "pw"})
	replica := redistest.NewRedis(t, redistest.RedisOptions{Password: "pw", ReplicaOf: master.Addr})
	waitOnline(t, master, 1)

	tests := []struct {
		name        string
		addr        string
		minReplicas int
		wantErr     error
		wantRole    float64 // role rejections counted
	}{
		{name: "master, no WAIT", addr: master.Addr},
		{name: "master, WAIT 1", addr: master.Addr, minReplicas: 1},
		{name: "master, WAIT 2 of 1", addr: master.Addr, minReplicas: 2, wantErr: ErrNotReplicated},
		{name: "replica is rejected by ROLE", addr: replica.Addr, wantErr: ErrUnavailable, wantRole: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: tc.addr, RedisPassword: "pw"}, Timeout: time.Second, WaitTimeout: 100 * time.Millisecond, PoolSize: 2}, m, discard())
			defer rdb.Close()
			w := NewWriter(rdb, WriterOptions{Key: "k-" + tc.name, MinReplicas: tc.minReplicas, WaitTimeout: 100 * time.Millisecond, Logger: discard(), Metrics: m})
			lane := w.NewFlusher()
			defer lane.Close()
			err := lane.Push(context.Background(), args("a", "b", "c"), time.Now().Add(700*time.Millisecond))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Push: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == ErrUnavailable && !errors.Is(err, redisconn.ErrNotMaster) {
				t.Fatalf("Push: %v, want it to wrap redisconn.ErrNotMaster", err)
			}
			if got := counterValue(t, m.roleRejections); got < tc.wantRole || (tc.wantRole == 0 && got != 0) {
				t.Fatalf("role rejections %v, want %v", got, tc.wantRole)
			}
			mc := master.Client()
			defer mc.Close()
			vals, err := mc.LRange(context.Background(), "k-"+tc.name, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			want := "a,b,c"
			if tc.wantErr == ErrUnavailable {
				want = ""
			}
			if got := strings.Join(vals, ","); got != want && !(tc.wantErr == ErrNotReplicated && got == want) {
				t.Fatalf("stored %q, want %q", got, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := redisconn.CheckMaster(ctx, rdb); (err != nil) != (tc.addr == replica.Addr) {
				t.Fatalf("CheckMaster on %s: %v", tc.addr, err)
			}
		})
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
