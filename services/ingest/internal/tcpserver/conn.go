package tcpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// Reasons a connection stops reading.
const (
	stopNone     int32 = iota
	stopShutdown       // drain: SHUTTING_DOWN
	stopFailed         // a flush failed: UNAVAILABLE / NOT_REPLICATED
	stopDead           // kill: close at once
)

// conn is one client connection and the batcher.Producer of its messages.
// The serve goroutine reads; acks are written by a short-lived acker
// goroutine started when there is something to acknowledge. Acks are
// cumulative, so the connection keeps only the latest count: while the
// client does not read, the acker holds it back (ackGate) or blocks in
// one write (no deadline), and the count goes on growing, in O(1) memory,
// without slowing the reader.
type conn struct {
	sh     *shared
	nc     net.Conn
	lane   *batcher.Lane
	remote string
	ctx    context.Context // cancelled when reading must stop (wakes a budget wait)
	cancel context.CancelFunc
	// bufCtx bounds a wait for a bigger read buffer: ctx, or the close
	// linger's deadline while a draining connection is read to its end.
	bufCtx context.Context

	// partialSince: when the first byte of the partial frame being read
	// arrived; zero when none is partial. Written by the reader only.
	partialSince time.Time

	stopReason atomic.Int32
	// gate belongs to the acker.
	gate ackGate
	held atomic.Bool // the acker holds the count back or asks: nudge it on data
	// lastRead: when data last arrived (UnixNano), for the gate's idle rule.
	lastRead atomic.Int64
	// nudge wakes an acker that holds the count back: data arrived (it
	// carries the client's window), or the connection is finishing.
	nudge chan struct{}
	// abandoned: a flush of this connection failed, so nothing more of it
	// will be acked. Lanes skip its queued messages.
	abandoned atomic.Bool

	mu         sync.Mutex
	cond       sync.Cond
	received   uint64 // messages queued in the lane
	stored     uint64 // messages stored (the cumulative ack)
	written    uint64 // highest "OK n" written (or cut short, see unsent)
	failCode   string // first flush failure; stored is frozen from then on
	failText   string
	dead       bool // the socket takes no more writes
	finishing  bool // serve owns the socket for the final lines
	ackerBusy  bool
	ackBuf     [32]byte
	unsent     []byte // the tail of an ack line the final deadline cut short
	closeLabel string
}

func newConn(sh *shared, nc net.Conn) *conn {
	c := &conn{sh: sh, nc: nc, lane: sh.b.Lane(), gate: newAckGate(nc), nudge: make(chan struct{}, 1)}
	c.cond.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.bufCtx = c.ctx
	return c
}

// stop makes the reader stop (idempotent; the first reason wins).
func (c *conn) stop(reason int32) {
	if c.stopReason.CompareAndSwap(stopNone, reason) {
		c.cancel()
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// kill closes the socket at once (shutdown deadline).
func (c *conn) kill() {
	c.stop(stopDead)
	c.mu.Lock()
	c.dead = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.wakeAcker()
	_ = c.nc.Close()
}

func (c *conn) serve() {
	defer func() {
		c.cancel()
		c.sh.m.closed.WithLabelValues(c.closeLabel).Inc()
	}()
	c.remote = c.nc.RemoteAddr().String() // with PROXY protocol: reads the header
	log := c.sh.log.With("remote", c.remote)
	log.Debug("connection opened")
	dec := protocol.NewDecoder(c.nc, c.sh.o.MaxFrameBytes)
	dec.SetBudget(connBudget{c})
	defer dec.Release()
	code, text := c.read(dec)
	c.finish(dec, code, text)
	c.mu.Lock()
	acked := c.stored
	c.mu.Unlock()
	// A clean client EOF is routine; every other end (an error code, a
	// broken socket, a drain) is logged at info with the client address.
	level := slog.LevelInfo
	if c.closeLabel == "eof" {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, "connection closed", "reason", c.closeLabel, "acked", acked)
}

// read runs the read loop and returns the error code to send when reading
// ends: "" after a client EOF, "-" when the connection is broken.
func (c *conn) read(dec *protocol.Decoder) (code, text string) {
	o := c.sh.o
	for {
		c.setReadDeadline()
		if c.stopReason.Load() != stopNone {
			return c.stopCode()
		}
		n, err := dec.Fill()
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			if c.held.Load() {
				c.wakeAcker()
			}
			complete, ferr := c.push(c.ctx, dec)
			if ferr != nil {
				if errors.Is(ferr, protocol.ErrFrameTooLarge) {
					c.sh.src.Rejected(protocol.CodeFrameTooLarge, 1)
					return protocol.CodeFrameTooLarge, ferr.Error()
				}
				return c.stopCode() // stopped while waiting for budget
			}
			// The frame deadline runs from the first byte of the frame
			// still partial: a read that completed a frame started a new
			// one.
			switch {
			case dec.Buffered() == 0:
				c.partialSince = time.Time{}
			case complete > 0 || c.partialSince.IsZero():
				c.partialSince = time.Now()
			}
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, protocol.ErrFrameTooLarge):
			c.sh.src.Rejected(protocol.CodeFrameTooLarge, 1)
			return protocol.CodeFrameTooLarge, err.Error()
		case c.stopReason.Load() != stopNone:
			return c.stopCode()
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
			if d := c.frameDeadline(); !d.IsZero() && !time.Now().Before(d) {
				c.sh.src.Rejected(protocol.CodeFrameTimeout, 1)
				return protocol.CodeFrameTimeout, "frame not complete " + o.FrameTimeout.String() + " after its first byte"
			}
			if errors.Is(err, context.DeadlineExceeded) || c.pending() > 0 {
				continue // waiting for Redis or for a buffer is not idleness
			}
			return protocol.CodeIdleTimeout, "no data for " + o.IdleTimeout.String()
		case errors.Is(err, context.Canceled):
			return c.stopCode()
		case errors.Is(err, io.EOF):
			return "", ""
		default:
			if errors.Is(err, proxyproto.ErrNoProxyProtocol) || isProxyErr(err) {
				c.sh.log.Warn("bad PROXY protocol header", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			c.closeLabel = "read_error"
			return "-", ""
		}
	}
}

// setReadDeadline bounds the next read by the idle timeout and the
// deadline of the partial frame, whichever comes first.
func (c *conn) setReadDeadline() {
	var d time.Time
	if c.sh.o.IdleTimeout > 0 {
		d = time.Now().Add(c.sh.o.IdleTimeout)
	}
	if f := c.frameDeadline(); !f.IsZero() && (d.IsZero() || f.Before(d)) {
		d = f
	}
	if !d.IsZero() {
		_ = c.nc.SetReadDeadline(d)
	}
}

func isProxyErr(err error) bool {
	for _, e := range []error{proxyproto.ErrCantReadVersion1Header, proxyproto.ErrInvalidLength, proxyproto.ErrCantReadProtocolVersionAndCommand} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (c *conn) stopCode() (string, string) {
	switch c.stopReason.Load() {
	case stopShutdown:
		return protocol.CodeShuttingDown, "server is draining, reconnect and resend after the last OK"
	case stopFailed:
		return "", "" // finish sends the flush failure
	default:
		c.closeLabel = "killed"
		return "-", ""
	}
}

func (c *conn) pending() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failCode != "" {
		return 0
	}
	return c.received - c.stored
}

// push hands every complete buffered frame to the lane: one budget
// acquisition and one lane lock per read chunk. It returns the bytes of
// the complete frames (delimiters included).
func (c *conn) push(ctx context.Context, dec *protocol.Decoder) (int, error) {
	complete := dec.Complete()
	if complete == 0 {
		return 0, nil
	}
	b := c.sh.b
	if err := b.Acquire(ctx, complete); err != nil {
		return 0, err
	}
	_, bytes, err := c.lane.Append(c.sh.src, c, dec.Next)
	b.Release(complete - bytes)
	return complete, err
}

// Queued implements batcher.Producer.
func (c *conn) Queued(n int) {
	c.mu.Lock()
	c.received += uint64(n)
	c.mu.Unlock()
}

// Abandoned implements batcher.Producer.
func (c *conn) Abandoned() bool { return c.abandoned.Load() }

// Settle implements batcher.Producer: it records the outcome of n
// messages and wakes the acker.
func (c *conn) Settle(n int, f *batcher.Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failCode == "" {
		if f == nil {
			c.stored += uint64(n)
		} else {
			c.failCode, c.failText = f.Code, f.Text
			c.abandoned.Store(true)
			// Cumulative acks: later OKs would cover the failed
			// messages, so this connection ends after the error.
			c.stop(stopFailed)
		}
	}
	if !c.sh.o.NoAck && !c.ackerBusy && !c.finishing && !c.dead && c.stored > c.written {
		c.ackerBusy = true
		go c.ack()
	}
	c.cond.Broadcast()
}

// idleAfter: a client that sent nothing for this long may be waiting for
// its ack (ackGate.open).
const idleAfter = time.Second

// ack writes coalesced "OK n" lines until nothing new is stored. While
// the client leaves earlier lines unread (ackGate), it holds the count
// back and looks again when data arrives or after a backoff of up to a
// second. Its writes have no deadline: a client that does not read holds
// this goroutine, and nothing else. finish cuts a blocked write short with
// the deadline of the final lines, and sends the rest of the line itself.
func (c *conn) ack() {
	var backoff time.Duration
	var timer *time.Timer
	holding := false
	c.mu.Lock()
	for !c.finishing && !c.dead && c.stored > c.written {
		c.mu.Unlock()
		c.held.Store(true) // before asking: data from now on nudges
		idle := time.Since(time.Unix(0, c.lastRead.Load())) >= idleAfter
		if !c.gate.open(idle, len(c.ackBuf)) {
			if !holding {
				holding = true
				c.sh.m.held.Inc()
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if timer == nil {
				timer = time.NewTimer(backoff)
			} else {
				timer.Reset(backoff)
			}
			select {
			case <-timer.C:
			case <-c.nudge:
			}
			c.mu.Lock()
			continue
		}
		c.held.Store(false)
		holding, backoff = false, 0
		c.mu.Lock()
		if c.finishing || c.dead {
			break
		}
		n := c.stored
		c.mu.Unlock()
		line := protocol.AppendOK(c.ackBuf[:0], n)
		w, err := c.nc.Write(line)
		c.mu.Lock()
		if err != nil {
			if c.finishing && errors.Is(err, os.ErrDeadlineExceeded) {
				c.unsent = append(c.unsent[:0], line[w:]...)
				c.written = n
				break
			}
			// The socket is broken; reading finds out too. What was
			// read is still stored.
			c.dead = true
			c.sh.log.Info("ack write failed", "remote", c.remote, "err", err)
			break
		}
		c.written = n
	}
	c.held.Store(false)
	c.ackerBusy = false
	c.cond.Broadcast()
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
}

// wakeAcker makes an acker that holds the count back look again.
func (c *conn) wakeAcker() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// finish waits until every message read is settled, writes the final
// "OK n" and error line within WriteTimeout, and closes the connection
// without a reset. After a client EOF, a drain or an idle timeout every
// frame already read has been queued; the lanes store it even if the
// socket broke meanwhile.
func (c *conn) finish(dec *protocol.Decoder, code, text string) {
	if code == "-" {
		c.mu.Lock()
		c.dead = true
		c.finishing = true
		c.mu.Unlock()
		c.close(dec, false)
		return
	}
	if c.sh.o.NoAck {
		c.finishQuietly(dec, code, text)
		return
	}
	c.mu.Lock()
	for !c.dead && c.failCode == "" && c.stored < c.received {
		c.cond.Wait()
	}
	c.finishing = true
	c.mu.Unlock()
	c.wakeAcker()
	// Bounds the acker's write in progress (a client that does not read)
	// and the final lines below.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.sh.o.WriteTimeout))
	c.mu.Lock()
	for c.ackerBusy {
		c.cond.Wait()
	}
	if c.dead {
		c.mu.Unlock()
		if c.closeLabel == "" {
			c.closeLabel = "write_error"
		}
		c.close(dec, false)
		return
	}
	if c.failCode != "" {
		code, text = c.failCode, c.failText
	}
	n := c.stored
	buf := append([]byte(nil), c.unsent...)
	if n > c.written {
		buf = protocol.AppendOK(buf, n)
	}
	if code != "" {
		buf = protocol.AppendErr(buf, n, code, text)
	}
	c.mu.Unlock()
	c.closeLabel = code
	if code == "" {
		c.closeLabel = "eof"
	}
	if len(buf) > 0 {
		if _, err := c.nc.Write(buf); err != nil {
			c.closeLabel = "write_error"
			c.close(dec, false)
			return
		}
	}
	if code == protocol.CodeShuttingDown {
		c.storeUntilClosed(dec)
		return
	}
	c.close(dec, true)
}

// finishQuietly ends a no-ack connection: no final lines. A drain keeps
// storing what arrives until the client's FIN or the linger; any other
// end discards it.
func (c *conn) finishQuietly(dec *protocol.Decoder, code, text string) {
	c.mu.Lock()
	if c.failCode != "" {
		code, text = c.failCode, c.failText
	}
	c.mu.Unlock()
	c.closeLabel = code
	switch code {
	case "":
		c.closeLabel = "eof"
	case protocol.CodeShuttingDown:
		c.storeUntilClosed(dec)
		return
	default:
		c.sh.log.Info("closing no-ack connection", "remote", c.remote, "code", code, "err", text)
	}
	c.close(dec, true)
}

// storeUntilClosed closes a draining connection: FIN, then, until the
// client closes its side or CloseLinger passes, it keeps queueing the
// complete frames that arrive (they are stored, not acked) rather than
// discarding them, so a sender that never reads acks loses only what is
// still in flight when the socket closes.
func (c *conn) storeUntilClosed(dec *protocol.Decoder) {
	if !halfClose(c.nc) {
		c.close(dec, false)
		return
	}
	deadline := time.Now().Add(c.sh.o.CloseLinger)
	_ = c.nc.SetReadDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c.bufCtx = ctx
	for {
		n, err := dec.Fill()
		if n > 0 {
			if _, perr := c.push(ctx, dec); perr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.close(dec, false)
}

// close gives the read buffers back to the budget, then closes the
// socket: cleanly (closeCleanly) or at once. A client that has seen the
// close finds the budget free.
func (c *conn) close(dec *protocol.Decoder, clean bool) {
	dec.Release()
	if clean {
		closeCleanly(c.nc, c.sh.o.CloseLinger)
		return
	}
	_ = c.nc.Close()
}

// halfClose sends FIN.
func halfClose(nc net.Conn) bool {
	cw, ok := socket(nc).(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

// socket is the client's connection under a PROXY protocol wrapper.
func socket(nc net.Conn) net.Conn {
	if pc, ok := nc.(*proxyproto.Conn); ok {
		return pc.Raw()
	}
	return nc
}

// closeCleanly sends FIN, then reads and discards until the client closes
// its side (or linger passes) so the close sends no RST: closing a socket
// with unread received data makes the kernel reset the connection.
func closeCleanly(nc net.Conn, linger time.Duration) {
	if halfClose(nc) {
		_ = nc.SetReadDeadline(time.Now().Add(linger))
		var sink [512]byte
		for {
			if _, err := nc.Read(sink[:]); err != nil {
				break
			}
		}
	}
	_ = nc.Close()
}
