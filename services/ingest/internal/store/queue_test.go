package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// TestLaneQueueFull: a list at MaxQueueLen holds flushes back, and one
// still waiting at the deadline fails with ErrQueueFull; once a consumer
// takes messages, flushes store again. Redis out of memory (maxmemory with
// noeviction) counts as a full queue too.
func TestLaneQueueFull(t *testing.T) {
	tests := []struct {
		name   string
		extra  []string // redis.conf lines
		maxLen int64
		fill   int // messages stored before the full flush
	}{
		{name: "INGEST_MAX_QUEUE_LEN", maxLen: 10, fill: 10},
		{name: "Redis OOM", extra: []string{"maxmemory 3mb", "maxmemory-policy noeviction"}, fill: 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			master := redistest.NewRedis(t, redistest.RedisOptions{ExtraConfig: tc.extra})
			mc := master.Client()
			defer mc.Close()
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: time.Second, PoolSize: 2}, m, discard())
			defer rdb.Close()
			w := NewWriter(rdb, WriterOptions{Key: "q", MaxQueueLen: tc.maxLen, MaxBackoff: 100 * time.Millisecond, Logger: discard(), Metrics: m})
			lane := w.NewFlusher()
			defer lane.Close()
			big := make([]byte, 100<<10) // for OOM: 30 x 100 KiB fill 3 MiB
			for i := range tc.fill {
				v := fmt.Sprintf("m%d", i)
				if tc.extra != nil {
					v += string(big)
				}
				if err := lane.Push(ctx, args(v), time.Now().Add(5*time.Second)); err != nil {
					if tc.extra != nil && errors.Is(err, ErrQueueFull) {
						break // memory ran out earlier than the fill
					}
					t.Fatalf("fill %d: %v", i, err)
				}
			}
			before, err := mc.LLen(ctx, "q").Result()
			if err != nil {
				t.Fatal(err)
			}
			v := "over"
			if tc.extra != nil {
				v += string(big)
			}
			err = lane.Push(ctx, args(v), time.Now().Add(500*time.Millisecond))
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Push on a full queue: %v, want ErrQueueFull", err)
			}
			if after, _ := mc.LLen(ctx, "q").Result(); after != before {
				t.Fatalf("the refused flush changed the list: %d -> %d", before, after)
			}
			if got := testutil.ToFloat64(m.backpressure.WithLabelValues(BackpressureQueueFull)); got <= 0 {
				t.Errorf("backpressure seconds for queue_full = %v, want > 0", got)
			}
			// A consumer takes half: room again.
			if err := mc.LPopCount(ctx, "q", int(before/2)+1).Err(); err != nil {
				t.Fatal(err)
			}
			if err := lane.Push(ctx, args("after"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatalf("Push after the consumer made room: %v", err)
			}
			if last, err := mc.LIndex(ctx, "q", -1).Result(); err != nil || last != "after" {
				t.Fatalf("last element %q %v, want after", last, err)
			}
			if got := testutil.ToFloat64(m.queueLength); got <= 0 {
				t.Errorf("queue length gauge %v", got)
			}
		})
	}
}
