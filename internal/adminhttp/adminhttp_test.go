package adminhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// start serves a Server on a free loopback port whose readiness follows
// *ready; it is shut down when the test ends and must return nil.
func start(t *testing.T, ready *atomic.Bool) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_adminhttp_test_total", Help: "test"}))
	s, err := New("127.0.0.1:0", reg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Health.AddReadinessCheck("test", func() error {
		if !ready.Load() {
			return errors.New("not ready yet")
		}
		return nil
	})
	s.Mux.HandleFunc("POST /extra", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "extra") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	})
	return s
}

func TestServer(t *testing.T) {
	var ready atomic.Bool
	s := start(t, &ready)
	base := "http://" + s.Addr().String()
	tests := []struct {
		name       string
		method     string
		path       string
		ready      bool
		wantStatus int
		wantBody   string
	}{
		{"live while not ready", http.MethodGet, "/live", false, http.StatusOK, ""},
		{"not ready", http.MethodGet, "/ready?full=1", false, http.StatusServiceUnavailable, "not ready yet"},
		{"ready", http.MethodGet, "/ready", true, http.StatusOK, ""},
		{"metrics of the passed registry", http.MethodGet, "/metrics", true, http.StatusOK, "sluice_adminhttp_test_total 0"},
		{"service route", http.MethodPost, "/extra", true, http.StatusOK, "extra"},
		{"unknown route", http.MethodGet, "/nope", true, http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("%s %s = %d %q, want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestNewAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = New(ln.Addr().String(), prometheus.NewRegistry(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "listen admin "+ln.Addr().String()) {
		t.Fatalf("New on a bound address: %v", err)
	}
}

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	s := start(t, &ready)
	_, port, _ := net.SplitHostPort(s.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	tests := []struct {
		name    string
		addr    string
		ready   bool
		wantErr string // empty: success
	}{
		{"ready, any interface", ":" + port, true, ""},
		{"ready, host ignored", "0.0.0.0:" + port, true, ""},
		{"not ready", ":" + port, false, "get http://127.0.0.1:" + port + "/ready: 503 Service Unavailable"},
		{"nothing listening", ":" + closedPort, true, "get http://127.0.0.1:" + closedPort + "/ready: "},
		{"not host:port", "8086", true, `T_ADMIN_ADDR "8086": `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			var out bytes.Buffer
			err := Healthcheck(context.Background(), "T_ADMIN_ADDR", tc.addr, &out)
			if tc.wantErr == "" {
				if err != nil || out.String() != "ready\n" {
					t.Fatalf("Healthcheck = %v, printed %q", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Healthcheck = %v, want an error containing %q", err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on failure", out.String())
			}
		})
	}
}

func TestLocalURL(t *testing.T) {
	tests := []struct{ addr, path, want, wantErr string }{
		{":8087", "/backup", "http://127.0.0.1:8087/backup", ""},
		{"10.0.0.5:8086", "/ready", "http://127.0.0.1:8086/ready", ""},
		{"[::]:9", "/ready", "http://127.0.0.1:9/ready", ""},
		{"", "/ready", "", `X_ADDR "": `},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := LocalURL("X_ADDR", tc.addr, tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LocalURL(%q) = %q, %v; want error %q", tc.addr, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("LocalURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
			}
		})
	}
}
