package tcpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

const testKey = "data_queue"

// testOpts are the server's and its batcher's options (no field names
// in common).
type testOpts struct {
	serverOptions
	batchOptions
}

type (
	serverOptions = Options
	batchOptions  = batcher.Options
)

// testOptions are small, fast settings for tests.
func testOptions() testOpts {
	return testOpts{
		serverOptions: Options{
			ListenAddr:      "127.0.0.1:0",
			MaxFrameBytes:   1 << 16,
			MaxConns:        1000,
			IdleTimeout:     time.Minute,
			FrameTimeout:    30 * time.Second,
			Buffers:         NewBuffers(4<<20, prometheus.NewRegistry()),
			WriteTimeout:    5 * time.Second,
			DrainDelay:      100 * time.Millisecond,
			ShutdownTimeout: 20 * time.Second,
			CloseLinger:     2 * time.Second,
		},
		batchOptions: batcher.Options{
			Lanes:            3,
			BatchMax:         64,
			BatchLinger:      100 * time.Microsecond,
			MaxInflightBytes: 1 << 20,
			RetryTimeout:     10 * time.Second,
		},
	}
}

// startTCP runs a Server and its batcher (as the service does) until
// ctx is cancelled; done is closed when both returned.
func startTCP(ctx context.Context, o testOpts, newPusher func() batcher.Pusher, log *slog.Logger, reg prometheus.Registerer) (*Server, *batcher.Batcher, <-chan error, error) {
	b, err := batcher.New(o.batchOptions, newPusher, log, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	srv, err := New(o.serverOptions, b, log, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, o.ShutdownTimeout, srv.Serve) }()
	return srv, b, done, nil
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	b      *batcher.Batcher
	rdb    *redis.Client
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // Serve's result, valid after done
}

// stop cancels Serve (SIGTERM) and returns its result.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case <-ts.done:
		return ts.err
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not return within 60s after cancel")
		return nil
	}
}

type redisTarget struct {
	addr             string
	password         string
	sentinelPassword string
	sentinelAddrs    []string
	minReplicas      int
	waitTimeout      time.Duration
	maxQueueLen      int64
}

// startServer runs a Server against real Redis until the test ends.
func startServer(t *testing.T, target redisTarget, o testOpts) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	sm := store.NewMetrics(reg)
	if target.waitTimeout == 0 {
		target.waitTimeout = 200 * time.Millisecond
	}
	rdb := store.NewClient(store.ClientOptions{
		Redis: redisconn.Config{
			RedisAddr: target.addr, SentinelAddrs: target.sentinelAddrs, SentinelMaster: redistest.MasterName,
			RedisPassword: target.password, SentinelPassword: target.sentinelPassword,
		},
		Timeout: 2 * time.Second, WaitTimeout: target.waitTimeout, PoolSize: o.Lanes + 2,
	}, sm, log)
	w := store.NewWriter(rdb, store.WriterOptions{
		Key: testKey, MinReplicas: target.minReplicas, WaitTimeout: target.waitTimeout, MaxQueueLen: target.maxQueueLen,
		Logger: log, Metrics: sm, MaxBackoff: 200 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	srv, b, done, err := startTCP(ctx, o, func() batcher.Pusher { return w.NewFlusher() }, log, reg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, b: b, rdb: rdb, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		ts.err = <-done
		close(ts.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(60 * time.Second):
			t.Error("Serve did not return in cleanup")
		}
		rdb.Close()
		if t.Failed() {
			t.Logf("----- ingest log (warnings and errors, tail):\n%s", tailLines(important(logs.String()), 60))
		}
	})
	return ts
}

func important(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `"level":"DEBUG"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rawClient speaks the protocol over a plain TCP socket.
type rawClient struct {
	t  *testing.T
	nc *net.TCPConn
	r  *bufio.Reader
}

func dial(t *testing.T, addr net.Addr) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc.(*net.TCPConn), r: bufio.NewReader(nc)}
}

// sockopt is a setsockopt of a test client's socket, made before it
// connects.
type sockopt struct{ level, name, value int }

// dialerWith dials with the given socket options.
func dialerWith(opts ...sockopt) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, o := range opts {
				serr = errors.Join(serr, syscall.SetsockoptInt(int(fd), o.level, o.name, o.value))
			}
		})
		return errors.Join(err, serr)
	}}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// reply reads one server line within timeout.
func (c *rawClient) reply(timeout time.Duration) (protocol.Reply, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return protocol.Reply{}, err
	}
	return protocol.ParseReply(line)
}

// waitAck reads replies until OK n >= want; it fails on an error reply.
func (c *rawClient) waitAck(want uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last uint64
	for last < want {
		r, err := c.reply(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for OK %d (last OK %d): %v", want, last, err)
		}
		if !r.OK() {
			c.t.Fatalf("waiting for OK %d: got %s", want, r)
		}
		if r.N < last {
			c.t.Fatalf("ack went backwards: %d after %d", r.N, last)
		}
		last = r.N
	}
	if last != want {
		c.t.Fatalf("acked %d, want %d", last, want)
	}
}

// expectCleanEOF reads until EOF and fails on a reset or leftover data.
func (c *rawClient) expectCleanEOF(timeout time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	rest, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("want a clean close (FIN), got %v", err)
	}
	if len(rest) > 0 {
		c.t.Fatalf("unexpected data before close: %q", rest)
	}
}

func lrange(t *testing.T, addr string) []string {
	t.Helper()
	return lrangeAuth(t, addr, "")
}

func lrangeAuth(t *testing.T, addr, password string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vals, err := c.LRange(ctx, testKey, 0, -1).Result()
	if err != nil {
		t.Fatalf("LRANGE %s on %s: %v", testKey, addr, err)
	}
	return vals
}

// checkOrder verifies that for every prefix the messages prefix-0..n-1
// appear in order (first occurrences; duplicates from retries allowed).
func checkOrder(t *testing.T, vals []string, prefixes []string, n int) {
	t.Helper()
	next := firstInOrder(t, vals)
	for _, p := range prefixes {
		if next[p] != n {
			t.Errorf("%s: %d of %d messages stored in order", p, next[p], n)
		}
	}
}

// firstInOrder fails unless, per prefix, the first occurrences of messages
// are 0, 1, 2, ... with no gap; it returns how many each prefix has.
func firstInOrder(t *testing.T, vals []string) map[string]int {
	t.Helper()
	next := map[string]int{}
	for _, v := range vals {
		p, idx, ok := splitMsg(v)
		if !ok {
			continue
		}
		switch {
		case idx == next[p]:
			next[p]++
		case idx < next[p]:
			// a duplicate of an earlier message (at least once)
		default:
			t.Fatalf("%s: message %d stored before %d", p, idx, next[p])
		}
	}
	return next
}

func msg(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }

func splitMsg(v string) (string, int, bool) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return "", 0, false
	}
	var n int
	if _, err := fmt.Sscanf(v[i+1:], "%d", &n); err != nil {
		return "", 0, false
	}
	return v[:i], n, true
}

func isReset(err error) bool {
	return err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset"))
}
