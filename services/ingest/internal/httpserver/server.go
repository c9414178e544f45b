// Package httpserver is the ingest HTTP front end: POST /v1/messages takes
// a body of newline-delimited messages, queues them in the batcher like a
// TCP connection's, and answers 200 {"accepted": n} only once all n are
// stored in Redis (and confirmed by WAIT when replicas are required).
package httpserver

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// Path is the one data endpoint.
const Path = "/v1/messages"

// Codes of the error answers that are not flush failures (those carry the
// protocol's codes: UNAVAILABLE, NOT_REPLICATED, QUEUE_FULL, SHUTTING_DOWN).
const (
	CodeBadRequest       = "BAD_REQUEST"
	CodeMethod           = "METHOD_NOT_ALLOWED"
	CodeMediaType        = "UNSUPPORTED_MEDIA_TYPE"
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeBusy             = "BUSY"
	retryAfterBusy       = "1"
	retryAfterUnavailabe = "5"
)

// Options configure a Server.
type Options struct {
	ListenAddr    string
	MaxFrameBytes int
	MaxBodyBytes  int // request body, after gzip decoding
	// BudgetWait is how long a request waits for the in-flight budget
	// before it gets 429.
	BudgetWait      time.Duration
	MaxConns        int
	IdleTimeout     time.Duration // keep-alive idle time; 0: none
	WriteTimeout    time.Duration // writing one answer
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
}

// Server is the ingest HTTP server.
type Server struct {
	o   Options
	ln  net.Listener
	b   *batcher.Batcher
	src *batcher.Source
	log *slog.Logger

	requests *prometheus.CounterVec
	draining atomic.Bool
}

// New binds the listener. Messages go to b.
func New(o Options, b *batcher.Batcher, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if o.MaxFrameBytes < 1 || o.MaxBodyBytes < 1 || o.MaxConns < 1 || o.WriteTimeout <= 0 || o.BudgetWait <= 0 {
		return nil, errors.New("http server options: max frame bytes, max body bytes, max conns, write timeout and budget wait must be positive")
	}
	ln, err := net.Listen("tcp", o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", o.ListenAddr, err)
	}
	s := &Server{
		o: o, ln: ln, b: b, src: b.Source("http"), log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_http_requests_total",
			Help: "HTTP requests to " + Path + ", by status code.",
		}, []string{"status"}),
	}
	for _, code := range []int{200, 400, 405, 413, 415, 429, 503} {
		s.requests.WithLabelValues(strconv.Itoa(code))
	}
	reg.MustRegister(s.requests)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready reports whether the server takes new requests.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// Serve serves until ctx is cancelled, then drains: keep serving for
// DrainDelay (while /ready is 503), then stop accepting and close idle
// connections, and wait for the requests in progress, whose messages are
// flushed and answered. Past ShutdownTimeout the connections are closed.
// The batcher must keep running until Serve returns.
func (s *Server) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.handle)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       s.o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(s.ln, s.o.MaxConns)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	start := time.Now()
	select {
	case <-time.After(s.o.DrainDelay):
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, cancel := context.WithDeadline(context.Background(), start.Add(s.o.ShutdownTimeout))
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("drain exceeded INGEST_SHUTDOWN_TIMEOUT (%s): %w", s.o.ShutdownTimeout, err)
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	s.log.Info("http requests drained", "took", time.Since(start).Round(time.Millisecond).String())
	return err
}

// errBusy: the budget stayed exhausted for BudgetWait.
var errBusy = errors.New("in-flight budget exhausted")

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, r, http.StatusMethodNotAllowed, CodeMethod, "use POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/plain" && mt != "application/x-ndjson") {
			s.fail(w, r, http.StatusUnsupportedMediaType, CodeMediaType, fmt.Sprintf("Content-Type %q: use text/plain or application/x-ndjson", ct))
			return
		}
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, int64(s.o.MaxBodyBytes)))
	sizeHint := r.ContentLength
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.bodyError(w, r, err)
			return
		}
		defer zr.Close()
		body, sizeHint = zr, -1
	default:
		s.fail(w, r, http.StatusUnsupportedMediaType, CodeMediaType, fmt.Sprintf("Content-Encoding %q: use gzip or none", enc))
		return
	}
	if sizeHint > int64(s.o.MaxBodyBytes) {
		s.fail(w, r, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, s.tooLarge())
		return
	}
	data, charged, err := s.readBody(r.Context(), body, sizeHint)
	defer func() { s.b.Release(charged) }()
	if err != nil {
		s.bodyError(w, r, err)
		return
	}
	// Check every line before queueing any: a rejected request stores
	// nothing.
	n := 0
	lines := protocol.NewLines(data, s.o.MaxFrameBytes)
	for {
		_, ok, err := lines.Next()
		if err != nil {
			s.src.Rejected(protocol.CodeFrameTooLarge, 1)
			s.fail(w, r, http.StatusRequestEntityTooLarge, protocol.CodeFrameTooLarge, fmt.Sprintf("line %d: %v (INGEST_MAX_FRAME_BYTES)", n+1, err))
			return
		}
		if !ok {
			break
		}
		n++
	}
	if n > 0 {
		req := newRequest(n)
		_, bytes, _ := s.b.Lane().Append(s.src, req, protocol.NewLines(data, s.o.MaxFrameBytes).Next)
		charged -= bytes // the lane gives them back once flushed
		s.b.Release(charged)
		charged = 0
		select {
		case <-req.done:
		case <-r.Context().Done():
			// The client is gone; its messages are stored all the same.
			return
		}
		if f := req.failure(); f != nil {
			w.Header().Set("Retry-After", retryAfterUnavailabe)
			s.fail(w, r, http.StatusServiceUnavailable, f.Code, f.Text)
			return
		}
	}
	s.answer(w, http.StatusOK, map[string]any{"accepted": n})
}

// readBody reads the whole body, taking its bytes from the in-flight
// budget as it grows; charged is what it took.
func (s *Server) readBody(ctx context.Context, body io.Reader, sizeHint int64) (data []byte, charged int, err error) {
	grow := func(n int) error {
		wctx, cancel := context.WithTimeout(ctx, s.o.BudgetWait)
		defer cancel()
		if err := s.b.Acquire(wctx, n); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errBusy
		}
		charged += n
		next := make([]byte, len(data), cap(data)+n)
		copy(next, data)
		data = next
		return nil
	}
	if sizeHint > 0 {
		// +1 leaves room to see EOF without growing.
		if err := grow(int(sizeHint) + 1); err != nil {
			return nil, charged, err
		}
	}
	for {
		if len(data) == cap(data) {
			if len(data) > s.o.MaxBodyBytes {
				return nil, charged, &http.MaxBytesError{Limit: int64(s.o.MaxBodyBytes)}
			}
			if err := grow(min(max(cap(data), 64<<10), s.o.MaxBodyBytes+1-len(data))); err != nil {
				return nil, charged, err
			}
		}
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if errors.Is(err, io.EOF) {
			if len(data) > s.o.MaxBodyBytes {
				return nil, charged, &http.MaxBytesError{Limit: int64(s.o.MaxBodyBytes)}
			}
			return data, charged, nil
		}
		if err != nil {
			return nil, charged, err
		}
	}
}

func (s *Server) tooLarge() string {
	return fmt.Sprintf("body over %d bytes (INGEST_HTTP_MAX_BODY_BYTES)", s.o.MaxBodyBytes)
}

func (s *Server) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.fail(w, r, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, s.tooLarge())
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", retryAfterBusy)
		s.fail(w, r, http.StatusTooManyRequests, CodeBusy, fmt.Sprintf("%v for %s (INGEST_MAX_INFLIGHT_BYTES); retry later", err, s.o.BudgetWait))
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF):
		s.fail(w, r, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("bad gzip body: %v", err))
	default:
		s.fail(w, r, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("read body: %v", err))
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, text string) {
	s.log.Info("http request refused", "remote", r.RemoteAddr, "forwarded_for", r.Header.Get("X-Forwarded-For"),
		"status", status, "code", code, "err", text)
	s.answer(w, status, map[string]any{"code": code, "error": text})
}

func (s *Server) answer(w http.ResponseWriter, status int, v any) {
	s.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// request is the batcher.Producer of one request's messages.
type request struct {
	want      int
	abandoned atomic.Bool
	done      chan struct{}

	mu      sync.Mutex
	settled int
	fail    *batcher.Failure
}

func newRequest(n int) *request { return &request{want: n, done: make(chan struct{})} }

func (q *request) Queued(int) {}

func (q *request) Abandoned() bool { return q.abandoned.Load() }

func (q *request) Settle(n int, f *batcher.Failure) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return
	}
	if f != nil {
		// The client resends the whole body: the rest need not be stored.
		q.fail = f
		q.abandoned.Store(true)
		close(q.done)
		return
	}
	q.settled += n
	if q.settled == q.want {
		close(q.done)
	}
}

func (q *request) failure() *batcher.Failure {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.fail
}
