package main

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunUsageAndConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, getenv(nil), &out, &errOut); err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(errOut.String(), "STATUS_REDIS_PASSWORD") {
		t.Errorf("-h does not list the variables:\n%s", errOut.String())
	}
	err := run(context.Background(), nil, getenv(map[string]string{"STATUS_TIMEOUT": "-1s"}), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "STATUS_TIMEOUT") {
		t.Errorf("bad STATUS_TIMEOUT: err = %v", err)
	}
}

// Nothing listens: every part is reported unreachable, the exit is an error.
func TestRunStackDown(t *testing.T) {
	closed := func() string {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	env := map[string]string{
		"STATUS_SENTINEL_ADDRS":     closed() + "," + closed(),
		"STATUS_INGEST_ADMIN":       closed(),
		"STATUS_HAPROXY_STATS_URL":  "http://" + closed() + "/stats;csv",
		"STATUS_BACKUP_METRICS_URL": "http://" + closed() + "/metrics",
		"STATUS_SAMPLE":             "10ms",
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), nil, getenv(env), &out, &errOut)
	if !errors.Is(err, errProblems) {
		t.Fatalf("err = %v, want errProblems", err)
	}
	for _, want := range []string{"master unknown: no Sentinel answered", "0/2 answered", "dial sentinel", "connection refused", "INGEST    0/1 ready", "dial ingest", "PROBLEMS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("screen lacks %q:\n%s", want, out.String())
		}
	}
}

// A real master, replica and two Sentinels (no ingest, HAProxy or backup).
func TestRunRedisAndSentinels(t *testing.T) {
	const pw = "status-test"
	master := redistest.NewRedis(t, redistest.RedisOptions{Password: pw})
	replica := redistest.NewRedis(t, redistest.RedisOptions{Password: pw, ReplicaOf: master.Addr})
	s1 := redistest.NewSentinel(t, redistest.SentinelOptions{MasterAddr: master.Addr, AuthPass: pw, Password: pw})
	s2 := redistest.NewSentinel(t, redistest.SentinelOptions{MasterAddr: master.Addr, AuthPass: pw, Password: pw})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := master.Client()
	defer c.Close()
	if err := c.RPush(ctx, "data_queue", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"STATUS_SENTINEL_ADDRS":     s1.Addr + "," + s2.Addr,
		"STATUS_SENTINEL_PASSWORD":  pw,
		"STATUS_REDIS_PASSWORD":     pw,
		"STATUS_INGEST_ADMIN":       "127.0.0.1:1",
		"STATUS_HAPROXY_STATS_URL":  "off",
		"STATUS_BACKUP_METRICS_URL": "off",
		"STATUS_SAMPLE":             "10ms",
	}
	// The replica's link comes up asynchronously: a bounded number of tries.
	var screen string
	for i := 0; i < 50; i++ {
		var out, errOut bytes.Buffer
		_ = run(ctx, nil, getenv(env), &out, &errOut) // ingest is unreachable: problems
		screen = out.String()
		if strings.Contains(screen, "replica  "+replica.Addr) && strings.Contains(screen, "online") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{
		"master   " + master.Addr,
		"replica  " + replica.Addr,
		"2/2 agree master " + master.Addr + ", quorum 2",
		"CKQUORUM OK",
		"data_queue length 3 on " + master.Addr,
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
}
