package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outcome errors of Lane.Push.
var (
	// ErrUnavailable: Redis was not writable before the deadline.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrNotReplicated: WAIT kept reporting too few replicas until the deadline.
	ErrNotReplicated = errors.New("not replicated")
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	Key         string
	MinReplicas int
	WaitTimeout time.Duration
	Timeout     time.Duration // one round trip, WAIT time excluded
	MinBackoff  time.Duration // default 20ms
	MaxBackoff  time.Duration // default 1s
	Logger      *slog.Logger
	Metrics     *Metrics
}

// Writer creates Lanes that share one Redis client.
type Writer struct {
	rdb *redis.Client
	o   WriterOptions
}

// NewWriter returns a Writer over rdb.
func NewWriter(rdb *redis.Client, o WriterOptions) *Writer {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 20 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	return &Writer{rdb: rdb, o: o}
}

// Lane is one flush lane: a dedicated Redis connection with at most one
// flush in flight. It is not safe for concurrent use.
type Lane struct {
	w    *Writer
	conn *redis.Conn
	args []any
	wait *redis.IntCmd
}

// NewLane returns a lane; its connection is opened on first use.
func (w *Writer) NewLane() *Lane {
	return &Lane{w: w}
}

// Close releases the lane's connection.
func (l *Lane) Close() error {
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	return err
}

// Arg is a message value handed to go-redis without copying or boxing: a
// pointer to an Arg in a reused slice converts to `any` without allocating,
// and go-redis writes it through MarshalBinary.
type Arg []byte

// MarshalBinary returns the message bytes.
func (a *Arg) MarshalBinary() ([]byte, error) { return *a, nil }

// Push stores vals (each a *Arg, or anything go-redis can encode) with one
// RPUSH, plus WAIT on the same connection in the same pipeline when
// MinReplicas > 0. It retries until deadline: connection errors, EOF,
// READONLY, NOREPLICAS, LOADING, MASTERDOWN, a rejected ROLE, and every
// other error alike (a retry after an ambiguous error may store the values
// twice: delivery is at least once). When WAIT reports too few replicas it
// re-issues only WAIT on the same connection. It returns nil, or an error
// wrapping ErrUnavailable or ErrNotReplicated, or ctx's error.
func (l *Lane) Push(ctx context.Context, vals []any, deadline time.Time) error {
	o := &l.w.o
	backoff := o.MinBackoff
	pushed := false // the RPUSH is applied on l.conn; only WAIT is missing
	var lastErr error
	var lastReplicas int64
	for attempt := 0; ; attempt++ {
		start := time.Now()
		var err error
		var replicas int64
		if pushed {
			replicas, err = l.waitOnly(ctx)
		} else {
			replicas, err = l.pushOnce(ctx, vals)
		}
		switch {
		case err == nil && (o.MinReplicas == 0 || replicas >= int64(o.MinReplicas)):
			if o.Metrics != nil {
				o.Metrics.writeDuration.Observe(time.Since(start).Seconds())
			}
			if attempt > 0 {
				o.Logger.Info("redis write recovered", "attempts", attempt+1)
			}
			return nil
		case err == nil:
			// Stored on the master, not yet on enough replicas.
			pushed = true
			lastErr, lastReplicas = nil, replicas
			l.retried("wait_short")
			if time.Now().Add(o.WaitTimeout).After(deadline) {
				return fmt.Errorf("%w: WAIT saw %d of %d replicas", ErrNotReplicated, lastReplicas, o.MinReplicas)
			}
			continue // WAIT itself waited; no extra backoff
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pushed = false // a new connection must push again
			lastErr = err
			l.discard()
			l.retried(reason(err))
			if attempt == 0 || attempt%10 == 0 {
				o.Logger.Warn("redis write failed, retrying", "err", err, "attempt", attempt+1, "deadline_in", time.Until(deadline).Round(time.Millisecond))
			}
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

func (l *Lane) retried(reason string) {
	if l.w.o.Metrics != nil {
		l.w.o.Metrics.retries.WithLabelValues(reason).Inc()
	}
}

// reason classifies an error for the retries metric.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrNotMaster):
		return "not_master"
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS", "OOM", "WRONGTYPE"} {
			if len(msg) >= len(p) && msg[:len(p)] == p {
				return p
			}
		}
		return "redis_error"
	}
	return "connection"
}

func (l *Lane) connection() *redis.Conn {
	if l.conn == nil {
		l.conn = l.w.rdb.Conn()
	}
	return l.conn
}

func (l *Lane) discard() {
	if l.conn != nil {
		_ = l.conn.Close()
		l.conn = nil
	}
}

// pushOnce sends RPUSH key vals... [+ WAIT] in one pipeline.
func (l *Lane) pushOnce(ctx context.Context, vals []any) (int64, error) {
	o := &l.w.o
	l.args = append(l.args[:0], "rpush", o.Key)
	l.args = append(l.args, vals...)
	push := redis.NewIntCmd(ctx, l.args...)
	cn := l.connection()
	var wait *redis.IntCmd
	pipe := cn.Pipeline()
	_ = pipe.Process(ctx, push)
	if o.MinReplicas > 0 {
		wait = redis.NewIntCmd(ctx, "wait", o.MinReplicas, o.WaitTimeout.Milliseconds())
		_ = pipe.Process(ctx, wait)
	}
	_, err := pipe.Exec(ctx)
	clear(l.args) // drop references to the batch buffer
	if err := push.Err(); err != nil {
		return 0, fmt.Errorf("rpush %s: %w", o.Key, err)
	}
	if err != nil {
		return 0, err
	}
	if wait == nil {
		return 0, nil
	}
	n, err := wait.Result()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return n, nil
}

// waitOnly re-issues WAIT on the connection that applied the RPUSH.
func (l *Lane) waitOnly(ctx context.Context) (int64, error) {
	o := &l.w.o
	n, err := l.connection().Do(ctx, "wait", o.MinReplicas, o.WaitTimeout.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return n, nil
}
