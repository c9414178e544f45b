// Package ingest is the sluice TCP server: it accepts client connections,
// reads newline-delimited frames, batches them across connections into
// flush lanes, and writes cumulative acks once Redis stored them.
package ingest

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
	"golang.org/x/sync/semaphore"

	"github.com/sluice-ingest/sluice/services/ingest/internal/protocol"
)

// Options configure a Server.
type Options struct {
	ListenAddr       string
	ProxyProtocol    bool // require a PROXY protocol header on every connection
	Writers          int
	BatchMax         int
	BatchLinger      time.Duration
	MaxFrameBytes    int
	MaxInflightBytes int
	RetryTimeout     time.Duration
	MaxConns         int
	IdleTimeout      time.Duration // 0: none
	WriteTimeout     time.Duration
	DrainDelay       time.Duration
	ShutdownTimeout  time.Duration
	// CloseLinger bounds how long a closing connection reads and discards
	// after sending FIN, waiting for the client's FIN (default 2s).
	CloseLinger time.Duration
}

// Server is the ingest TCP server.
type Server struct {
	o     Options
	ln    net.Listener
	log   *slog.Logger
	m     *metrics
	lanes []*lane

	budget   *semaphore.Weighted
	inflight atomic.Int64
	nconns   atomic.Int64
	draining atomic.Bool
	laneSeq  atomic.Uint64

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup // connection goroutines
}

// New binds the listener. newPusher is called once per flush lane.
func New(o Options, newPusher func() Pusher, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if o.CloseLinger <= 0 {
		o.CloseLinger = 2 * time.Second
	}
	if o.Writers < 1 || o.BatchMax < 1 || o.MaxFrameBytes < 1 || o.MaxConns < 1 {
		return nil, fmt.Errorf("ingest options: writers, batch max, max frame bytes and max conns must be positive")
	}
	if minBudget := 2 * max(o.MaxFrameBytes+2, protocol.LargeBufferSize); o.MaxInflightBytes < minBudget {
		return nil, fmt.Errorf("ingest options: max inflight bytes %d is below %d", o.MaxInflightBytes, minBudget)
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
	s := &Server{
		o:      o,
		ln:     ln,
		log:    log,
		budget: semaphore.NewWeighted(int64(o.MaxInflightBytes)),
		conns:  map[*conn]struct{}{},
	}
	s.m = newMetrics(reg, s)
	for range o.Writers {
		s.lanes = append(s.lanes, newLane(s, newPusher(), o.BatchMax, o.BatchLinger))
	}
	return s, nil
}

// Addr is the bound listener address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready reports why the server should not get new connections, or nil.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	if n := s.nconns.Load(); n >= int64(s.o.MaxConns) {
		return fmt.Errorf("connection cap reached (%d of INGEST_MAX_CONNS=%d)", n, s.o.MaxConns)
	}
	return nil
}

func (s *Server) releaseBudget(n int) {
	if n > 0 {
		s.inflight.Add(-int64(n))
		s.budget.Release(int64(n))
	}
}

// Serve accepts connections until ctx is cancelled, then drains: not
// ready, keep serving for DrainDelay, stop accepting and reading, flush
// and ack what was read, send SHUTTING_DOWN, close every connection
// cleanly. The drain is bounded by ShutdownTimeout.
func (s *Server) Serve(ctx context.Context) error {
	hard, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	var lanes sync.WaitGroup
	for _, l := range s.lanes {
		lanes.Go(func() { l.run(hard) })
	}
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.accept() }()

	var acceptErr error
	select {
	case <-ctx.Done():
	case acceptErr = <-acceptDone:
		acceptDone = nil
		s.log.Error("accept failed, draining", "err", acceptErr)
	}
	s.draining.Store(true)
	start := time.Now()
	deadline := start.Add(s.o.ShutdownTimeout)
	hardTimer := time.AfterFunc(s.o.ShutdownTimeout, func() {
		s.log.Error("shutdown timeout reached, closing connections", "timeout", s.o.ShutdownTimeout)
		hardStop()
		s.killAll()
	})
	defer hardTimer.Stop()
	s.log.Info("draining", "drain_delay", s.o.DrainDelay, "shutdown_timeout", s.o.ShutdownTimeout, "connections", s.nconns.Load())

	if acceptDone != nil {
		select {
		case <-time.After(s.o.DrainDelay):
		case <-hard.Done():
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
	for _, l := range s.lanes {
		l.stop()
	}
	lanes.Wait()
	for _, l := range s.lanes {
		_ = l.pusher.Close()
	}
	if hard.Err() != nil {
		return fmt.Errorf("drain exceeded INGEST_SHUTDOWN_TIMEOUT (%s)", s.o.ShutdownTimeout)
	}
	s.log.Info("drained", "took", time.Since(start).Round(time.Millisecond), "deadline_left", time.Until(deadline).Round(time.Millisecond))
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
				s.log.Warn("accept error, retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		if s.nconns.Load() >= int64(s.o.MaxConns) {
			s.wg.Go(func() { s.reject(nc) })
			continue
		}
		c := s.newConn(nc)
		s.wg.Go(c.serve)
	}
}

// isTemporary reports accept errors worth retrying (EMFILE, ECONNABORTED...).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// reject answers a connection over the cap and closes it cleanly.
func (s *Server) reject(nc net.Conn) {
	s.m.closed.WithLabelValues(protocolCodeTooMany).Inc()
	s.log.Warn("connection rejected: cap reached", "remote", nc.RemoteAddr().String(), "max_conns", s.o.MaxConns)
	_ = nc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	_, err := nc.Write(appendErrLine(nil, 0, protocolCodeTooMany, fmt.Sprintf("connection limit %d reached", s.o.MaxConns)))
	if err != nil {
		_ = nc.Close()
		return
	}
	closeCleanly(nc, s.o.CloseLinger)
}

func (s *Server) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.kill()
	}
}
