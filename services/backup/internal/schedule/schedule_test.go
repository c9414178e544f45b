package schedule

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
	"github.com/sluice-ingest/sluice/services/backup/internal/retention"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newSched(t *testing.T, addr, dir, copyDir string, clk *clock, reg prometheus.Registerer) *Scheduler {
	t.Helper()
	snap, err := snapshot.New(snapshot.Options{Dir: dir, Key: "data_queue", Redis: redisconn.Config{RedisAddr: addr}, Attempts: 1, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return New(snap, retention.Policy{KeepLast: 2}, dir, copyDir, time.Minute, NewMetrics(reg), slog.New(slog.DiscardHandler), clk.now)
}

// TestReadinessFollowsLastSuccess: ready after start and after a success,
// not ready once the last success is more than 2x the interval old.
func TestReadinessFollowsLastSuccess(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{ExtraConfig: []string{"repl-diskless-sync-delay 0"}})
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	s := newSched(t, r.Addr, t.TempDir(), "", clk, reg)
	steps := []struct {
		name    string
		do      func()
		ready   bool
		success float64
		fails   float64
	}{
		{"fresh start", func() {}, true, 0, 0},
		{"2x interval without success", func() { clk.advance(2*time.Minute + time.Second) }, false, 0, 0},
		{"snapshot succeeds", func() {
			if _, err := s.TakeNow(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, true, 1, 0},
		{"1.5x interval later", func() { clk.advance(90 * time.Second) }, true, 1, 0},
		{"snapshot fails (server gone)", func() {
			if err := r.Kill(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TakeNow(context.Background()); err == nil {
				t.Fatal("TakeNow succeeded with the server killed")
			}
		}, true, 1, 1},
		{"past 2x interval", func() { clk.advance(31 * time.Second) }, false, 1, 1},
	}
	for _, st := range steps {
		st.do()
		err := s.Ready()
		if (err == nil) != st.ready {
			t.Fatalf("%s: Ready() = %v, want ready=%v", st.name, err, st.ready)
		}
		if err != nil && !strings.Contains(err.Error(), "BACKUP_INTERVAL") {
			t.Errorf("%s: readiness error does not name BACKUP_INTERVAL: %v", st.name, err)
		}
		if got := value(t, s.metrics.successes); got != st.success {
			t.Errorf("%s: successes %v, want %v", st.name, got, st.success)
		}
		if got := value(t, s.metrics.failures); got != st.fails {
			t.Errorf("%s: failures %v, want %v", st.name, got, st.fails)
		}
	}
	if got := value(t, s.metrics.lastSuccess); got != float64(time.Date(2026, 1, 1, 0, 2, 1, 0, time.UTC).Unix()) {
		t.Errorf("last success timestamp %v", got)
	}
}

func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestCopyToSecondDestination: each snapshot lands verified in BACKUP_COPY_DIR
// too, with retention applied there; a copy that cannot be made is counted
// and does not fail the snapshot.
func TestCopyToSecondDestination(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{ExtraConfig: []string{"repl-diskless-sync-delay 0"}})
	if err := r.Client().RPush(context.Background(), "data_queue", "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir, copyDir := t.TempDir(), filepath.Join(t.TempDir(), "second")
	s := newSched(t, r.Addr, dir, copyDir, clk, prometheus.NewRegistry())
	var names []string
	for range 3 {
		clk.advance(time.Minute)
		m, err := s.TakeNow(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.File)
		if _, err := snapshot.Verify(filepath.Join(copyDir, m.File), rdb.Options{}); err != nil {
			t.Fatalf("copy of %s: %v", m.File, err)
		}
	}
	// KeepLast 2 applies to the copies too.
	if _, err := os.Stat(filepath.Join(copyDir, names[0])); !os.IsNotExist(err) {
		t.Fatalf("oldest copy %s still there (err %v)", names[0], err)
	}
	if got := value(t, s.metrics.copyFails); got != 0 {
		t.Fatalf("copy failures %v", got)
	}
	// An unusable destination: a file where the directory should be.
	if err := os.RemoveAll(copyDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyDir, []byte("not a dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	if _, err := s.TakeNow(context.Background()); err != nil {
		t.Fatalf("snapshot failed because its copy failed: %v", err)
	}
	if got := value(t, s.metrics.copyFails); got != 1 {
		t.Fatalf("copy failures %v, want 1", got)
	}
}

// TestMetricsExported: every metric carries the sluice_backup_ prefix and is
// exported from the start, so that rate() and absent() work before the first
// snapshot.
func TestMetricsExported(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	tests := []string{
		"sluice_backup_last_success_timestamp_seconds",
		"sluice_backup_last_duration_seconds",
		"sluice_backup_last_size_bytes",
		"sluice_backup_last_key_length",
		"sluice_backup_snapshots_total",
		"sluice_backup_failures_total",
		"sluice_backup_copy_failures_total",
		"sluice_backup_retention_removed_total",
	}
	for _, name := range tests {
		v, ok := got[name]
		if !ok || v != 0 {
			t.Errorf("%s: exported %v, value %v; want exported at 0", name, ok, v)
		}
		delete(got, name)
	}
	if len(got) > 0 {
		t.Errorf("unexpected metrics %v", got)
	}
}
