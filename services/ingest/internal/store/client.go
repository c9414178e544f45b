// Package store writes batches of messages to Redis: one idempotent
// multi-value RPUSH per flush that records the flush's sequence number in a
// per-flusher sequence key, plus WAIT when replicated acks are required, in one
// pipeline on one dedicated connection, retried until a deadline across
// failovers without storing a batch twice. A flush's first attempt is a
// MULTI/EXEC guarded by a WATCH of the sequence key (it aborts once anything
// else wrote the key); the first flush on a connection and every retry are
// a script (EVALSHA) that pushes only if the sequence key does not show the
// flush as applied yet.
package store

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// ClientOptions are the Redis connection and the timeouts of its round trips.
type ClientOptions struct {
	Redis       redisconn.Config
	Timeout     time.Duration // dial, write and read timeout (WAIT time is added to reads)
	WaitTimeout time.Duration
	PoolSize    int
}

// Metrics are the Redis-side metrics.
type Metrics struct {
	writeDuration  prometheus.Histogram
	failovers      prometheus.Counter
	roleRejections prometheus.Counter
	retries        *prometheus.CounterVec
	// duplicateFlushes counts flush attempts that found their batch
	// already applied (by an attempt whose reply was lost).
	duplicateFlushes prometheus.Counter
	queueLength      prometheus.Gauge
	backpressure     *prometheus.CounterVec
}

// Backpressure reasons: why flushes waited (and readers stopped reading).
const (
	BackpressureQueueFull     = "queue_full"        // INGEST_MAX_QUEUE_LEN reached, or Redis OOM
	BackpressureUnavailable   = "redis_unavailable" // no writable master
	BackpressureNotReplicated = "not_replicated"    // WAIT short of INGEST_MIN_REPLICAS
)

// NewMetrics registers the store metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_ingest_redis_write_duration_seconds",
			Help:    "Duration of one successful flush round trip (the RPUSH with its sequence key, plus WAIT when configured).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_redis_failovers_total",
			Help: "Changes of the Redis master seen by this process (a new master address on connect).",
		}),
		roleRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_redis_role_rejections_total",
			Help: "Connections rejected because ROLE was not master.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_redis_retries_total",
			Help: "Flush attempts that failed and were retried, by reason.",
		}, []string{"reason"}),
		duplicateFlushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_redis_flushes_already_applied_total",
			Help: "Flush retries that found their batch already stored by an earlier attempt whose reply was lost (an EOF, a timeout or a failover after the write); the batch was not pushed again.",
		}),
	}
	m.queueLength = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sluice_ingest_queue_length",
		Help: "Length of the Redis list as last seen by this process (the reply of its last RPUSH or LLEN).",
	})
	m.backpressure = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_ingest_backpressure_seconds_total",
		Help: "Time flushes spent waiting instead of storing (readers stop reading meanwhile), by reason: queue_full, redis_unavailable, not_replicated.",
	}, []string{"reason"})
	for _, r := range []string{BackpressureQueueFull, BackpressureUnavailable, BackpressureNotReplicated} {
		m.backpressure.WithLabelValues(r)
	}
	for _, r := range []string{"not_master", "READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS", "OOM", "WRONGTYPE", "redis_error", "connection", "wait_short", "watch_aborted", "queue_full"} {
		m.retries.WithLabelValues(r)
	}
	reg.MustRegister(m.writeDuration, m.failovers, m.roleRejections, m.retries, m.duplicateFlushes, m.queueLength, m.backpressure)
	return m
}

// NewClient returns a go-redis client for single-node or Sentinel mode. Every
// new connection runs ROLE and is rejected unless the server is the master.
// go-redis retries are disabled: the Writer retries with its own deadline.
func NewClient(o ClientOptions, m *Metrics, log *slog.Logger) *redis.Client {
	return redisconn.NewClient(o.Redis, redisconn.Options{
		DialTimeout:    o.Timeout,
		ReadTimeout:    o.Timeout + o.WaitTimeout,
		WriteTimeout:   o.Timeout,
		PoolSize:       o.PoolSize,
		NoRetries:      true,
		OneDial:        true, // the Writer retries with backoff and a deadline
		NoPipelinePool: true,
		Master: &redisconn.MasterCheck{
			Rejected: func(role string) {
				m.roleRejections.Inc()
				log.Warn("rejecting redis connection: not the master", "role", role)
			},
			Changed: func(from, to string) {
				m.failovers.Inc()
				log.Warn("redis master changed", "from", from, "to", to)
			},
		},
	})
}
