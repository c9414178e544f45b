package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/loadgen/internal/load"

	"github.com/sluice-ingest/sluice/internal/clitest"
	"github.com/sluice-ingest/sluice/internal/loadresult"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ingesttest.Remove()
	os.Exit(code)
}

// startStack starts redis-server and the real ingest binary; it returns
// the ingest's TCP and HTTP addresses.
func startStack(t *testing.T, opts ...ingesttest.Option) (r *redistest.Redis, data, web string) {
	t.Helper()
	r = redistest.NewRedis(t, redistest.RedisOptions{})
	in := ingesttest.Start(t, r.Addr, append([]ingesttest.Option{ingesttest.WithEnv("INGEST_DRAIN_DELAY", "0s")}, opts...)...)
	return r, in.DataAddr(), in.HTTPAddr()
}

func TestRunAgainstIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ingest binary")
	}
	r, addr, web := startStack(t)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, stdout, stderr string)
	}{
		{name: "table", args: []string{"-n", "20000", "-c", "4", "-size", "64", "-run-id", "tbl-"}, check: func(t *testing.T, stdout, stderr string) {
			for _, want := range []string{"throughput", "msgs/s", "ack latency p99.9", "unacked 0"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, stdout)
				}
			}
			if !strings.Contains(stderr, "acked") {
				t.Errorf("no progress bar on stderr: %q", stderr)
			}
		}},
		{name: "json, rate-limited, no progress", args: []string{"-n", "5000", "-c", "2", "-rate", "10000", "-json", "-no-progress", "-run-id", "js-"}, check: func(t *testing.T, stdout, stderr string) {
			var res loadresult.Result
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			if res.Acked != 5000 || res.Unacked != 0 || res.MsgsPerSec <= 0 || res.LatencyP99 <= 0 || res.LatencyP50 > res.LatencyP99 {
				t.Fatalf("result %+v", res)
			}
			// 5000 messages at 10000/s cannot take less than 0.5 s.
			if res.Seconds < 0.45 {
				t.Fatalf("rate limit not applied: %v s", res.Seconds)
			}
			if stderr != "" {
				t.Errorf("stderr not empty with -no-progress: %q", stderr)
			}
		}},
		{name: "http, bodies of 300 lines", args: []string{"-http", "-addr", web, "-batch", "300", "-n", "5000", "-c", "3", "-json", "-no-progress", "-run-id", "ht-"}, check: func(t *testing.T, stdout, stderr string) {
			var res loadresult.Result
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			if res.Acked != 5000 || res.Unacked != 0 || res.LatencyP99 <= 0 {
				t.Fatalf("result %+v", res)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-addr", addr}, tc.args...)
			if err := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("run %v: %v\nstderr: %s", args, err, stderr.String())
			}
			tc.check(t, stdout.String(), stderr.String())
		})
	}
	// Every payload in Redis is intact and unique.
	rc := r.Client()
	defer rc.Close()
	vals, err := rc.LRange(context.Background(), "data_queue", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vals {
		id := "tbl-"
		for _, p := range []string{"js-", "ht-"} {
			if strings.HasPrefix(v, p) {
				id = p
			}
		}
		if _, _, err := load.CheckPayload([]byte(v), id); err != nil {
			t.Fatalf("stored payload: %v", err)
		}
		seen[v] = true
	}
	if len(seen) != 30000 {
		t.Fatalf("%d distinct payloads stored, want 30000", len(seen))
	}
}

// TestRunFailsWhenUnacked: Redis is paused, so nothing is acked before the
// loadgen timeout; loadgen must report it and fail.
func TestRunFailsWhenUnacked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ingest binary")
	}
	r, addr, _ := startStack(t)
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Resume()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-addr", addr, "-n", "1000", "-c", "2", "-timeout", "2s", "-json", "-no-progress"},
		func(string) string { return "" }, &stdout, &stderr)
	if !errors.Is(err, errUnacked) {
		t.Fatalf("run = %v, want errUnacked", err)
	}
	var res loadresult.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("no JSON result on failure: %v\n%s", err, stdout.String())
	}
	if res.Unacked == 0 || res.Acked+res.Unacked != 1000 {
		t.Fatalf("result %+v, want unacked messages", res)
	}
}

// TestCommandLine runs main's path (run, then cli.Exit) for the command
// lines that end before any connection.
func TestCommandLine(t *testing.T) {
	clitest.Run(t, "loadgen", run, []clitest.Case{
		{Name: "help", Args: []string{"-h"}, WantCode: 0, WantStdout: []string{"usage: loadgen", "-window"}},
		{Name: "version", Args: []string{"-version"}, WantCode: 0, WantStdout: []string{"loadgen ", "(revision ", "go1."}},
		{Name: "unknown flag", Args: []string{"-bogus"}, WantCode: 2,
			WantStderr: []string{"usage: loadgen", "loadgen: flag provided but not defined: -bogus\n"}},
		{Name: "bad value", Args: []string{"-n", "many"}, WantCode: 2,
			WantStderr: []string{"usage: loadgen", `loadgen: invalid value "many" for flag -n`}},
		{Name: "every bad option at once", Args: []string{"-n", "0", "-c", "0", "-timeout", "0s"}, WantCode: 2,
			WantStderr: []string{"usage: loadgen", "loadgen: -n 0: need at least 1 message\n-c 0: need at least 1 connection\n", "-timeout 0s: must be > 0"}},
		{Name: "extra args", Args: []string{"x"}, WantCode: 2, WantStderr: []string{"usage: loadgen", `loadgen: unexpected arguments ["x"]`}},
	})
}

func TestUnackedError(t *testing.T) {
	tests := []struct {
		name   string
		errors []string
		want   string
	}{
		{name: "no cause recorded", want: "40 of 1000 messages left unacked"},
		{name: "one cause", errors: []string{"wait for acks: context deadline exceeded (conns 0-15)"},
			want: "40 of 1000 messages left unacked: wait for acks: context deadline exceeded (conns 0-15)"},
		{name: "causes one per line", errors: []string{"dial tcp 127.0.0.1:9501: connection refused (conns 0-1)", "wait for acks: context deadline exceeded (conn 2)"},
			want: "40 of 1000 messages left unacked; 2 causes:\n  dial tcp 127.0.0.1:9501: connection refused (conns 0-1)\n  wait for acks: context deadline exceeded (conn 2)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := unackedError(loadresult.Result{Messages: 1000, Unacked: 40, Errors: tc.errors})
			if err.Error() != tc.want || !errors.Is(err, errUnacked) {
				t.Errorf("unackedError = %q (is errUnacked: %v), want %q", err, errors.Is(err, errUnacked), tc.want)
			}
		})
	}
}
