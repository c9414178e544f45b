package schedule

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/retention"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newSched(t *testing.T, addr string, clk *clock, reg prometheus.Registerer) *Scheduler {
	t.Helper()
	snap, err := snapshot.New(snapshot.Options{Dir: t.TempDir(), Key: "data_queue", RedisAddr: addr, Attempts: 1, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return New(snap, retention.Policy{KeepLast: 2}, t.TempDir(), time.Minute, NewMetrics(reg), slog.New(slog.DiscardHandler), clk.now)
}

// TestReadinessFollowsLastSuccess: ready after start and after a success,
// not ready once the last success is more than 2x the interval old.
func TestReadinessFollowsLastSuccess(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	s := newSched(t, r.Addr, clk, reg)
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
