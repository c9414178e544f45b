// Package store writes batches of messages to Redis: one idempotent
// multi-value RPUSH per flush that records the flush's sequence number in a
// per-lane key, plus WAIT when replicated acks are required, in one
// pipeline on one dedicated connection, retried until a deadline across
// failovers without storing a batch twice. A flush's first attempt is a
// MULTI/EXEC guarded by a WATCH of the lane key (it aborts once anything
// else wrote the key); the first flush on a connection and every retry are
// a script (EVALSHA) that pushes only if the lane key does not show the
// flush as applied yet.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrNotMaster is returned by the connection check when the server reached
// is not a master (for example after a stale Sentinel answer).
var ErrNotMaster = errors.New("redis server is not the master")

// ClientOptions selects single-node or Sentinel mode.
type ClientOptions struct {
	Addr             string   // single-node mode
	SentinelAddrs    []string // Sentinel mode
	MasterName       string
	Username         string // ACL user; empty: the default user
	Password         string
	SentinelUsername string
	SentinelPassword string
	Timeout          time.Duration // dial, write and read timeout (WAIT time is added to reads)
	WaitTimeout      time.Duration
	PoolSize         int
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
	mc := &masterCheck{metrics: m, log: log}
	if len(o.SentinelAddrs) > 0 {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       o.MasterName,
			SentinelAddrs:    o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername,
			SentinelPassword: o.SentinelPassword,
			Username:         o.Username,
			Password:         o.Password,
			DialTimeout:      o.Timeout,
			ReadTimeout:      o.Timeout + o.WaitTimeout,
			WriteTimeout:     o.Timeout,
			PoolSize:         o.PoolSize,
			MaxRetries:       -1,
			PipelinePoolSize: -1,
			OnConnect:        mc.onConnect,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr:             o.Addr,
		DialerRetries:    1, // the Writer retries with backoff and a deadline
		Username:         o.Username,
		Password:         o.Password,
		DialTimeout:      o.Timeout,
		ReadTimeout:      o.Timeout + o.WaitTimeout,
		WriteTimeout:     o.Timeout,
		PoolSize:         o.PoolSize,
		MaxRetries:       -1,
		PipelinePoolSize: -1,
		OnConnect:        mc.onConnect,
		// Redis 7.0 has no maintenance notifications. go-redis's default
		// "auto" mode tries the handshake on every new connection and, when
		// it fails, rewrites the shared options without a common lock: a
		// data race between the lanes' dedicated connections (go test -race).
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// masterCheck rejects connections to non-masters and counts master changes.
type masterCheck struct {
	metrics *Metrics
	log     *slog.Logger
	mu      sync.Mutex
	master  string // server address of the last accepted master connection
}

func (mc *masterCheck) onConnect(ctx context.Context, cn *redis.Conn) error {
	var role *redis.Cmd
	var info *redis.Cmd
	_, err := cn.Pipelined(ctx, func(p redis.Pipeliner) error {
		role = p.Do(ctx, "ROLE")
		info = p.Do(ctx, "client", "info")
		return nil
	})
	_ = err // per-command errors are checked below
	name, err := RoleName(role)
	if err != nil {
		return fmt.Errorf("check role: %w", err)
	}
	if name == "sentinel" {
		// go-redis runs OnConnect on its Sentinel connections too.
		return nil
	}
	if name != "master" {
		mc.metrics.roleRejections.Inc()
		mc.log.Warn("rejecting redis connection: not the master", "role", name)
		return fmt.Errorf("%w: ROLE is %s", ErrNotMaster, name)
	}
	if text, err := info.Text(); err == nil {
		if addr := field(text, "laddr"); addr != "" {
			mc.mu.Lock()
			prev := mc.master
			mc.master = addr
			mc.mu.Unlock()
			if prev != "" && prev != addr {
				mc.metrics.failovers.Inc()
				mc.log.Warn("redis master changed", "from", prev, "to", addr)
			}
		}
	}
	return nil
}

// RoleName returns the first element of a ROLE reply.
func RoleName(cmd *redis.Cmd) (string, error) {
	v, err := cmd.Result()
	if err != nil {
		return "", err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return "", fmt.Errorf("unexpected ROLE reply %v", v)
	}
	name, ok := arr[0].(string)
	if !ok {
		return "", fmt.Errorf("unexpected ROLE reply %v", v)
	}
	return name, nil
}

// field returns the value of key in a "k=v k=v" line (CLIENT INFO).
func field(line, key string) string {
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// CheckMaster runs ROLE through the client and reports an error unless the
// server answering is a writable master. The /ready check uses it.
func CheckMaster(ctx context.Context, rdb *redis.Client) error {
	cmd := rdb.Do(ctx, "ROLE")
	name, err := RoleName(cmd)
	if err != nil {
		return fmt.Errorf("redis ROLE: %w", err)
	}
	if name != "master" {
		return fmt.Errorf("%w: ROLE is %s", ErrNotMaster, name)
	}
	return nil
}
