// Package schedule runs snapshots every interval (and on demand), applies
// retention after each success, exports the backup metrics and answers
// readiness.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/services/backup/internal/retention"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// RetryAfter is the pause after a failed scheduled snapshot when the
// interval is longer: a stack that was still starting gets a snapshot soon.
const RetryAfter = 30 * time.Second

// Metrics are the backup metrics, on the registry given to NewMetrics.
type Metrics struct {
	lastSuccess prometheus.Gauge
	duration    prometheus.Gauge
	size        prometheus.Gauge
	keyLength   prometheus.Gauge
	failures    prometheus.Counter
	copyFails   prometheus.Counter
	successes   prometheus.Counter
	removed     prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_backup_last_success_timestamp_seconds", Help: "Unix time of the last verified snapshot."}),
		duration:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_backup_last_duration_seconds", Help: "Duration of the last successful snapshot (transfer, verify, rename)."}),
		size:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_backup_last_size_bytes", Help: "Size of the last successful snapshot."}),
		keyLength:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_backup_last_key_length", Help: "Elements of the queue key in the last snapshot."}),
		failures:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_backup_failures_total", Help: "Snapshots that failed after all their attempts."}),
		copyFails:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_backup_copy_failures_total", Help: "Snapshots that could not be copied to BACKUP_COPY_DIR."}),
		successes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_backup_snapshots_total", Help: "Snapshots taken and verified."}),
		removed:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_backup_retention_removed_total", Help: "Snapshots deleted by retention."}),
	}
	reg.MustRegister(m.lastSuccess, m.duration, m.size, m.keyLength, m.failures, m.copyFails, m.successes, m.removed)
	return m
}

// Scheduler takes snapshots on a timer and on request.
type Scheduler struct {
	snap     *snapshot.Snapshotter
	policy   retention.Policy
	dir      string
	copyDir  string // second destination; "" for none
	interval time.Duration
	log      *slog.Logger
	metrics  *Metrics
	now      func() time.Time

	mu          sync.Mutex
	since       time.Time // last success, or the start before any
	lastErr     error
	lastSuccess *snapshot.Meta
}

// New returns a Scheduler. copyDir is a second destination ("" for none);
// now may be nil (time.Now).
func New(snap *snapshot.Snapshotter, policy retention.Policy, dir, copyDir string, interval time.Duration,
	metrics *Metrics, log *slog.Logger, now func() time.Time) *Scheduler {
	if now == nil {
		now = time.Now
	}
	return &Scheduler{snap: snap, policy: policy, dir: dir, copyDir: copyDir, interval: interval,
		log: log, metrics: metrics, now: now, since: now()}
}

// Run takes a snapshot now and then every interval until ctx ends. After a
// failure the next try comes after min(interval, RetryAfter).
func (s *Scheduler) Run(ctx context.Context) error {
	if err := snapshot.RemoveTemps(s.dir); err != nil {
		s.log.Warn("remove leftover temp files", "dir", s.dir, "err", err.Error())
	}
	for {
		wait := s.interval
		if _, err := s.TakeNow(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = min(s.interval, RetryAfter)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// TakeNow takes one snapshot (waiting for one in progress to finish first),
// records the metrics and applies retention.
func (s *Scheduler) TakeNow(ctx context.Context) (*snapshot.Meta, error) {
	m, err := s.snap.Take(ctx)
	if err != nil {
		s.metrics.failures.Inc()
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.log.Error("snapshot failed", "err", err.Error())
		return nil, err
	}
	s.metrics.successes.Inc()
	s.metrics.lastSuccess.Set(float64(m.CreatedAt.UnixNano()) / 1e9)
	s.metrics.duration.Set(m.DurationSeconds)
	s.metrics.size.Set(float64(m.SizeBytes))
	s.metrics.keyLength.Set(float64(m.KeyLength))
	s.mu.Lock()
	s.since, s.lastErr, s.lastSuccess = m.CreatedAt, nil, m
	s.mu.Unlock()
	s.retain(s.dir)
	if s.copyDir != "" {
		// A failed copy does not fail the snapshot (it is safe in dir); it
		// is logged and counted, and the next snapshot is copied again.
		if err := snapshot.CopyTo(s.dir, s.copyDir, m.File); err != nil {
			s.metrics.copyFails.Inc()
			s.log.Error("copy to second destination failed", "dir", s.copyDir, "err", err.Error())
		} else {
			s.log.Info("snapshot copied", "dir", s.copyDir, "file", m.File)
			s.retain(s.copyDir)
		}
	}
	return m, nil
}

func (s *Scheduler) retain(dir string) {
	removed, err := s.policy.Apply(dir, s.now())
	s.metrics.removed.Add(float64(len(removed)))
	if err != nil {
		s.log.Warn("retention", "dir", dir, "err", err.Error())
	}
	if len(removed) > 0 {
		s.log.Info("retention removed snapshots", "dir", dir, "files", removed)
	}
}

// Ready fails when the last success (or the start, before the first one)
// is older than twice the interval.
func (s *Scheduler) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if age := s.now().Sub(s.since); age > 2*s.interval {
		return fmt.Errorf("no successful snapshot for %s (more than 2x BACKUP_INTERVAL=%s); last error: %v",
			age.Round(time.Second), s.interval, s.lastErr)
	}
	return nil
}
