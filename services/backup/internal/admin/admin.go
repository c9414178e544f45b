// Package admin serves the backup admin HTTP endpoints: /live, /ready
// (heptiolabs/healthcheck), /metrics (a private Prometheus registry) and
// POST /backup, which takes a snapshot now and answers with its metadata.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/internal/adminhttp"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// Backend is what the admin server drives.
type Backend interface {
	Ready() error
	TakeNow(ctx context.Context) (*snapshot.Meta, error)
}

// Server is the admin HTTP server.
type Server struct {
	http *adminhttp.Server
}

// New binds the admin listener.
func New(addr string, b Backend, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	h, err := adminhttp.New(addr, gatherer, log)
	if err != nil {
		return nil, err
	}
	h.Health.AddReadinessCheck("snapshot-age", b.Ready)
	// the request's context ends with Serve's: a shutdown cancels a snapshot in progress
	h.Mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		m, err := b.TakeNow(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(m)
	})
	return &Server{http: h}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// Serve serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error { return s.http.Serve(ctx) }
