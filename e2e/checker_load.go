package e2e

// Load workers: each speaks the sluice line protocol over its own TCP
// connection, tracks cumulative acks ("OK n"), and after a dropped connection
// reconnects and resends every message after its last ack, as the client
// library does. Written against the raw protocol so that the checker does not
// depend on the code it checks.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LoadOptions bound a scenario's load. Every loop is bounded in count and time.
type LoadOptions struct {
	// Addr returns the address to dial; it is asked again on every
	// reconnect because a restarted HAProxy may get a new mapped port.
	Addr func() string
	// Workers is the number of concurrent client connections.
	Workers int
	// Rate is the messages per second each worker offers.
	Rate int
	// Window caps the unacked messages per worker.
	Window int
	// MaxPerWorker caps the messages each worker produces.
	MaxPerWorker int
	// Size is the message size in bytes.
	Size int
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Rate <= 0 {
		o.Rate = 250
	}
	if o.Window <= 0 {
		o.Window = 500
	}
	if o.MaxPerWorker <= 0 {
		o.MaxPerWorker = 60000
	}
	if o.Size <= 0 {
		o.Size = 64
	}
	return o
}

// Load is a running set of workers.
type Load struct {
	rec     *Recorder
	opts    LoadOptions
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartLoad starts opts.Workers workers that record into rec.
func StartLoad(ctx context.Context, rec *Recorder, opts LoadOptions) *Load {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{rec: rec, opts: opts, cancel: cancel}
	for i := 0; i < opts.Workers; i++ {
		w := &worker{id: i, rec: rec, opts: opts, started: time.Now(), stopCh: make(chan struct{})}
		l.workers = append(l.workers, w)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			w.run(ctx)
		}()
	}
	return l
}

// Stop ends message production, waits up to drain for outstanding acks
// (reconnecting and resending as needed), then closes every connection.
// It returns the number of messages still unacked.
func (l *Load) Stop(drain time.Duration) int {
	l.rec.MarkEnd(time.Now())
	for _, w := range l.workers {
		close(w.stopCh)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		l.cancel()
		<-done
	}
	l.cancel()
	left := 0
	for _, w := range l.workers {
		w.mu.Lock()
		left += len(w.pending)
		w.mu.Unlock()
	}
	return left
}

type worker struct {
	id      int
	rec     *Recorder
	opts    LoadOptions
	started time.Time
	stopCh  chan struct{}

	mu       sync.Mutex
	produced int
	pending  []string // unacked messages in send order
}

func (w *worker) stopped() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (w *worker) finished() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopped() && len(w.pending) == 0
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil && !w.finished() {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", w.opts.Addr())
		if err != nil {
			if ctx.Err() == nil {
				w.rec.Dropped(nil, "dial error")
			}
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		w.serve(ctx, conn)
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// serve runs one connection until it fails, the server closes it, or the
// worker is done. It resends every pending message first.
func (w *worker) serve(ctx context.Context, conn net.Conn) {
	var (
		onWire      int // pending[:onWire] were sent on this connection
		ackedOnConn int
		reason      string
		reasonMu    sync.Mutex
	)
	setReason := func(r string) {
		reasonMu.Lock()
		if reason == "" {
			reason = r
		}
		reasonMu.Unlock()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				setReason(classify(err))
				return
			}
			n, code, err := parseReply(line)
			if err != nil {
				w.rec.Violation(fmt.Sprintf("worker %d: %v", w.id, err))
				setReason("bad reply")
				return
			}
			now := time.Now()
			w.mu.Lock()
			delta := n - ackedOnConn
			var acked []string
			switch {
			case delta < 0:
				w.rec.Violation(fmt.Sprintf("worker %d: ack count went back from %d to %d", w.id, ackedOnConn, n))
			case delta > onWire:
				w.rec.Violation(fmt.Sprintf("worker %d: ack %d for %d sent messages", w.id, n, ackedOnConn+onWire))
			default:
				acked = append(acked, w.pending[:delta]...)
				w.pending = w.pending[delta:]
				onWire -= delta
				ackedOnConn = n
			}
			w.mu.Unlock()
			w.rec.Acked(acked, now)
			if code != "" {
				// Every error ends this connection on the client side; the
				// worker reconnects and resends after the last ack.
				setReason("ERR " + code)
				return
			}
		}
	}()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var buf []byte
	for {
		// Write whatever is pending but not yet on this connection, plus
		// new messages within the rate, the window and the count bound.
		w.mu.Lock()
		if !w.stopped() {
			due := int(time.Since(w.started).Seconds()*float64(w.opts.Rate)) - w.produced
			room := w.opts.Window - len(w.pending)
			for n := min(due, room, w.opts.MaxPerWorker-w.produced); n > 0; n-- {
				w.pending = append(w.pending, MessageID(w.rec.Prefix(), w.id, w.produced, w.opts.Size))
				w.produced++
			}
		}
		toSend := w.pending[onWire:]
		onWire = len(w.pending)
		done := w.stopped() && len(w.pending) == 0
		w.mu.Unlock()
		if done {
			conn.Close()
			<-readerDone
			return
		}
		if len(toSend) > 0 {
			buf = buf[:0]
			now := time.Now()
			for _, id := range toSend {
				buf = append(buf, id...)
				buf = append(buf, '\n')
				w.rec.Sent(id, now)
			}
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(buf); err != nil {
				setReason("write: " + classify(err))
				conn.Close()
			}
		}
		select {
		case <-ctx.Done():
			conn.Close()
			<-readerDone
			w.dropped(&onWire, "")
			return
		case <-readerDone:
			conn.Close()
			reasonMu.Lock()
			r := reason
			reasonMu.Unlock()
			w.dropped(&onWire, r)
			return
		case <-tick.C:
		}
	}
}

// dropped marks the messages on the wire of a closed connection indeterminate.
func (w *worker) dropped(onWire *int, reason string) {
	w.mu.Lock()
	ids := append([]string(nil), w.pending[:*onWire]...)
	*onWire = 0
	w.mu.Unlock()
	if reason == "" {
		reason = "client close"
	}
	w.rec.Dropped(ids, reason)
}

// parseReply parses "OK n" or "ERR n CODE text".
func parseReply(line string) (n int, code string, err error) {
	f := strings.Fields(strings.TrimRight(line, "\r\n"))
	if len(f) < 2 {
		return 0, "", fmt.Errorf("malformed reply %q", line)
	}
	n, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, "", fmt.Errorf("malformed count in %q", line)
	}
	switch f[0] {
	case "OK":
		return n, "", nil
	case "ERR":
		if len(f) < 3 {
			return 0, "", fmt.Errorf("error reply without code %q", line)
		}
		return n, f[2], nil
	}
	return 0, "", fmt.Errorf("unknown reply %q", line)
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, net.ErrClosed):
		return "client close"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
