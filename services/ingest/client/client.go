// Package client streams messages to a sluice ingest server and keeps every
// message until the server acknowledges it.
//
// Each message gets a sequence number (1-based, counted across reconnects).
// The server answers with cumulative acks ("OK n": the first n messages of
// this connection are stored). When the connection drops or the server sends
// an error, the client reconnects with backoff and resends every message after
// the last ack. Delivery is therefore at least once: a message whose
// connection dropped after it was written but before its ack may be stored
// twice.
//
// Memory is bounded: Send blocks once MaxUnacked messages or MaxUnackedBytes
// bytes are waiting for their ack.
//
//	c, err := client.Dial(ctx, client.Config{Addr: "127.0.0.1:9501"})
//	...
//	for _, m := range msgs { if _, err := c.Send(ctx, m); err != nil { ... } }
//	err = c.WaitAcked(ctx)   // everything sent so far is stored
//	st := c.Close()          // st.Outcome(seq) for each message
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// Config configures a Client. Only Addr is required.
type Config struct {
	// Addr is the ingest (or HAProxy) "host:port".
	Addr string
	// MaxUnacked caps messages waiting for their ack (default 100000).
	MaxUnacked int
	// MaxUnackedBytes caps bytes (with newlines) waiting for their ack
	// (default 32 MiB).
	MaxUnackedBytes int
	// MaxFrame is the largest message Send accepts (default 1 MiB, the
	// server's default INGEST_MAX_FRAME_BYTES).
	MaxFrame int
	// DialTimeout bounds one connection attempt (default 5s).
	DialTimeout time.Duration
	// AckTimeout: a connection with written but unacked messages that sees
	// no ack for this long, or a write blocked this long, is dropped and
	// replaced (default 60s, longer than the server's Redis retry deadline).
	AckTimeout time.Duration
	// ReconnectTimeout: the client gives up (Err, Send and WaitAcked
	// return an error) when it cannot get a connection that makes progress
	// for this long (default 60s).
	ReconnectTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff
	// between connection attempts (defaults 20ms and 1s).
	BackoffMin, BackoffMax time.Duration
	// OnAck, if set, is called with the cumulative count of acked messages
	// each time it grows: messages 1..n are stored. Calls come from one
	// goroutine, in order; keep it fast, it delays reading acks.
	OnAck func(n uint64)
	// Logger receives reconnect and error events (default: discard).
	Logger *slog.Logger
	// Dial replaces net.Dialer.DialContext (tests, custom transports).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c *Config) setDefaults() {
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = 100_000
	}
	if c.MaxUnackedBytes <= 0 {
		c.MaxUnackedBytes = 32 << 20
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 1 << 20
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 60 * time.Second
	}
	if c.ReconnectTimeout <= 0 {
		c.ReconnectTimeout = 60 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 20 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(time.Second, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
}

// Errors the client returns.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("client closed")
	// ErrGaveUp wraps the last connection error after ReconnectTimeout.
	ErrGaveUp = errors.New("gave up reconnecting")
	// ErrRejected: the server rejected a message permanently
	// (FRAME_TOO_LARGE); resending it cannot succeed.
	ErrRejected = errors.New("message rejected by server")
)

// ServerError is an "ERR n CODE text" reply.
type ServerError struct {
	Code string
	Text string
}

func (e *ServerError) Error() string { return "server error " + e.Code + ": " + e.Text }

// Outcome is what is known about one message.
type Outcome int

const (
	// Unsent: accepted by Send but never written to a connection.
	Unsent Outcome = iota
	// Indeterminate: written at least once but not acked. It may or may
	// not be stored (the connection may have dropped after the server
	// stored it but before the ack arrived); while the client runs it is
	// still in flight and may become Acked.
	Indeterminate
	// Acked: the server confirmed it is stored.
	Acked
)

func (o Outcome) String() string {
	switch o {
	case Unsent:
		return "unsent"
	case Indeterminate:
		return "indeterminate"
	case Acked:
		return "acked"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Status is a snapshot of the client's bookkeeping. Sequence numbers are
// 1-based: 1..Acked are acked, Acked+1..Written are indeterminate,
// Written+1..Queued are unsent.
type Status struct {
	Queued  uint64 // messages accepted by Send
	Written uint64 // messages written to a connection at least once
	Acked   uint64 // messages acked
	// Resent counts message writes that repeated an earlier write, after a
	// reconnect (each is a possible duplicate in the store).
	Resent uint64
	// Connects counts successful connections (the first one included).
	Connects uint64
	// Err is the terminal error, if the client stopped.
	Err error
}

// Outcome reports what is known about message seq (1-based).
func (s Status) Outcome(seq uint64) Outcome {
	switch {
	case seq >= 1 && seq <= s.Acked:
		return Acked
	case seq >= 1 && seq <= s.Written:
		return Indeterminate
	}
	return Unsent
}

// Client streams messages over one connection at a time. Send, WaitAcked,
// Status and Close are safe for concurrent use.
type Client struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop ended

	mu   sync.Mutex
	cond *sync.Cond // writer waits for data or connection end
	// buf holds the frames of messages Acked+1..Queued; bufBase is the
	// stream offset of buf[0]. ends[i] is the stream offset just after
	// message Acked+1+i. Acks reslice both from the front and Send only
	// appends, so bytes once in buf never change: a writer may write a
	// slice of it without the lock. Appending past the capacity moves the
	// live part to a new array, which frees the acked prefix.
	buf     []byte
	bufBase int64
	ends    []int64
	st      Status
	maxWrit int64         // highest stream offset ever written
	space   chan struct{} // closed when acks free space; nil if nobody waits
	acked   chan struct{} // closed when acks arrive; nil if nobody waits
	closed  bool
}

// Dial connects to cfg.Addr and starts the client. The first connection is
// made before Dial returns, so a wrong address fails fast. ctx bounds the
// whole life of the client: when it ends, the client stops like Close.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("client: Config.Addr is empty")
	}
	cfg.setDefaults()
	c := &Client{cfg: cfg, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	c.ctx, c.cancel = context.WithCancel(ctx)
	conn, err := c.dial(c.ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	go c.run(conn)
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := c.cfg.Dial(dctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial ingest %s: %w", c.cfg.Addr, err)
	}
	return conn, nil
}

// Send queues msg (copied) and returns its sequence number. It blocks while
// the unacked limits are reached, until space frees, ctx ends or the client
// stops. msg must be non-empty, hold no '\n', not end in '\r' and fit
// MaxFrame: the server would otherwise count it differently.
func (c *Client) Send(ctx context.Context, msg []byte) (uint64, error) {
	if err := protocol.CheckMessage(msg, c.cfg.MaxFrame); err != nil {
		return 0, fmt.Errorf("client: send: %w", err)
	}
	c.mu.Lock()
	for {
		if c.st.Err != nil {
			err := c.st.Err
			c.mu.Unlock()
			return 0, err
		}
		pending := c.st.Queued - c.st.Acked
		if pending == 0 || (pending < uint64(c.cfg.MaxUnacked) && len(c.buf)+len(msg)+1 <= c.cfg.MaxUnackedBytes) {
			break
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		ch := c.space
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		c.mu.Lock()
	}
	if need := len(c.buf) + len(msg) + 1; need > cap(c.buf) {
		// Move the live bytes to a new array with room to spare (append
		// grows big slices by only 1.25x; acks keep eating the front).
		nb := make([]byte, len(c.buf), max(2*need, 64<<10))
		copy(nb, c.buf)
		c.buf = nb
	}
	c.buf = append(c.buf, msg...)
	c.buf = append(c.buf, '\n')
	if len(c.ends) == cap(c.ends) {
		ne := make([]int64, len(c.ends), max(2*len(c.ends), 1024))
		copy(ne, c.ends)
		c.ends = ne
	}
	c.ends = append(c.ends, c.bufBase+int64(len(c.buf)))
	c.st.Queued++
	seq := c.st.Queued
	c.cond.Broadcast()
	c.mu.Unlock()
	return seq, nil
}

// WaitAcked blocks until every message queued so far is acked, ctx ends,
// or the client stops.
func (c *Client) WaitAcked(ctx context.Context) error {
	c.mu.Lock()
	target := c.st.Queued
	c.mu.Unlock()
	return c.WaitFor(ctx, target)
}

// WaitFor blocks until message seq is acked, ctx ends, or the client stops.
func (c *Client) WaitFor(ctx context.Context, seq uint64) error {
	for {
		c.mu.Lock()
		if c.st.Acked >= seq {
			c.mu.Unlock()
			return nil
		}
		if c.st.Err != nil {
			err := c.st.Err
			c.mu.Unlock()
			return err
		}
		if c.acked == nil {
			c.acked = make(chan struct{})
		}
		ch := c.acked
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for ack of message %d: %w", seq, ctx.Err())
		}
	}
}

// Status returns a snapshot of the bookkeeping.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Acked returns the number of acked messages (1..n are stored).
func (c *Client) Acked() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Acked
}

// Err returns the terminal error, or nil while the client runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Err
}

// Close stops the client at once: it closes the connection without waiting
// for acks (call WaitAcked first for that) and returns the final status, in
// which unacked messages are Indeterminate or Unsent.
func (c *Client) Close() Status {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	return c.Status()
}

// fail records a terminal error and wakes every waiter.
func (c *Client) failLocked(err error) {
	if c.st.Err == nil {
		c.st.Err = err
	}
	c.wakeLocked()
	c.cond.Broadcast()
}

func (c *Client) wakeLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	if c.acked != nil {
		close(c.acked)
		c.acked = nil
	}
}

// run owns the connection: it serves one connection at a time and
// reconnects with backoff until the client stops.
func (c *Client) run(conn net.Conn) {
	defer close(c.done)
	var failingSince time.Time // start of the current streak without progress
	backoff := c.cfg.BackoffMin
	for {
		progress, err := c.serve(conn)
		conn.Close()
		c.mu.Lock()
		if c.closed || c.ctx.Err() != nil {
			c.failLocked(ErrClosed)
			c.mu.Unlock()
			return
		}
		var se *ServerError
		if errors.As(err, &se) && se.Code == protocol.CodeFrameTooLarge {
			c.failLocked(fmt.Errorf("%w: %w", ErrRejected, err))
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if progress || failingSince.IsZero() {
			failingSince = time.Now()
			backoff = c.cfg.BackoffMin
		}
		c.cfg.Logger.Warn("ingest connection ended, reconnecting", "addr", c.cfg.Addr, "err", err)
		// Reconnect only when something waits for an ack: an idle client
		// does not need a connection (the server may close idle ones).
		ok, waited := c.waitPending()
		if !ok {
			c.mu.Lock()
			c.failLocked(ErrClosed)
			c.mu.Unlock()
			return
		}
		if waited { // idle in between: a new streak starts now
			failingSince = time.Now()
			backoff = c.cfg.BackoffMin
		}
		for {
			if time.Since(failingSince) > c.cfg.ReconnectTimeout {
				c.mu.Lock()
				c.failLocked(fmt.Errorf("%w after %s: %w", ErrGaveUp, c.cfg.ReconnectTimeout, err))
				c.mu.Unlock()
				return
			}
			sleep := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-time.After(sleep):
			case <-c.ctx.Done():
				c.mu.Lock()
				c.failLocked(ErrClosed)
				c.mu.Unlock()
				return
			}
			backoff = min(2*backoff, c.cfg.BackoffMax)
			conn, err = c.dial(c.ctx)
			if err == nil {
				break
			}
			c.cfg.Logger.Warn("reconnect failed", "addr", c.cfg.Addr, "err", err)
		}
	}
}

// waitPending blocks until a message is unacked; ok is false if the client
// stops, waited tells whether it had to wait.
func (c *Client) waitPending() (ok, waited bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := context.AfterFunc(c.ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	for c.st.Queued == c.st.Acked {
		if c.ctx.Err() != nil {
			return false, waited
		}
		waited = true
		c.cond.Wait()
	}
	return c.ctx.Err() == nil, waited
}

// serve runs one connection until it fails. progress reports whether any
// ack advanced on it.
func (c *Client) serve(conn net.Conn) (progress bool, err error) {
	s := c.newConnection(conn)
	stop := context.AfterFunc(c.ctx, func() { conn.Close() })
	defer stop()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.writeLoop()
	}()
	go func() {
		defer wg.Done()
		s.readLoop()
	}()
	wg.Wait()
	err = <-s.errc
	c.mu.Lock()
	progress = c.st.Acked > s.base
	c.mu.Unlock()
	return progress, err
}

// connection is one connection to ingest: a write loop sends the buffered
// frames, a read loop applies the acks, and the first of them to fail ends
// both.
type connection struct {
	c    *Client
	conn net.Conn
	base uint64     // c.st.Acked when it began: acks on this connection count from here
	errc chan error // each loop's error, the first one first

	// Guarded by c.mu.
	writeOff int64 // the next byte to write: resend everything after the last ack
	sendEnd  int64 // end of the bytes handed to Write so far
	done     bool  // set when the connection ends; wakes the writer
}

func (c *Client) newConnection(conn net.Conn) *connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Connects++
	return &connection{
		c: c, conn: conn, base: c.st.Acked, errc: make(chan error, 2),
		writeOff: c.bufBase, sendEnd: c.bufBase,
	}
}

// end closes the connection with err and wakes the writer.
func (s *connection) end(err error) {
	s.errc <- err
	s.conn.Close()
	s.c.mu.Lock()
	s.done = true
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
}

// writeLoop sends buffered frames from writeOff on until the connection
// ends or a write fails.
func (s *connection) writeLoop() {
	for {
		chunk, ok := s.nextChunk()
		if !ok {
			return
		}
		if err := s.write(chunk); err != nil {
			s.end(err)
			return
		}
	}
}

// nextChunk waits for bytes not yet written on this connection and returns
// up to 256 KiB of them, already counted as written; ok is false once the
// connection or the client has ended.
func (s *connection) nextChunk() (chunk []byte, ok bool) {
	const maxChunk = 256 << 10
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for !s.done && c.ctx.Err() == nil && s.writeOff >= c.bufBase+int64(len(c.buf)) {
		c.cond.Wait()
	}
	if s.done || c.ctx.Err() != nil {
		return nil, false
	}
	if s.writeOff < c.bufBase { // an ack overtook our bookkeeping of the last write
		s.writeOff = c.bufBase
	}
	chunk = c.buf[s.writeOff-c.bufBase:]
	if len(chunk) > maxChunk {
		chunk = chunk[:maxChunk]
	}
	// Bookkeeping comes before Write: the server may ack part of the chunk
	// before Write returns. A message handed to Write counts as written
	// (Indeterminate until acked) even if Write then fails: it may have
	// reached the server.
	s.sendEnd = s.writeOff + int64(len(chunk))
	c.noteWrittenLocked(s.writeOff, s.sendEnd)
	return chunk, true
}

// write writes chunk and advances writeOff by what was written.
func (s *connection) write(chunk []byte) error {
	c := s.c
	s.conn.SetWriteDeadline(time.Now().Add(c.cfg.AckTimeout))
	n, err := s.conn.Write(chunk)
	c.mu.Lock()
	s.writeOff += int64(n)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write to ingest %s: %w", c.cfg.Addr, err)
	}
	return nil
}

// readLoop applies acks until a read, a reply or an ack fails.
func (s *connection) readLoop() {
	br := bufio.NewReaderSize(s.conn, 4096)
	for {
		if err := s.readReply(br); err != nil {
			s.end(err)
			return
		}
	}
}

// readReply reads one reply and applies its ack.
func (s *connection) readReply(br *bufio.Reader) error {
	c := s.c
	s.conn.SetReadDeadline(time.Now().Add(c.cfg.AckTimeout))
	line, err := br.ReadSlice('\n')
	if err != nil {
		return s.readError(err)
	}
	r, err := protocol.ParseReply(line)
	if err != nil {
		return fmt.Errorf("read from ingest %s: %w", c.cfg.Addr, err)
	}
	if err := c.ack(s.base, r.N, &s.sendEnd); err != nil {
		return err
	}
	if !r.OK() {
		return &ServerError{Code: r.Code, Text: r.Text}
	}
	return nil
}

// readError is the error a failed read ends the connection with: nil for a
// read timeout while nothing awaits an ack (an idle connection is fine).
func (s *connection) readError(err error) error {
	c := s.c
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		waiting := s.sendEnd > c.bufBase
		c.mu.Unlock()
		if !waiting {
			return nil
		}
		return fmt.Errorf("no ack from ingest %s for %s", c.cfg.Addr, c.cfg.AckTimeout)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read from ingest %s: %w", c.cfg.Addr, err)
}

// noteWrittenLocked updates Written and Resent after stream bytes
// [from, to) were written.
func (c *Client) noteWrittenLocked(from, to int64) {
	if to <= from {
		return
	}
	pend := c.ends
	// Messages whose end lies in (from, to] were completed by this write.
	lo := sort.Search(len(pend), func(i int) bool { return pend[i] > from })
	hi := sort.Search(len(pend), func(i int) bool { return pend[i] > to })
	if hi > lo {
		// Of those, the ones ending at or before maxWrit were written before.
		old := sort.Search(len(pend), func(i int) bool { return pend[i] > c.maxWrit })
		if old > lo {
			c.st.Resent += uint64(min(old, hi) - lo)
		}
	}
	if to > c.maxWrit {
		c.maxWrit = to
		if w := c.st.Acked + uint64(hi); w > c.st.Written {
			c.st.Written = w
		}
	}
}

// ack applies "n messages of this connection are stored". sendEnd is the
// end of the bytes given to Write on this connection: no ack can go past it.
func (c *Client) ack(connBase, n uint64, sendEnd *int64) error {
	c.mu.Lock()
	total := connBase + n
	if total <= c.st.Acked {
		c.mu.Unlock()
		return nil
	}
	k := int(total - c.st.Acked)
	pend := c.ends
	if k > len(pend) || pend[k-1] > *sendEnd {
		c.mu.Unlock()
		return fmt.Errorf("ingest %s acked %d messages on this connection, more than were written", c.cfg.Addr, n)
	}
	newBase := pend[k-1]
	c.buf = c.buf[newBase-c.bufBase:]
	c.bufBase = newBase
	c.ends = c.ends[k:]
	c.st.Acked = total
	// The ack may overtake the writer's bookkeeping of the same bytes.
	c.st.Written = max(c.st.Written, total)
	c.maxWrit = max(c.maxWrit, newBase)
	c.wakeLocked()
	c.mu.Unlock()
	if c.cfg.OnAck != nil {
		c.cfg.OnAck(total)
	}
	return nil
}
