package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdmin(t *testing.T) {
	var redisErr, serverErr errBox
	redisErr.Store(errors.New("not checked yet"))
	serverErr.Store(errors.New("draining"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_total", Help: "test"}))
	for _, pprofOn := range []bool{false, true} {
		s, err := New(Options{Addr: "127.0.0.1:0", Pprof: pprofOn, ReadyInterval: 20 * time.Millisecond, ReadyTimeout: time.Second},
			Checks{
				Redis:  func(context.Context) error { return redisErr.Load() },
				Server: func() error { return serverErr.Load() },
			}, reg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		base := "http://" + s.Addr().String()

		waitReady := func(want int) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, _ := get(t, base+"/ready")
				if code == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("/ready = %d, want %d", code, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if code, _ := get(t, base+"/live"); code != http.StatusOK {
			t.Errorf("/live = %d", code)
		}
		waitReady(http.StatusServiceUnavailable)
		redisErr.Store(nil)
		waitReady(http.StatusServiceUnavailable) // still draining
		serverErr.Store(nil)
		waitReady(http.StatusOK)
		redisErr.Store(errors.New("redis down"))
		waitReady(http.StatusServiceUnavailable)
		if code, body := get(t, base+"/ready?full=1"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis down") {
			t.Errorf("/ready?full=1 = %d %q", code, body)
		}
		if _, body := get(t, base+"/metrics"); !strings.Contains(body, "sluice_test_total 0") {
			t.Errorf("/metrics lacks the registry's metric:\n%s", body)
		}
		if code, _ := get(t, base+"/debug/pprof/"); (code == http.StatusOK) != pprofOn {
			t.Errorf("pprof=%v: /debug/pprof/ = %d", pprofOn, code)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		redisErr.Store(errors.New("not checked yet"))
		serverErr.Store(errors.New("draining"))
	}
}

// errBox holds an error (nil included) for concurrent checks.
type errBox struct{ p atomic.Pointer[error] }

func (b *errBox) Store(err error) { b.p.Store(&err) }

func (b *errBox) Load() error {
	if e := b.p.Load(); e != nil {
		return *e
	}
	return nil
}
