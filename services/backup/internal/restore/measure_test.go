package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// TestMeasure1M measures a snapshot, its verification and a restore of a
// queue of 1M messages of 100 bytes on local redis-server processes (the
// figures in BACKUP.md). It only logs times; set SLUICE_MEASURE_1M=1 to run it.
func TestMeasure1M(t *testing.T) {
	if os.Getenv("SLUICE_MEASURE_1M") == "" {
		t.Skip("set SLUICE_MEASURE_1M=1 to measure (about 30 s, 1 GB of RAM)")
	}
	ctx := context.Background()
	top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 2, Password: password,
		RedisConfig: []string{"repl-diskless-sync yes", "repl-diskless-sync-delay 0"}})
	mc := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: password})
	defer mc.Close()
	const n, size = 1_000_000, 100
	t0 := time.Now()
	for i := 0; i < n; i += 1000 {
		args := make([]any, 0, 1000)
		for j := i; j < i+1000; j++ {
			args = append(args, payload(j, size))
		}
		if err := mc.RPush(ctx, key, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mc.Wait(ctx, 2, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	mem, _ := mc.MemoryUsage(ctx, key, 0).Result()
	t.Logf("measure: %d messages of %d B loaded in %s; MEMORY USAGE %s = %d B", n, size, time.Since(t0).Round(time.Millisecond), key, mem)

	dir := t.TempDir()
	s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice", RedisPassword: password}})
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		t0 = time.Now()
		m, err := s.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("measure: snapshot %d: %d B (%.1f MiB) in %s wall (%.3f s in metadata), %d elements, diskless=%v",
			round, m.SizeBytes, float64(m.SizeBytes)/(1<<20), time.Since(t0).Round(time.Millisecond), m.DurationSeconds, m.KeyLength, m.Diskless)
		if m.KeyLength != n {
			t.Fatalf("snapshot holds %d elements, want %d", m.KeyLength, n)
		}
		if round == 3 {
			t0 = time.Now()
			if _, err := snapshot.Verify(filepath.Join(dir, m.File), rdb.Options{}); err != nil {
				t.Fatal(err)
			}
			t.Logf("measure: verify (sha256 + full parse + CRC-64): %s", time.Since(t0).Round(time.Millisecond))
			if err := mc.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			t0 = time.Now()
			res, err := Run(ctx, filepath.Join(dir, m.File), Options{Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice",
				RedisPassword: password}, Key: key, Confirm: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("measure: restore (verify, batched RPUSH, replicas and Sentinels checked): %s, %d elements on master and %d replicas",
				time.Since(t0).Round(time.Millisecond), res.FinalLength, len(res.Replicas))
			if res.FinalLength != n {
				t.Fatalf("restored %d elements, want %d", res.FinalLength, n)
			}
		}
	}
}

// payload is size bytes of poorly compressible text for message i.
func payload(i, size int) string {
	b := fmt.Appendf(nil, "m%09d-", i)
	x := uint64(i)*0x9e3779b97f4a7c15 + 1
	for len(b) < size {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = fmt.Appendf(b, "%016x", x)
	}
	return string(b[:size])
}
