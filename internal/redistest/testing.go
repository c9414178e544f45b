package redistest

import (
	"context"
	"errors"
	"os"
	"time"
)

// TB is the part of testing.TB the wrappers use; testing.TB satisfies it.
// The package does not import testing, so non-test programs can use it.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// wrapperTimeout bounds a start made by a New* wrapper.
const wrapperTimeout = 60 * time.Second

// handleStartErr fails or skips the test. A missing binary skips, unless CI
// is set: then it fails, so CI cannot pass without the binaries.
func handleStartErr(t TB, what string, err error) {
	t.Helper()
	if errors.Is(err, ErrBinaryMissing) && os.Getenv("CI") == "" {
		t.Skipf("skip: %s: %v (install redis-server, redis-sentinel, haproxy; CI fails instead of skipping)", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// NewRedis starts a redis-server for a test and closes it in Cleanup; its log
// is printed if the test failed.
func NewRedis(t TB, opts RedisOptions) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	r, err := StartRedis(ctx, opts)
	if err != nil {
		handleStartErr(t, "start redis-server", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- redis-server %s log:\n%s", r.Addr, r.Logs())
		}
		if err := r.Close(); err != nil {
			t.Logf("close redis-server %s: %v", r.Addr, err)
		}
	})
	return r
}

// NewSentinel starts a redis-sentinel for a test and closes it in Cleanup.
func NewSentinel(t TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	s, err := StartSentinel(ctx, opts)
	if err != nil {
		handleStartErr(t, "start redis-sentinel", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- redis-sentinel %s log:\n%s", s.Addr, s.Logs())
		}
		if err := s.Close(); err != nil {
			t.Logf("close redis-sentinel %s: %v", s.Addr, err)
		}
	})
	return s
}

// NewHAProxy starts haproxy for a test and closes it in Cleanup.
func NewHAProxy(t TB, opts HAProxyOptions) *HAProxy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	h, err := StartHAProxy(ctx, opts)
	if err != nil {
		handleStartErr(t, "start haproxy", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- haproxy %s log:\n%s", h.Addr, h.Logs())
		}
		if err := h.Close(); err != nil {
			t.Logf("close haproxy %s: %v", h.Addr, err)
		}
	})
	return h
}

// NewTopology starts a topology for a test, waits for WaitReady, and closes
// it in Cleanup (printing every log if the test failed).
func NewTopology(t TB, opts TopologyOptions) *Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	top, err := StartTopology(ctx, opts)
	if err != nil {
		handleStartErr(t, "start topology", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("topology logs:\n%s", top.Logs())
		}
		if err := top.Close(); err != nil {
			t.Logf("close topology: %v", err)
		}
	})
	if err := top.WaitReady(ctx); err != nil {
		t.Fatalf("%v", err)
	}
	return top
}
