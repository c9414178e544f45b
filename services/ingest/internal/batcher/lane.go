package batcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// segment is a run of consecutive messages of one producer in a batch.
type segment struct {
	p   Producer
	src *Source
	n   int
	at  time.Time // when the first message of the run was queued
}

// batch is the unit of one flush: frame bytes copied once into buf, frame
// end offsets, and per-producer segments for the outcomes.
type batch struct {
	buf     []byte
	ends    []int
	segs    []segment
	frames  []store.Arg
	args    []any
	firstAt time.Time
}

func (b *batch) len() int { return len(b.ends) }

// maxPooledBatch is the largest buffer kept in the pool; bigger ones (a burst
// of large frames) are left to the GC so memory does not stay high.
const maxPooledBatch = 4 << 20

var batchPool = sync.Pool{New: func() any { return new(batch) }}

func getBatch() *batch { return batchPool.Get().(*batch) }

func putBatch(b *batch) {
	if cap(b.buf) > maxPooledBatch {
		return
	}
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	clear(b.segs) // drop producer references
	b.segs = b.segs[:0]
	clear(b.frames)
	b.frames = b.frames[:0]
	clear(b.args)
	b.args = b.args[:0]
	batchPool.Put(b)
}

// values returns the batch as go-redis arguments without allocating per
// message: each value is a pointer into b.frames. Messages of abandoned
// producers (an earlier flush failed) are left out: they will never be
// acked, and the client resends them.
func (b *batch) values() []any {
	start, i := 0, 0
	for _, seg := range b.segs {
		skip := seg.p.Abandoned()
		for range seg.n {
			end := b.ends[i]
			if !skip {
				b.frames = append(b.frames, store.Arg(b.buf[start:end]))
			}
			start = end
			i++
		}
	}
	for i := range b.frames {
		b.args = append(b.args, &b.frames[i])
	}
	return b.args
}

// Lane batches the messages of the producers pinned to it and flushes
// them in order, one flush in flight, so each producer's messages reach
// Redis in the order they were queued.
type Lane struct {
	pusher Pusher
	max    int
	linger time.Duration
	retry  time.Duration
	budget func(n int) // gives back flushed bytes
	m      *metrics
	log    *slog.Logger

	mu      sync.Mutex
	queue   []*batch // queue[0] is flushed next; the last one is filling
	stopped bool
	kick    chan struct{}
}

func (l *Lane) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Append copies the frames that next yields into the lane's batches, in
// order, until next reports ok=false or an error, which Append returns
// with the count and bytes of the frames queued before it. The frames'
// bytes must have been taken from the budget (Acquire): the lane gives
// them back once flushed. p.Queued sees the count before the lane can
// settle any of them.
func (l *Lane) Append(src *Source, p Producer, next func() ([]byte, bool, error)) (count, bytes int, err error) {
	now := time.Now()
	l.mu.Lock()
	for {
		frame, ok, ferr := next()
		if ferr != nil {
			err = ferr
			break
		}
		if !ok {
			break
		}
		l.appendLocked(src, p, frame, now)
		count++
		bytes += len(frame)
	}
	if count > 0 {
		p.Queued(count)
	}
	l.mu.Unlock()
	src.received.Add(float64(count))
	src.receivedBytes.Add(float64(bytes))
	return count, bytes, err
}

// appendLocked copies frame into the filling batch. l.mu must be held.
func (l *Lane) appendLocked(src *Source, p Producer, frame []byte, now time.Time) {
	var b *batch
	if n := len(l.queue); n > 0 && l.queue[n-1].len() < l.max {
		b = l.queue[n-1]
	} else {
		b = getBatch()
		l.queue = append(l.queue, b)
	}
	if b.len() == 0 {
		b.firstAt = now
		if len(l.queue) == 1 {
			l.signal()
		}
	}
	b.buf = append(b.buf, frame...)
	b.ends = append(b.ends, len(b.buf))
	if n := len(b.segs); n > 0 && b.segs[n-1].p == p {
		b.segs[n-1].n++
	} else {
		b.segs = append(b.segs, segment{p: p, src: src, n: 1, at: now})
	}
	if b.len() == l.max {
		l.signal()
	}
}

// stop makes the flusher exit once its queue is empty.
func (l *Lane) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.signal()
}

// take waits for the next batch to flush: full, or lingered long enough,
// or the lane is stopping. It returns nil when the lane is stopped and
// empty.
func (l *Lane) take(hard context.Context, timer *time.Timer) *batch {
	l.mu.Lock()
	for {
		if len(l.queue) > 0 {
			b := l.queue[0]
			wait := time.Duration(0)
			if len(l.queue) == 1 && b.len() < l.max && l.linger > 0 && !l.stopped {
				wait = time.Until(b.firstAt.Add(l.linger))
			}
			if wait <= 0 {
				l.queue[0] = nil
				l.queue = l.queue[1:]
				if len(l.queue) == 0 {
					l.queue = l.queue[:0:0] // let the backing array go
				}
				l.mu.Unlock()
				return b
			}
			l.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-l.kick:
				timer.Stop()
			case <-hard.Done():
				timer.Stop()
			}
			l.mu.Lock()
			continue
		}
		if l.stopped {
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		select {
		case <-l.kick:
		case <-hard.Done():
		}
		l.mu.Lock()
	}
}

// run flushes batches until the lane is stopped and empty.
func (l *Lane) run(hard context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b := l.take(hard, timer)
		if b == nil {
			return
		}
		l.flush(hard, b)
	}
}

func (l *Lane) flush(hard context.Context, b *batch) {
	n := 0
	bytes := len(b.buf)
	var err error
	if vals := b.values(); len(vals) > 0 {
		n = len(vals)
		l.m.batchSize.Observe(float64(n))
		// The retry deadline starts at the first attempt, not at the
		// first read: a batch that queued behind a slow flush still gets
		// the whole INGEST_REDIS_RETRY_TIMEOUT.
		err = l.pusher.Push(hard, vals, time.Now().Add(l.retry))
	}
	var f *Failure
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotReplicated):
		f = &Failure{Code: protocol.CodeNotReplicated, Text: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		f = &Failure{Code: protocol.CodeUnavailable, Text: err.Error()}
	case errors.Is(err, store.ErrQueueFull):
		f = &Failure{Code: protocol.CodeQueueFull, Text: err.Error()}
	default: // the hard shutdown deadline cancelled the flush
		f = &Failure{Code: protocol.CodeShuttingDown, Text: "shutdown deadline reached before the write completed"}
	}
	if f != nil {
		l.log.Error("flush failed", "code", f.Code, "messages", n, "err", err)
	}
	now := time.Now()
	for _, seg := range b.segs {
		if seg.p.Abandoned() {
			continue // already failed: nothing to ack
		}
		seg.src.settled(seg.n, f, now.Sub(seg.at))
		seg.p.Settle(seg.n, f)
	}
	l.budget(bytes)
	putBatch(b)
}
