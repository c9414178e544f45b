package httpserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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

// testServer is a Server and its batcher on a real redis-server.
type testServer struct {
	*Server
	b      *batcher.Batcher
	url    string
	rdb    *redis.Client
	cancel context.CancelFunc
	done   chan error
}

type option func(*Options, *batcher.Options)

func withBudget(inflight, body int, wait time.Duration) option {
	return func(o *Options, b *batcher.Options) {
		b.MaxInflightBytes, o.MaxBodyBytes, o.BudgetWait = inflight, body, wait
	}
}

func withRetryTimeout(d time.Duration) option {
	return func(_ *Options, b *batcher.Options) { b.RetryTimeout = d }
}

func start(t *testing.T, redisAddr string, opts ...option) *testServer {
	t.Helper()
	o := Options{
		ListenAddr: "127.0.0.1:0", MaxFrameBytes: 100, MaxBodyBytes: 4096, BudgetWait: time.Second,
		MaxConns: 100, IdleTimeout: time.Minute, WriteTimeout: 5 * time.Second,
		DrainDelay: 100 * time.Millisecond, ShutdownTimeout: 20 * time.Second,
	}
	bo := batcher.Options{Lanes: 2, BatchMax: 4, BatchLinger: 100 * time.Microsecond, MaxInflightBytes: 1 << 20, RetryTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o, &bo)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	sm := store.NewMetrics(reg)
	rdb := store.NewClient(store.ClientOptions{Redis: redisconn.Config{RedisAddr: redisAddr}, Timeout: 2 * time.Second, WaitTimeout: 200 * time.Millisecond, PoolSize: 4}, sm, log)
	w := store.NewWriter(rdb, store.WriterOptions{Key: testKey, Logger: log, Metrics: sm, MaxBackoff: 100 * time.Millisecond})
	b, err := batcher.New(bo, func() batcher.Pusher { return w.NewFlusher() }, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(o, b, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, b: b, url: "http://" + s.Addr().String() + Path, rdb: rdb, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- b.Serve(ctx, o.ShutdownTimeout, s.Serve) }()
	t.Cleanup(func() {
		cancel()
		<-ts.done
		rdb.Close()
	})
	return ts
}

type result struct {
	status     int
	retryAfter string
	Accepted   int    `json:"accepted"`
	Code       string `json:"code"`
	Error      string `json:"error"`
}

func (ts *testServer) do(t *testing.T, method string, body io.Reader, header http.Header) result {
	t.Helper()
	req, err := http.NewRequest(method, ts.url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return r
}

func gzipped(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return buf.Bytes()
}

// onlyReader hides the length of a body, so the request is chunked.
type onlyReader struct{ io.Reader }

func TestPost(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ts := start(t, r.Addr)
	long := strings.Repeat("x", 101)
	big := strings.Repeat("0123456789abcde\n", 300) // 4800 bytes > 4096
	tests := []struct {
		name       string
		method     string
		body       func() io.Reader
		header     http.Header
		wantStatus int
		wantCode   string
		want       []string // the list afterwards
	}{
		{
			name: "lines, CRLF, empty lines, last line without newline", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("a\r\n\nb\n\r\nc") },
			header:     http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
			wantStatus: 200, want: []string{"a", "b", "c"},
		},
		{
			name: "ndjson, more lines than a batch, in order", method: http.MethodPost,
			body: func() io.Reader {
				return strings.NewReader("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n{\"n\":6}\n")
			},
			header:     http.Header{"Content-Type": {"application/x-ndjson"}},
			wantStatus: 200, want: []string{`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`, `{"n":6}`},
		},
		{
			name: "no content type", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("plain\n") },
			wantStatus: 200, want: []string{"plain"},
		},
		{
			name: "gzip", method: http.MethodPost,
			body:       func() io.Reader { return bytes.NewReader(gzipped("z1\nz2\n")) },
			header:     http.Header{"Content-Encoding": {"gzip"}},
			wantStatus: 200, want: []string{"z1", "z2"},
		},
		{
			name: "chunked body", method: http.MethodPost,
			body:       func() io.Reader { return onlyReader{strings.NewReader("c1\nc2\n")} },
			wantStatus: 200, want: []string{"c1", "c2"},
		},
		{
			name: "empty body", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("\n\n") },
			wantStatus: 200,
		},
		{
			name: "bad gzip", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("not gzip\n") },
			header:     http.Header{"Content-Encoding": {"gzip"}},
			wantStatus: 400, wantCode: CodeBadRequest,
		},
		{
			name: "truncated gzip", method: http.MethodPost,
			body:       func() io.Reader { g := gzipped("t1\nt2\n"); return bytes.NewReader(g[:len(g)-4]) },
			header:     http.Header{"Content-Encoding": {"gzip"}},
			wantStatus: 400, wantCode: CodeBadRequest,
		},
		{
			name: "GET", method: http.MethodGet,
			body:       func() io.Reader { return nil },
			wantStatus: 405, wantCode: CodeMethod,
		},
		{
			name: "form content type", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("a=b\n") },
			header:     http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			wantStatus: 415, wantCode: CodeMediaType,
		},
		{
			name: "unknown encoding", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("a\n") },
			header:     http.Header{"Content-Encoding": {"br"}},
			wantStatus: 415, wantCode: CodeMediaType,
		},
		{
			name: "a line over the frame limit: nothing stored", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader("ok-before\n" + long + "\nok-after\n") },
			wantStatus: 413, wantCode: protocol.CodeFrameTooLarge,
		},
		{
			name: "body over the limit, with Content-Length", method: http.MethodPost,
			body:       func() io.Reader { return strings.NewReader(big) },
			wantStatus: 413, wantCode: CodeBodyTooLarge,
		},
		{
			name: "body over the limit, chunked", method: http.MethodPost,
			body:       func() io.Reader { return onlyReader{strings.NewReader(big)} },
			wantStatus: 413, wantCode: CodeBodyTooLarge,
		},
		{
			name: "gzip that inflates over the limit", method: http.MethodPost,
			body:       func() io.Reader { return bytes.NewReader(gzipped(big)) },
			header:     http.Header{"Content-Encoding": {"gzip"}},
			wantStatus: 413, wantCode: CodeBodyTooLarge,
		},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ts.rdb.Del(ctx, testKey).Err(); err != nil {
				t.Fatal(err)
			}
			got := ts.do(t, tc.method, tc.body(), tc.header)
			if got.status != tc.wantStatus || got.Code != tc.wantCode {
				t.Fatalf("got %d %q (%s), want %d %q", got.status, got.Code, got.Error, tc.wantStatus, tc.wantCode)
			}
			if got.status == 200 && got.Accepted != len(tc.want) {
				t.Errorf("accepted %d, want %d", got.Accepted, len(tc.want))
			}
			if got.status != 200 && got.Error == "" {
				t.Error("error answer without a message")
			}
			stored, err := ts.rdb.LRange(ctx, testKey, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(stored, tc.want) && !(len(stored) == 0 && len(tc.want) == 0) {
				t.Errorf("stored %q, want %q", stored, tc.want)
			}
		})
	}
	if got := ts.b.Inflight(); got != 0 {
		t.Errorf("%d bytes of budget still taken after every request was answered", got)
	}
}

// TestBusy: while Redis stalls, requests hold the in-flight budget; one
// that cannot get its share within the budget wait gets 429 with
// Retry-After, and nothing of it is stored. The held requests are answered
// 200 once Redis is back.
func TestBusy(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ts := start(t, r.Addr, withBudget(1000, 500, 200*time.Millisecond), withRetryTimeout(time.Minute))
	body := func(p string) string {
		var b strings.Builder
		for i := 0; b.Len() < 450; i++ {
			fmt.Fprintf(&b, "%s-%03d\n", p, i)
		}
		return b.String()
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	held := make(chan result, 2)
	for _, p := range []string{"held1", "held2"} {
		go func() { held <- ts.do(t, http.MethodPost, strings.NewReader(body(p)), nil) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for ts.b.Inflight() < 800 {
		if time.Now().After(deadline) {
			t.Fatalf("in-flight bytes %d, want the two held requests' (>= 800)", ts.b.Inflight())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := ts.do(t, http.MethodPost, strings.NewReader(body("busy")), nil)
	if got.status != http.StatusTooManyRequests || got.Code != CodeBusy || got.retryAfter == "" {
		t.Fatalf("got %d %q Retry-After %q, want 429 %s with Retry-After", got.status, got.Code, got.retryAfter, CodeBusy)
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := <-held; got.status != 200 {
			t.Fatalf("held request: %d %s %s", got.status, got.Code, got.Error)
		}
	}
	vals, err := ts.rdb.LRange(context.Background(), testKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if strings.HasPrefix(v, "busy-") {
			t.Fatalf("%q of the refused request was stored", v)
		}
	}
}

// TestUnavailable: Redis down past the retry deadline is 503 with
// Retry-After and the flush's code.
func TestUnavailable(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ts := start(t, r.Addr, withRetryTimeout(500*time.Millisecond))
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	got := ts.do(t, http.MethodPost, strings.NewReader("u1\nu2\n"), nil)
	if got.status != http.StatusServiceUnavailable || got.Code != protocol.CodeUnavailable || got.retryAfter == "" {
		t.Fatalf("got %d %q Retry-After %q, want 503 %s with Retry-After", got.status, got.Code, got.retryAfter, protocol.CodeUnavailable)
	}
}

// TestDrain: a request in progress when the drain starts is answered 200
// once stored; the server then stops.
func TestDrain(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ts := start(t, r.Addr, withRetryTimeout(time.Minute))
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	answer := make(chan result, 1)
	go func() { answer <- ts.do(t, http.MethodPost, strings.NewReader("d1\nd2\n"), nil) }()
	for ts.b.Inflight() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ts.cancel()
	for ts.Ready() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := <-answer; got.status != 200 || got.Accepted != 2 {
		t.Fatalf("request in progress at drain: %d %q %s", got.status, got.Code, got.Error)
	}
	if err := <-ts.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	ts.done <- nil // for Cleanup
}
