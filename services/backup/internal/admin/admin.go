// Package admin serves the backup admin HTTP endpoints: /live, /ready
// (heptiolabs/healthcheck), /metrics (a private Prometheus registry) and
// POST /backup, which takes a snapshot now and answers with its metadata.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/heptiolabs/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// Backend is what the admin server drives.
type Backend interface {
	Ready() error
	TakeNow(ctx context.Context) (*snapshot.Meta, error)
}

// Server is the admin HTTP server.
type Server struct {
	ln  net.Listener
	mux *http.ServeMux
	log *slog.Logger
}

// New binds the admin listener.
func New(addr string, b Backend, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", addr, err)
	}
	hc := healthcheck.NewHandler()
	hc.AddReadinessCheck("snapshot-age", b.Ready)
	s := &Server{ln: ln, mux: http.NewServeMux(), log: log}
	s.mux.Handle("/live", hc)
	s.mux.Handle("/ready", hc)
	s.mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	s.mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		m, err := b.TakeNow(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(m)
	})
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx }, // a shutdown cancels a snapshot in progress
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
