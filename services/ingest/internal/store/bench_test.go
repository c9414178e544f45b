package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// BenchmarkLanePush flushes b.N messages of 100 bytes in batches to a real
// redis-server (no replica, no WAIT): one Push per batch. allocs/op is per
// message; msgs/s is reported.
func BenchmarkLanePush(b *testing.B) {
	master := redistest.NewRedis(b, redistest.RedisOptions{})
	mc := master.Client()
	defer mc.Close()
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			m := NewMetrics(prometheus.NewRegistry())
			rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: 5 * time.Second, PoolSize: 2}, m, discard())
			defer rdb.Close()
			w := NewWriter(rdb, WriterOptions{Key: "bench", Logger: discard(), Metrics: m})
			lane := w.NewFlusher()
			defer lane.Close()
			frames := make([]Arg, size)
			vals := make([]any, size)
			for i := range frames {
				frames[i] = make(Arg, 100)
				for j := range frames[i] {
					frames[i][j] = 'a' + byte((i+j)%26)
				}
				vals[i] = &frames[i]
			}
			ctx := context.Background()
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				n := min(size, b.N-done)
				if err := lane.Push(ctx, vals[:n], time.Now().Add(10*time.Second)); err != nil {
					b.Fatal(err)
				}
				if done%(256*size) == 0 {
					b.StopTimer()
					if err := mc.Del(ctx, "bench").Err(); err != nil { // bound the server's memory
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
