package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/internal/protocol"
	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
)

// Pusher stores one batch; *store.Lane implements it. Push is called by a
// single goroutine with at most one call in flight.
type Pusher interface {
	Push(ctx context.Context, vals []any, deadline time.Time) error
	Close() error
}

// segment is a run of consecutive messages of one connection in a batch.
type segment struct {
	c  *conn
	n  int
	at time.Time // when the first chunk of the run was read
}

// batch is the unit of one flush: frame bytes copied once into buf, frame
// end offsets, and per-connection segments for the acks.
type batch struct {
	buf     []byte
	ends    []int32
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
	clear(b.segs) // drop *conn references
	b.segs = b.segs[:0]
	clear(b.frames)
	b.frames = b.frames[:0]
	clear(b.args)
	b.args = b.args[:0]
	batchPool.Put(b)
}

// values returns the batch as go-redis arguments without allocating per
// message: each value is a pointer into b.frames. Messages of abandoned
// connections (a failed flush, a reset) are left out: they will never be
// acked, and the client resends them elsewhere.
func (b *batch) values() []any {
	start, i := int32(0), 0
	for _, seg := range b.segs {
		skip := seg.c.abandoned.Load()
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

// lane batches the messages of the connections pinned to it and flushes
// them in order, one flush in flight, so each connection's messages reach
// Redis in the order they were sent.
type lane struct {
	s      *Server
	pusher Pusher
	max    int
	linger time.Duration

	mu      sync.Mutex
	queue   []*batch // queue[0] is flushed next; the last one is filling
	stopped bool
	kick    chan struct{}
}

func newLane(s *Server, p Pusher, max int, linger time.Duration) *lane {
	return &lane{s: s, pusher: p, max: max, linger: linger, kick: make(chan struct{}, 1)}
}

func (l *lane) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// appendLocked copies frame into the filling batch. l.mu must be held.
func (l *lane) appendLocked(c *conn, frame []byte, now time.Time) {
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
	b.ends = append(b.ends, int32(len(b.buf)))
	if n := len(b.segs); n > 0 && b.segs[n-1].c == c {
		b.segs[n-1].n++
	} else {
		b.segs = append(b.segs, segment{c: c, n: 1, at: now})
	}
	if b.len() == l.max {
		l.signal()
	}
}

// stop makes the flusher exit once its queue is empty.
func (l *lane) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.signal()
}

// next waits for the next batch to flush: full, or lingered long enough, or
// the lane is stopping. It returns nil when the lane is stopped and empty.
func (l *lane) next(hard context.Context, timer *time.Timer) *batch {
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
func (l *lane) run(hard context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b := l.next(hard, timer)
		if b == nil {
			return
		}
		l.flush(hard, b)
	}
}

func (l *lane) flush(hard context.Context, b *batch) {
	s := l.s
	n := 0
	bytes := len(b.buf)
	var err error
	if vals := b.values(); len(vals) > 0 {
		n = len(vals)
		s.m.batchSize.Observe(float64(n))
		err = l.pusher.Push(hard, vals, b.firstAt.Add(s.o.RetryTimeout))
	}
	code, text := "", ""
	switch {
	case err == nil:
		s.m.acked.Add(float64(n))
	case errors.Is(err, store.ErrNotReplicated):
		code, text = protocol.CodeNotReplicated, err.Error()
	case errors.Is(err, store.ErrUnavailable):
		code, text = protocol.CodeUnavailable, err.Error()
	default: // the hard shutdown deadline cancelled the flush
		code, text = protocol.CodeShuttingDown, "shutdown deadline reached before the write completed"
	}
	if code != "" {
		s.m.rejected.WithLabelValues(code).Add(float64(n))
		s.log.Error("flush failed", "code", code, "messages", n, "err", err)
	}
	now := time.Now()
	for _, seg := range b.segs {
		if seg.c.abandoned.Load() {
			continue // already failed or gone: nothing to ack
		}
		s.m.ackLatency.Observe(now.Sub(seg.at).Seconds())
		seg.c.settle(seg.n, code, text)
	}
	s.releaseBudget(bytes)
	putBatch(b)
}
