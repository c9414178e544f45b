// Package tcpserver is the ingest TCP front end: it accepts client
// connections, reads newline-delimited frames into the batcher, and writes
// cumulative acks ("OK n") as Redis stores them. Acks never hold a sender
// back: a connection keeps one pending ack value and writes it when the
// socket can take it, so a client that never reads is never slowed or
// closed for it.
package tcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// Transports: the metric label of each kind of TCP server.
const (
	TransportAcked = "tcp"       // acks ("OK n") and error lines
	TransportNoAck = "tcp_noack" // the server never writes
)

// Options configure a Server.
type Options struct {
	ListenAddr    string
	ProxyProtocol bool // require a PROXY protocol header on every connection
	// NoAck: the server never writes to its clients, not even an error
	// line, for senders that treat any byte from the server as the end of
	// the connection (syslog-ng's network() does). Frames are stored all
	// the same; a connection ends with a FIN.
	NoAck         bool
	MaxFrameBytes int
	MaxConns      int
	IdleTimeout   time.Duration // 0: none
	// FrameTimeout: a frame must be complete this long after its first
	// byte (slowloris); else FRAME_TIMEOUT.
	FrameTimeout time.Duration
	// Buffers bounds the connections' read buffers; shared by the TCP
	// servers of a process.
	Buffers *Buffers
	// WriteTimeout bounds the final lines of a connection ("OK n", "ERR
	// ...") at drain and close, and the answer to a connection over the
	// cap. Acks in between have no deadline.
	WriteTimeout    time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	// CloseLinger bounds how long a closing connection keeps reading after
	// sending FIN, waiting for the client's FIN (default 2s).
	CloseLinger time.Duration
}

// shared is what every connection of a server uses; the server holds it
// too. It holds no connection registry, so a connection never reaches
// back into its server.
type shared struct {
	o   Options
	log *slog.Logger
	m   *metrics
	b   *batcher.Batcher
	src *batcher.Source
}

// Server is the ingest TCP server.
type Server struct {
	sh       *shared
	ln       net.Listener
	nconns   atomic.Int64
	draining atomic.Bool
	rejects  chan struct{} // bounds the goroutines answering connections over the cap

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup // connection goroutines
}

// maxRejecting bounds how many connections over the cap are answered at
// once; beyond it they are closed without an answer.
const maxRejecting = 64

// New binds the listener. Messages go to b.
func New(o Options, b *batcher.Batcher, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if o.CloseLinger <= 0 {
		o.CloseLinger = 2 * time.Second
	}
	if o.MaxFrameBytes < 1 || o.MaxConns < 1 || o.WriteTimeout <= 0 || o.FrameTimeout <= 0 || o.Buffers == nil {
		return nil, fmt.Errorf("tcp server options: max frame bytes, max conns, write and frame timeouts must be positive, and buffers set")
	}
	ln, err := net.Listen("tcp", o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", o.ListenAddr, err)
	}
	if o.ProxyProtocol {
		ln = &proxyproto.Listener{
			Listener:          ln,
			ReadHeaderTimeout: 10 * time.Second,
			ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				return proxyproto.REQUIRE, nil
			},
		}
	}
	s := &Server{ln: ln, conns: map[*conn]struct{}{}, rejects: make(chan struct{}, maxRejecting)}
	transport := TransportAcked
	if o.NoAck {
		transport = TransportNoAck
	}
	s.sh = &shared{o: o, log: log.With("transport", transport), b: b, src: b.Source(transport)}
	s.sh.m = newMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"transport": transport}, reg), &s.nconns)
	return s, nil
}

// Addr is the bound listener address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready reports why the server should not get new connections, or nil.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	if n := s.nconns.Load(); n >= int64(s.sh.o.MaxConns) {
		return fmt.Errorf("connection cap reached (%d of INGEST_MAX_CONNS=%d)", n, s.sh.o.MaxConns)
	}
	return nil
}

// Serve accepts connections until ctx is cancelled, then drains: not
// ready, keep serving for DrainDelay, stop accepting and reading, wait
// until what was read is settled, send the last "OK n" and SHUTTING_DOWN,
// close every connection cleanly. Past ShutdownTimeout the remaining
// connections are closed at once. The batcher must keep running until
// Serve returns.
func (s *Server) Serve(ctx context.Context) error {
	o := s.sh.o
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.accept() }()

	var acceptErr error
	select {
	case <-ctx.Done():
	case acceptErr = <-acceptDone:
		acceptDone = nil
		s.sh.log.Error("accept failed, draining", "err", acceptErr)
	}
	s.draining.Store(true)
	start := time.Now()
	hard := make(chan struct{})
	hardTimer := time.AfterFunc(o.ShutdownTimeout, func() {
		s.sh.log.Error("shutdown timeout reached, closing connections", "timeout", o.ShutdownTimeout.String())
		close(hard)
		s.killAll()
	})
	defer hardTimer.Stop()
	s.sh.log.Info("draining", "drain_delay", o.DrainDelay.String(), "shutdown_timeout", o.ShutdownTimeout.String(), "connections", s.nconns.Load())

	if acceptDone != nil {
		select {
		case <-time.After(o.DrainDelay):
		case <-hard:
		}
	}
	_ = s.ln.Close()
	if acceptDone != nil {
		<-acceptDone
	}
	s.mu.Lock()
	for c := range s.conns {
		c.stop(stopShutdown)
	}
	s.mu.Unlock()
	s.wg.Wait()
	if !hardTimer.Stop() {
		return fmt.Errorf("drain exceeded INGEST_SHUTDOWN_TIMEOUT (%s)", o.ShutdownTimeout)
	}
	s.sh.log.Info("tcp connections drained", "took", time.Since(start).Round(time.Millisecond).String())
	return acceptErr
}

func (s *Server) accept() error {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.sh.log.Warn("accept error, retrying", "err", err, "in", delay.String())
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		if s.nconns.Load() >= int64(s.sh.o.MaxConns) {
			s.reject(nc)
			continue
		}
		c := newConn(s.sh, nc)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.nconns.Add(1)
		s.wg.Go(func() {
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.nconns.Add(-1)
		})
	}
}

// isTemporary reports accept errors worth retrying (EMFILE, ECONNABORTED...).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// reject answers a connection over the cap with TOO_MANY_CONNECTIONS and
// closes it cleanly, in a goroutine; at most maxRejecting at once, beyond
// which a connection is closed without an answer.
func (s *Server) reject(nc net.Conn) {
	sh := s.sh
	sh.m.closed.WithLabelValues(protocol.CodeTooManyConnections).Inc()
	select {
	case s.rejects <- struct{}{}:
	default:
		_ = nc.Close()
		return
	}
	s.wg.Go(func() {
		defer func() { <-s.rejects }()
		sh.log.Warn("connection rejected: cap reached", "remote", nc.RemoteAddr().String(), "max_conns", sh.o.MaxConns)
		if sh.o.NoAck {
			closeCleanly(nc, sh.o.CloseLinger)
			return
		}
		_ = nc.SetWriteDeadline(time.Now().Add(sh.o.WriteTimeout))
		_, err := nc.Write(protocol.AppendErr(nil, 0, protocol.CodeTooManyConnections, fmt.Sprintf("connection limit %d reached", sh.o.MaxConns)))
		if err != nil {
			_ = nc.Close()
			return
		}
		closeCleanly(nc, sh.o.CloseLinger)
	})
}

func (s *Server) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.kill()
	}
}
