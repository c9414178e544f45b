package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/internal/config"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// logLines hands log lines to the test (dropping them if it falls behind).
type logLines struct {
	ch chan string
}

func (b *logLines) Write(p []byte) (int, error) {
	select {
	case b.ch <- string(p):
	default:
	}
	return len(p), nil
}

// TestThroughHAProxy runs the service behind a real haproxy in TCP mode with
// send-proxy-v2 and an HTTP /ready check on the admin port, as shipped:
// messages are acked through the proxy, the logged client address is the
// real one, and a drain reaches the client as SHUTTING_DOWN and a clean close.
func TestThroughHAProxy(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	// The ingest's ports must be known before haproxy.cfg is written.
	dataPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env(map[string]string{
		"INGEST_REDIS_ADDR":     r.Addr,
		"INGEST_LISTEN_ADDR":    fmt.Sprintf("127.0.0.1:%d", dataPort),
		"INGEST_ADMIN_ADDR":     fmt.Sprintf("127.0.0.1:%d", adminPort),
		"INGEST_HTTP_ADDR":      "off",
		"INGEST_NOACK_ADDR":     "off",
		"INGEST_PROXY_PROTOCOL": "true",
		"INGEST_READY_INTERVAL": "100ms",
		"INGEST_DRAIN_DELAY":    "1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{ch: make(chan string, 10000)}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	isBound := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, func(bound) { close(isBound) }) }()
	select {
	case <-isBound:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}

	hp := redistest.NewHAProxy(t, redistest.HAProxyOptions{Ports: 1, Config: func(ports []int) string {
		return fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 1m
    timeout server 1m
frontend ingest
    bind 127.0.0.1:%d
    default_backend ingest
backend ingest
    option httpchk GET /ready
    http-check expect status 200
    server ingest1 127.0.0.1:%d check port %d inter 200ms fall 1 rise 1 send-proxy-v2
`, ports[0], dataPort, adminPort)
	}})

	// Wait until haproxy's check marked the server up.
	var nc net.Conn
	var rd *bufio.Reader
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err = net.Dial("tcp", hp.Addr)
		if err != nil {
			t.Fatal(err)
		}
		rd = bufio.NewReader(nc)
		_, _ = io.WriteString(nc, "hp-000000\n")
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := rd.ReadString('\n')
		if err == nil && line == "OK 1\n" {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no ack through haproxy: %q %v", line, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer nc.Close()
	client := nc.LocalAddr().String()
	found := false
	for !found {
		select {
		case l := <-logs.ch:
			found = strings.Contains(l, `"remote":"`+client+`"`)
		case <-time.After(5 * time.Second):
			t.Fatalf("client address %s (from the PROXY v2 header) not logged", client)
		}
	}
	for i := 1; i <= 100; i++ {
		_, _ = io.WriteString(nc, fmt.Sprintf("hp-%06d\n", i))
	}
	cancel()
	var last protocol.Reply
	for {
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("after %s: %v", last, err)
		}
		if last, err = protocol.ParseReply([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if !last.OK() {
			break
		}
	}
	if last.Code != protocol.CodeShuttingDown || last.N != 101 {
		t.Fatalf("got %s, want ERR 101 SHUTTING_DOWN", last)
	}
	if rest, err := io.ReadAll(rd); err != nil || len(rest) > 0 {
		t.Fatalf("want a clean close through haproxy, got %q %v", rest, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
