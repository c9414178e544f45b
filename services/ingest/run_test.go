package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/internal/config"

	"github.com/sluice-ingest/sluice/internal/cli"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunHelpAndConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantOut  []string
		wantErr  []string
		wantCode int
		wantUse  bool // the usage on stderr
	}{
		{name: "help", args: []string{"-h"}, wantOut: []string{"ingest healthcheck", "INGEST_LISTEN_ADDR", ":9501", "INGEST_SENTINEL_MASTER", "sluice", "INGEST_REDIS_RETRY_TIMEOUT", "30s"}},
		{name: "version", args: []string{"-version"}, wantOut: []string{"ingest ", "go1."}},
		{name: "no redis configured", args: nil, env: map[string]string{}, wantErr: []string{"INGEST_REDIS_ADDR"}, wantCode: 1},
		{name: "parse and validation errors together", env: map[string]string{"INGEST_REDIS_ADDR": "x:1", "INGEST_WRITERS": "0", "INGEST_LOG_LEVEL": "chatty", "INGEST_BATCH_MAX": "many"},
			wantErr: []string{"INGEST_WRITERS", "INGEST_LOG_LEVEL", "INGEST_BATCH_MAX"}, wantCode: 1},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: []string{"unknown command"}, wantCode: 2, wantUse: true},
		{name: "unknown flag", args: []string{"-frobnicate"}, wantErr: []string{"frobnicate"}, wantCode: 2, wantUse: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, env(tc.env), &out, &errb)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if got := strings.Contains(errb.String(), "Usage:"); got != tc.wantUse {
				t.Errorf("usage on stderr: %v, want %v", got, tc.wantUse)
			}
			var printed bytes.Buffer
			if code := cli.Exit("ingest", err, &printed); code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if err != nil && strings.Count(printed.String(), err.Error()) != 1 {
				t.Errorf("the error is not printed exactly once: %q", printed.String())
			}
		})
	}
}

func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := getStatus(url)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d, want %d", url, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeReadyHealthcheckMetrics runs the whole service against a real
// redis-server: /ready follows Redis reachability, `ingest healthcheck`
// follows /ready, /metrics serves the sluice metrics, and cancelling the
// context drains and returns nil.
func TestServeReadyHealthcheckMetrics(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	cfg, err := config.Load(env(map[string]string{
		"INGEST_REDIS_ADDR":     r.Addr,
		"INGEST_LISTEN_ADDR":    "127.0.0.1:0",
		"INGEST_ADMIN_ADDR":     "127.0.0.1:0",
		"INGEST_HTTP_ADDR":      "127.0.0.1:0",
		"INGEST_NOACK_ADDR":     "127.0.0.1:0",
		"INGEST_READY_INTERVAL": "100ms",
		"INGEST_DRAIN_DELAY":    "1s",
		"INGEST_LOG_LEVEL":      "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan bound, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, log, func(b bound) { addrs <- b })
	}()
	var data, web, admin net.Addr
	select {
	case a := <-addrs:
		data, web, admin = a.data, a.http, a.admin
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	base := "http://" + admin.String()
	hcEnv := env(map[string]string{"INGEST_ADMIN_ADDR": admin.String()})
	waitStatus(t, base+"/ready", http.StatusOK)
	if got := getStatus(base + "/live"); got != http.StatusOK {
		t.Errorf("/live = %d", got)
	}
	if err := run(ctx, []string{"healthcheck"}, hcEnv, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck while ready: %v", err)
	}

	nc, err := net.Dial("tcp", data.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("run-1\nrun-2\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := ""
	for !strings.HasSuffix(got, "OK 2\n") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("read acks (so far %q): %v", got, err)
		}
		got += string(buf[:n])
	}

	resp, err := http.Post("http://"+web.String()+"/v1/messages", "text/plain", strings.NewReader("run-3\nrun-4\nrun-5"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "{\"accepted\":3}\n" {
		t.Fatalf("POST /v1/messages: %d %q", resp.StatusCode, body)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{
		`sluice_ingest_messages_received_total{transport="tcp"} 2`, `sluice_ingest_messages_acked_total{transport="tcp"} 2`, `sluice_ingest_received_bytes_total{transport="tcp"} 10`,
		`sluice_ingest_messages_received_total{transport="http"} 3`, `sluice_ingest_messages_acked_total{transport="http"} 3`, `sluice_ingest_http_requests_total{status="200"} 1`,
		`sluice_ingest_messages_rejected_total{code="UNAVAILABLE",transport="tcp"} 0`, `sluice_ingest_connections_closed_total{reason="write_error",transport="tcp"} 0`,
		"sluice_ingest_batch_messages_bucket", "sluice_ingest_redis_write_duration_seconds_bucket", "sluice_ingest_ack_latency_seconds_bucket",
		`sluice_ingest_connections{transport="tcp"} 1`, "sluice_build_info{", `sluice_ingest_connections{transport="tcp_noack"} 0`, "sluice_ingest_inflight_bytes 0", "sluice_ingest_redis_failovers_total 0", "go_goroutines", "process_resident_memory_bytes",
		"\nsluice_ingest_draining 0\n",
	} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if getStatus(base+"/debug/pprof/") == http.StatusOK {
		t.Error("pprof served although INGEST_PPROF is false")
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/ready", http.StatusServiceUnavailable)
	if err := run(ctx, []string{"healthcheck"}, hcEnv, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passed while Redis is down")
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if err := r.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/ready", http.StatusOK)

	cancel()
	// Draining: not ready while the drain delay keeps serving, and the
	// service's one gauge says so.
	waitStatus(t, base+"/ready", http.StatusServiceUnavailable)
	if resp, err := http.Get(base + "/metrics"); err != nil {
		t.Errorf("/metrics while draining: %v", err)
	} else {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := strings.Count(string(body), "\nsluice_ingest_draining"); n != 1 || !strings.Contains(string(body), "\nsluice_ingest_draining 1\n") {
			t.Errorf("/metrics while draining: %d sluice_ingest_draining series, want one at 1", n)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
}
