package ingest

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

	"github.com/sluice-ingest/sluice/services/ingest/internal/protocol"
)

const (
	protocolCodeTooMany = protocol.CodeTooManyConnections
)

var appendErrLine = protocol.AppendErr

// Reasons a connection stops reading.
const (
	stopNone     int32 = iota
	stopShutdown       // drain: SHUTTING_DOWN
	stopFailed         // a flush failed: UNAVAILABLE / NOT_REPLICATED
	stopDead           // write error or kill: close at once
)

// conn is one client connection. The serve goroutine reads; acks are
// written by a short-lived acker goroutine started when there is something
// to acknowledge, so an idle connection costs one goroutine and a small
// read buffer.
type conn struct {
	s      *Server
	nc     net.Conn
	lane   *lane
	remote string
	ctx    context.Context // cancelled when reading must stop (wakes a budget wait)
	cancel context.CancelFunc

	stopReason atomic.Int32
	// abandoned: nothing more of this connection will be acked (a flush
	// failed, or the socket is gone). Lanes skip its queued messages.
	abandoned atomic.Bool

	mu         sync.Mutex
	cond       sync.Cond
	received   uint64 // messages handed to the lane
	stored     uint64 // messages stored (the cumulative ack)
	written    uint64 // highest "OK n" written
	failCode   string // first flush failure; stored is frozen from then on
	failText   string
	dead       bool // no more writes
	finishing  bool // serve owns the socket for the final lines
	ackerBusy  bool
	ackBuf     [32]byte
	finalBuf   []byte
	closeLabel string
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc}
	c.cond.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.lane = s.lanes[s.laneSeq.Add(1)%uint64(len(s.lanes))]
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.nconns.Add(1)
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
	c.abandoned.Store(true)
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.nc.Close()
}

func (c *conn) serve() {
	defer func() {
		c.cancel()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.nconns.Add(-1)
		c.s.m.closed.WithLabelValues(c.closeLabel).Inc()
	}()
	c.remote = c.nc.RemoteAddr().String() // with PROXY protocol: reads the header
	log := c.s.log.With("remote", c.remote)
	log.Debug("connection opened")
	code, text := c.read()
	c.finish(code, text)
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
func (c *conn) read() (code, text string) {
	s := c.s
	dec := protocol.NewDecoder(c.nc, s.o.MaxFrameBytes)
	defer dec.Release()
	for {
		if s.o.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(s.o.IdleTimeout))
		}
		if c.stopReason.Load() != stopNone {
			return c.stopCode()
		}
		n, err := dec.Fill()
		if n > 0 {
			if ferr := c.push(dec); ferr != nil {
				if errors.Is(ferr, protocol.ErrFrameTooLarge) {
					s.m.rejected.WithLabelValues(protocol.CodeFrameTooLarge).Inc()
					return protocol.CodeFrameTooLarge, ferr.Error()
				}
				return c.stopCode() // stopped while waiting for budget
			}
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, protocol.ErrFrameTooLarge):
			s.m.rejected.WithLabelValues(protocol.CodeFrameTooLarge).Inc()
			return protocol.CodeFrameTooLarge, err.Error()
		case c.stopReason.Load() != stopNone:
			return c.stopCode()
		case errors.Is(err, os.ErrDeadlineExceeded):
			if c.pending() > 0 {
				continue // waiting for Redis is not idleness
			}
			return protocol.CodeIdleTimeout, "no data for " + s.o.IdleTimeout.String()
		case errors.Is(err, io.EOF):
			return "", ""
		default:
			if errors.Is(err, proxyproto.ErrNoProxyProtocol) || isProxyErr(err) {
				s.log.Warn("bad PROXY protocol header", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			c.closeLabel = "read_error"
			return "-", ""
		}
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
		c.closeLabel = "write_error"
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
// acquisition and one lane lock per read chunk.
func (c *conn) push(dec *protocol.Decoder) error {
	s := c.s
	complete := dec.Complete()
	if complete == 0 {
		return nil
	}
	if err := s.budget.Acquire(c.ctx, int64(complete)); err != nil {
		return err
	}
	s.inflight.Add(int64(complete))
	now := time.Now()
	l := c.lane
	count, bytes := 0, 0
	var ferr error
	l.mu.Lock()
	for {
		frame, ok, err := dec.Next()
		if err != nil {
			ferr = err
			break
		}
		if !ok {
			break
		}
		l.appendLocked(c, frame, now)
		count++
		bytes += len(frame)
	}
	c.mu.Lock()
	c.received += uint64(count)
	c.mu.Unlock()
	l.mu.Unlock()
	s.releaseBudget(complete - bytes)
	s.m.received.Add(float64(count))
	s.m.receivedBytes.Add(float64(bytes))
	return ferr
}

// settle records the outcome of n messages of this connection.
func (c *conn) settle(n int, code, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failCode == "" {
		if code == "" {
			c.stored += uint64(n)
		} else {
			c.failCode, c.failText = code, text
			c.abandoned.Store(true)
			// Cumulative acks: later OKs would cover the failed
			// messages, so this connection ends after the error.
			c.stop(stopFailed)
		}
	}
	if !c.ackerBusy && !c.finishing && !c.dead && c.stored > c.written {
		c.ackerBusy = true
		go c.ack()
	}
	c.cond.Broadcast()
}

// ack writes coalesced "OK n" lines until nothing new is stored.
func (c *conn) ack() {
	c.mu.Lock()
	for !c.finishing && !c.dead && c.stored > c.written {
		n := c.stored
		c.mu.Unlock()
		err := c.write(protocol.AppendOK(c.ackBuf[:0], n))
		c.mu.Lock()
		if err != nil {
			c.dead = true
			c.abandoned.Store(true)
			c.s.log.Info("closing connection: ack write failed", "remote", c.remote, "err", err)
			c.stop(stopDead)
			break
		}
		c.written = n
	}
	c.ackerBusy = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *conn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.o.WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// finish waits until every message read is settled, writes the final
// "OK n" and error line, and closes the connection without a reset.
func (c *conn) finish(code, text string) {
	if code == "-" {
		c.mu.Lock()
		c.dead = true
		c.abandoned.Store(true)
		c.finishing = true
		c.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	c.mu.Lock()
	for !c.dead && c.failCode == "" && c.stored < c.received {
		c.cond.Wait()
	}
	c.finishing = true
	for c.ackerBusy {
		c.cond.Wait()
	}
	if c.dead {
		c.mu.Unlock()
		if c.closeLabel == "" {
			c.closeLabel = "write_error"
		}
		_ = c.nc.Close()
		return
	}
	if c.failCode != "" {
		code, text = c.failCode, c.failText
	}
	n := c.stored
	buf := c.finalBuf[:0]
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
		if err := c.write(buf); err != nil {
			_ = c.nc.Close()
			return
		}
	}
	closeCleanly(c.nc, c.s.o.CloseLinger)
}

// closeCleanly sends FIN, then reads and discards until the client closes
// its side (or linger passes) so the close sends no RST: closing a socket
// with unread received data makes the kernel reset the connection.
func closeCleanly(nc net.Conn, linger time.Duration) {
	raw := nc
	if pc, ok := nc.(*proxyproto.Conn); ok {
		raw = pc.Raw()
	}
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(linger))
			var sink [512]byte
			for {
				if _, err := nc.Read(sink[:]); err != nil {
					break
				}
			}
		}
	}
	_ = nc.Close()
}
