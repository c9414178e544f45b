// Package batcher is the part of ingest that both front ends (TCP and
// HTTP) feed: it copies messages into per-lane batches, flushes each lane's
// batches to Redis in order with one flush in flight, bounds the bytes in
// flight with a budget, and reports each run of messages' outcome to the
// Producer that queued it.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Pusher stores one batch; *store.Flusher implements it. Push is called by a
// single goroutine with at most one call in flight.
type Pusher interface {
	Push(ctx context.Context, vals []any, deadline time.Time) error
	Close() error
}

// Failure is why a run of messages was not stored: a protocol error code
// (protocol.CodeUnavailable, ...) and a human-readable text.
type Failure struct {
	Code string
	Text string
}

// Producer is a front end's handle for the messages it queued (a TCP
// connection, an HTTP request). The batcher calls its methods from the
// lanes' goroutines.
type Producer interface {
	// Queued is called while Append holds the lane, before any Settle of
	// those messages: n more messages were queued.
	Queued(n int)
	// Settle reports the outcome of the producer's next n queued messages,
	// in order: stored (f == nil) or failed.
	Settle(n int, f *Failure)
	// Abandoned reports that nothing more of this producer can be acked
	// (an earlier flush failed): its queued messages are not stored.
	Abandoned() bool
}

// Options configure a Batcher.
type Options struct {
	Lanes            int           // flush lanes: one Redis connection and one flush in flight each
	BatchMax         int           // messages per flush
	BatchLinger      time.Duration // longest a message waits for its batch to fill
	MaxInflightBytes int           // budget: message bytes read but not yet settled
	RetryTimeout     time.Duration // how long one flush is retried, from its first attempt
}

// Batcher owns the lanes and the in-flight budget.
type Batcher struct {
	o        Options
	log      *slog.Logger
	m        *metrics
	lanes    []*Lane
	budget   *semaphore.Weighted
	inflight atomic.Int64
	next     atomic.Uint64
}

// New makes a Batcher; newPusher is called once per lane.
func New(o Options, newPusher func() Pusher, log *slog.Logger, reg prometheus.Registerer) (*Batcher, error) {
	if o.Lanes < 1 || o.BatchMax < 1 || o.MaxInflightBytes < 1 || o.RetryTimeout <= 0 {
		return nil, errors.New("batcher options: lanes, batch max, max inflight bytes and retry timeout must be positive")
	}
	b := &Batcher{o: o, log: log, budget: semaphore.NewWeighted(int64(o.MaxInflightBytes))}
	b.m = newMetrics(reg, &b.inflight)
	for range o.Lanes {
		b.lanes = append(b.lanes, &Lane{
			pusher: newPusher(), max: o.BatchMax, linger: o.BatchLinger,
			retry: o.RetryTimeout, budget: b.release, m: b.m, log: log,
			kick: make(chan struct{}, 1),
		})
	}
	return b, nil
}

// Source returns the metric series of one front end ("tcp", "http").
func (b *Batcher) Source(transport string) *Source { return b.m.source(transport) }

// Lane returns the next lane, round robin. A producer keeps its lane: its
// messages reach Redis in the order it queued them.
func (b *Batcher) Lane() *Lane { return b.lanes[b.next.Add(1)%uint64(len(b.lanes))] }

// Acquire takes n bytes of the in-flight budget, waiting until they are
// free or ctx is done. The caller hands them to Append, and gives back
// with Release what it did not queue.
func (b *Batcher) Acquire(ctx context.Context, n int) error {
	if n > b.o.MaxInflightBytes {
		return fmt.Errorf("%d bytes exceed the in-flight budget of %d", n, b.o.MaxInflightBytes)
	}
	if err := b.budget.Acquire(ctx, int64(n)); err != nil {
		return err
	}
	b.inflight.Add(int64(n))
	return nil
}

// Release gives back n bytes of the budget.
func (b *Batcher) Release(n int) { b.release(n) }

func (b *Batcher) release(n int) {
	if n > 0 {
		b.inflight.Add(-int64(n))
		b.budget.Release(int64(n))
	}
}

// Inflight is the budget in use, in bytes.
func (b *Batcher) Inflight() int64 { return b.inflight.Load() }

// Serve runs the lanes and the front ends (each a Serve method of a TCP
// or HTTP server) until ctx is cancelled and every front end returned,
// having drained. The lanes outlive the front ends, so what they read is
// flushed and answered; shutdownTimeout after ctx is done (or a front end
// failed), flushes stop retrying and fail with SHUTTING_DOWN. Serve then
// closes the pushers.
func (b *Batcher) Serve(ctx context.Context, shutdownTimeout time.Duration, frontends ...func(context.Context) error) error {
	hard, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	var lanes sync.WaitGroup
	for _, l := range b.lanes {
		lanes.Go(func() { l.run(hard) })
	}
	g, gctx := errgroup.WithContext(ctx)
	stopTimer := context.AfterFunc(gctx, func() { time.AfterFunc(shutdownTimeout, hardStop) })
	defer stopTimer()
	for _, serve := range frontends {
		g.Go(func() error { return serve(gctx) })
	}
	err := g.Wait()
	for _, l := range b.lanes {
		l.stop()
	}
	lanes.Wait()
	for _, l := range b.lanes {
		err = errors.Join(err, l.pusher.Close())
	}
	return err
}
