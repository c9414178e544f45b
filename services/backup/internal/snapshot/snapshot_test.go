package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
)

const (
	testKey  = "data_queue"
	password = "test-secret"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// fill pushes n 100-byte messages "m<index>..." onto the queue of the master
// and waits until every replica has them.
func fill(t *testing.T, top *redistest.Topology, n int) {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: password})
	defer c.Close()
	const batch = 1000
	for i := 0; i < n; i += batch {
		args := make([]any, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			args = append(args, message(j))
		}
		if err := c.RPush(ctx, testKey, args...).Err(); err != nil {
			t.Fatalf("RPUSH: %v", err)
		}
	}
	if got, err := c.Wait(ctx, len(top.Redis)-1, 30*time.Second).Result(); err != nil || got != int64(len(top.Redis)-1) {
		t.Fatalf("WAIT: %d replicas, %v", got, err)
	}
}

// message i is 100 bytes of poorly compressible text, like real payloads.
func message(i int) string {
	b := fmt.Appendf(nil, "m%09d-", i)
	x := uint64(i)*0x9e3779b97f4a7c15 + 1
	for len(b) < 100 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = fmt.Appendf(b, "%016x", x)
	}
	return string(b[:100])
}

func topology(t *testing.T, replicas int, extra ...string) *redistest.Topology {
	return redistest.NewTopology(t, redistest.TopologyOptions{
		Replicas: replicas, Password: password, RedisConfig: extra,
	})
}

func newSnapshotter(t *testing.T, top *redistest.Topology, dir string, mod func(*Options)) *Snapshotter {
	t.Helper()
	opts := Options{
		Dir: dir, Key: testKey, Redis: redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: "sluice",
			RedisPassword: password}, Backoff: 200 * time.Millisecond, Logger: testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dirFiles lists the names in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkOnlySnapshot asserts dir holds exactly m's snapshot and sidecars, and
// that the snapshot verifies and holds n messages in order.
func checkOnlySnapshot(t *testing.T, dir string, m *Meta, n int) {
	t.Helper()
	want := map[string]bool{m.File: true, m.File + ".sha256": true, m.File + ".json": true}
	files := dirFiles(t, dir)
	if len(files) != len(want) {
		t.Fatalf("backup dir holds %v, want only %s and its sidecars", files, m.File)
	}
	for _, f := range files {
		if !want[f] {
			t.Fatalf("unexpected file %s in backup dir (%v)", f, files)
		}
	}
	var payload []byte
	v, err := Verify(filepath.Join(dir, m.File), rdb.Options{
		Capture: func(db int, name []byte) bool { return db == 0 && string(name) == testKey },
		OnKey: func(k rdb.Key) error {
			if k.Payload != nil {
				payload = k.Payload
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.Meta.KeyLength != int64(n) {
		t.Fatalf("metadata key_length %d, want %d", v.Meta.KeyLength, n)
	}
	i := 0
	_, err = rdb.ListElements(payload, func(b []byte) {
		if i < n && string(b) != message(i) {
			t.Fatalf("element %d = %q, want %q", i, b, message(i))
		}
		i++
	})
	if err != nil || i != n {
		t.Fatalf("ListElements: %d elements, %v; want %d", i, err, n)
	}
}

func TestSnapshotFromReplica(t *testing.T) {
	tests := []struct {
		name     string
		config   []string
		diskless bool
	}{
		{"disk", []string{"repl-diskless-sync no"}, false},
		{"diskless", []string{"repl-diskless-sync yes", "repl-diskless-sync-delay 0"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := topology(t, 2, tc.config...)
			const n = 20000
			fill(t, top, n)
			dir := t.TempDir()
			s := newSnapshotter(t, top, dir, nil)
			m, err := s.Take(context.Background())
			if err != nil {
				t.Fatalf("Take: %v", err)
			}
			t.Logf("snapshot %s: %d bytes in %.3fs from %s, offset %d", m.File, m.SizeBytes, m.DurationSeconds, m.Source, m.ReplOffset)
			if m.Source == top.Redis[0].Addr || m.SourceRole != "replica" {
				t.Errorf("snapshot taken from %s (%s); master is %s", m.Source, m.SourceRole, top.Redis[0].Addr)
			}
			if m.Diskless != tc.diskless {
				t.Errorf("diskless = %v, want %v", m.Diskless, tc.diskless)
			}
			if m.MasterAddr != top.Redis[0].Addr || m.MasterRunID == "" || m.ReplID == "" || m.ReplOffset <= 0 {
				t.Errorf("metadata master %s run id %q repl %q offset %d", m.MasterAddr, m.MasterRunID, m.ReplID, m.ReplOffset)
			}
			c := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: password})
			defer c.Close()
			info, err := c.Info(context.Background(), "replication").Result()
			if err != nil {
				t.Fatal(err)
			}
			if want := "master_replid:" + m.ReplID; !strings.Contains(info, want) {
				t.Errorf("master INFO lacks %q:\n%s", want, info)
			}
			if m.Attempts != 1 {
				t.Errorf("attempts = %d, want 1", m.Attempts)
			}
			checkOnlySnapshot(t, dir, m, n)
		})
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// TestNoReplicaNoSnapshot: without a replica the master is not used.
func TestNoReplicaNoSnapshot(t *testing.T) {
	top := topology(t, 0)
	fill(t, top, 10)
	dir := t.TempDir()
	s := newSnapshotter(t, top, dir, func(o *Options) { o.Attempts = 2 })
	_, err := s.Take(context.Background())
	if !errors.Is(err, ErrNoReplica) {
		t.Fatalf("Take without replicas: err = %v, want ErrNoReplica", err)
	}
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Fatalf("failed snapshot left %v", files)
	}
}

// TestCorruptSnapshotRefused damages a good snapshot in several ways; Verify
// must refuse every one.
func TestCorruptSnapshotRefused(t *testing.T) {
	top := topology(t, 1)
	fill(t, top, 5000)
	dir := t.TempDir()
	m, err := newSnapshotter(t, top, dir, nil).Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, m.File)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	sidecar := func(p, ext string) []byte {
		b, err := os.ReadFile(good + ext)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		damage func(path string) // path is a copy of the snapshot with sidecars
		want   error
	}{
		{"flipped byte", func(p string) {
			b := append([]byte(nil), data...)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, ErrMismatch},
		{"flipped byte, sha256 recomputed", func(p string) {
			b := append([]byte(nil), data...)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
			res, err := checkRDBWith(p, testKey, rdb.Options{})
			if err == nil {
				t.Fatalf("damaged copy parses: %+v", res)
			}
			// write a matching sha256 anyway: the CRC-64 must still catch it
			os.WriteFile(p+".sha256", []byte(fmt.Sprintf("%x  x\n", sha256Of(b))), 0o644)
		}, rdb.ErrCorrupt},
		{"truncated", func(p string) { os.WriteFile(p, data[:len(data)-100], 0o644) }, ErrMismatch},
		{"truncated, sha256 recomputed", func(p string) {
			b := data[:len(data)-100]
			os.WriteFile(p, b, 0o644)
			os.WriteFile(p+".sha256", []byte(fmt.Sprintf("%x  x\n", sha256Of(b))), 0o644)
		}, rdb.ErrCorrupt},
		{"wrong sha256 file", func(p string) {
			os.WriteFile(p+".sha256", []byte("0000000000000000000000000000000000000000000000000000000000000000  x\n"), 0o644)
		}, ErrMismatch},
		{"missing sha256 file", func(p string) { os.Remove(p + ".sha256") }, os.ErrNotExist},
		{"missing metadata", func(p string) { os.Remove(p + ".json") }, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cdir := t.TempDir()
			p := filepath.Join(cdir, m.File)
			for ext, b := range map[string][]byte{"": data, ".sha256": sidecar(good, ".sha256"), ".json": sidecar(good, ".json")} {
				if err := os.WriteFile(p+ext, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Verify(p, rdb.Options{}); err != nil {
				t.Fatalf("intact copy does not verify: %v", err)
			}
			tc.damage(p)
			_, err := Verify(p, rdb.Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSourceDiesMidSnapshot kills the replica while its RDB is streaming:
// the try fails, the temp file goes, and the next try uses the other replica.
// Also a Sentinel failover started mid-transfer: the result is a complete,
// verified snapshot (from the same try or a retry), never a truncated one.
func TestSourceDiesMidSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(t *testing.T, top *redistest.Topology, source string)
		retry     bool // the first try must fail
	}{
		{"replica killed", func(t *testing.T, top *redistest.Topology, source string) {
			r := top.ByAddr(source)
			if r == nil {
				t.Errorf("source %s is not in the topology", source)
				return
			}
			if err := r.Kill(); err != nil {
				t.Errorf("kill %s: %v", source, err)
			}
		}, true},
		{"sentinel failover", func(t *testing.T, top *redistest.Topology, source string) {
			sc := redis.NewSentinelClient(&redis.Options{Addr: top.SentinelAddrs()[0]})
			defer sc.Close()
			if err := sc.Failover(context.Background(), "sluice").Err(); err != nil {
				t.Errorf("SENTINEL FAILOVER: %v", err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// 200k messages, about 17 MB of RDB: far more than socket buffers
			// hold, so a dead source really cuts the stream.
			top := topology(t, 2, "repl-diskless-sync yes", "repl-diskless-sync-delay 0")
			const n = 200000
			fill(t, top, n)
			dir := t.TempDir()
			var once sync.Once
			var first string
			s := newSnapshotter(t, top, dir, func(o *Options) {
				o.Progress = func(src string, written int64) {
					once.Do(func() {
						first = src
						t.Logf("interrupting %s after %d bytes", src, written)
						tc.interrupt(t, top, src)
					})
				}
			})
			m, err := s.Take(context.Background())
			if err != nil {
				t.Fatalf("Take: %v", err)
			}
			t.Logf("snapshot after %d attempts from %s (first try %s), %d bytes", m.Attempts, m.Source, first, m.SizeBytes)
			if tc.retry && (m.Attempts < 2 || m.Source == first) {
				t.Fatalf("attempts %d from %s; want a retry on another replica than %s", m.Attempts, m.Source, first)
			}
			if master, err := top.Master(context.Background()); err == nil && master == m.Source && m.Attempts > 1 {
				t.Fatalf("retry took the snapshot from the master %s", master)
			}
			checkOnlySnapshot(t, dir, m, n)
		})
	}
}
