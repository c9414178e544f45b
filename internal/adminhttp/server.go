// Package adminhttp provides the admin HTTP plumbing every sluice service
// shares: a server with /live and /ready (heptiolabs/healthcheck) and
// /metrics (promhttp on the service's own registry) that shuts down
// gracefully, and the client side of `<service> healthcheck`, which GETs
// /ready on the local admin port (the images are FROM scratch: no curl).
package adminhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/heptiolabs/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is an admin HTTP server. The service adds its readiness checks to
// Health and its own routes to Mux before Serve.
type Server struct {
	Health healthcheck.Handler // serves /live and /ready
	Mux    *http.ServeMux      // /live, /ready, /metrics and the service's routes

	ln  net.Listener
	log *slog.Logger
}

// New binds addr and routes /live, /ready and /metrics (gatherer's metrics).
func New(addr string, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", addr, err)
	}
	s := &Server{Health: healthcheck.NewHandler(), Mux: http.NewServeMux(), ln: ln, log: log}
	s.Mux.Handle("/live", s.Health)
	s.Mux.Handle("/ready", s.Health)
	s.Mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is cancelled, then shuts down gracefully (up to
// 5s). Requests' contexts derive from ctx, so the shutdown also cancels
// long requests (a snapshot in progress, a CPU profile).
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
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
