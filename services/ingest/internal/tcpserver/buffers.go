package tcpserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// Buffers bounds the read buffers of every connection beyond its small
// one (protocol.SmallBufferSize): the large buffer a busy connection
// borrows and the private buffer a long frame grows. Shared by the TCP
// servers of a process (INGEST_MAX_BUFFER_BYTES). A connection that cannot
// get a bigger buffer stops reading until one is free, or until its frame
// deadline.
type Buffers struct {
	max  int64
	sem  *semaphore.Weighted
	used atomic.Int64
}

// NewBuffers makes a budget of max bytes and registers its gauge.
func NewBuffers(max int, reg prometheus.Registerer) *Buffers {
	b := &Buffers{max: int64(max), sem: semaphore.NewWeighted(int64(max))}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_ingest_read_buffer_bytes",
		Help: "Read buffer bytes held by TCP connections beyond their small buffer (the INGEST_MAX_BUFFER_BYTES budget in use).",
	}, func() float64 { return float64(b.used.Load()) }))
	return b
}

func (b *Buffers) grow(ctx context.Context, n int) error {
	if int64(n) > b.max {
		return fmt.Errorf("a read buffer of %d more bytes exceeds INGEST_MAX_BUFFER_BYTES (%d)", n, b.max)
	}
	if err := b.sem.Acquire(ctx, int64(n)); err != nil {
		return err
	}
	b.used.Add(int64(n))
	return nil
}

// tryGrow takes n bytes if they are free now.
func (b *Buffers) tryGrow(n int) bool {
	if int64(n) > b.max || !b.sem.TryAcquire(int64(n)) {
		return false
	}
	b.used.Add(int64(n))
	return true
}

func (b *Buffers) shrink(n int) {
	if n > 0 {
		b.used.Add(-int64(n))
		b.sem.Release(int64(n))
	}
}

// connBudget is a connection's protocol.BufferBudget: a wait for a bigger
// buffer ends when the connection stops or its frame deadline passes.
type connBudget struct{ c *conn }

func (cb connBudget) Grow(n int) error {
	c := cb.c
	b := c.sh.o.Buffers
	if b.tryGrow(n) {
		return nil // the common case: no context, no timer
	}
	ctx := c.bufCtx
	if d := c.frameDeadline(); !d.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	return c.sh.o.Buffers.grow(ctx, n)
}

func (cb connBudget) Shrink(n int) { cb.c.sh.o.Buffers.shrink(n) }

// frameDeadline is when the partial frame being read must be complete;
// zero when none is partial.
func (c *conn) frameDeadline() time.Time {
	if c.partialSince.IsZero() {
		return time.Time{}
	}
	return c.partialSince.Add(c.sh.o.FrameTimeout)
}
