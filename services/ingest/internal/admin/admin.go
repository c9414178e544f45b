// Package admin serves the ingest admin HTTP endpoints: /live, /ready
// (heptiolabs/healthcheck), /metrics (a private Prometheus registry) and,
// when enabled, /debug/pprof/.
package admin

import (
	"context"
	"log/slog"
	"net"
	"net/http/pprof"
	"time"

	"github.com/heptiolabs/healthcheck"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/internal/adminhttp"
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
	checks Checks
	http   *adminhttp.Server
	log    *slog.Logger
}

// New binds the admin listener.
func New(o Options, checks Checks, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	h, err := adminhttp.New(o.Addr, gatherer, log)
	if err != nil {
		return nil, err
	}
	if o.Pprof {
		h.Mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.Mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		h.Mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.Mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		h.Mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{o: o, checks: checks, http: h, log: log}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// Serve runs the readiness checks and serves until ctx is cancelled, then
// shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	redis := s.checks.Redis
	s.http.Health.AddReadinessCheck("redis", healthcheck.AsyncWithContext(checkCtx, func() error {
		c, cancel := context.WithTimeout(checkCtx, s.o.ReadyTimeout)
		defer cancel()
		err := redis(c)
		if err != nil {
			s.log.Debug("readiness: redis check failed", "err", err)
		}
		return err
	}, s.o.ReadyInterval))
	s.http.Health.AddReadinessCheck("server", s.checks.Server)
	return s.http.Serve(ctx)
}
