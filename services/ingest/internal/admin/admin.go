// Package admin serves the ingest admin HTTP endpoints: /live, /ready
// (heptiolabs/healthcheck), /metrics (a private Prometheus registry) and,
// when enabled, /debug/pprof/.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/heptiolabs/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the admin server.
type Options struct {
	Addr          string
	Pprof         bool
	ReadyInterval time.Duration // how often the Redis check runs
	ReadyTimeout  time.Duration // timeout of one Redis check
}

// Checks are the readiness inputs.
type Checks struct {
	// Redis runs in the background every ReadyInterval; /ready serves its
	// cached result. It should fail unless the Redis master is writable.
	Redis func(ctx context.Context) error
	// Server is cheap and runs on every request (draining, connection cap).
	Server func() error
}

// Server is the admin HTTP server.
type Server struct {
	o      Options
	ln     net.Listener
	checks Checks
	mux    *http.ServeMux
	hc     healthcheck.Handler
	log    *slog.Logger
}

// New binds the admin listener.
func New(o Options, checks Checks, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", o.Addr, err)
	}
	s := &Server{o: o, ln: ln, checks: checks, mux: http.NewServeMux(), hc: healthcheck.NewHandler(), log: log}
	s.mux.Handle("/live", s.hc)
	s.mux.Handle("/ready", s.hc)
	s.mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	if o.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	redis := s.checks.Redis
	s.hc.AddReadinessCheck("redis", healthcheck.AsyncWithContext(checkCtx, func() error {
		c, cancel := context.WithTimeout(checkCtx, s.o.ReadyTimeout)
		defer cancel()
		err := redis(c)
		if err != nil {
			s.log.Debug("readiness: redis check failed", "err", err)
		}
		return err
	}, s.o.ReadyInterval))
	s.hc.AddReadinessCheck("server", s.checks.Server)

	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}
