package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// fakeServer is a unit-level stand-in for the ingest server: it stores every
// frame it reads and acks with "OK n", unless its behave function decides
// otherwise for the frame. It tests parsing and resend logic only; the real
// server is exercised in the integration tests.
type fakeServer struct {
	ln net.Listener
	// behave is called for the i-th frame (1-based) of connection conn
	// (0-based) before it is stored. It returns what to do.
	behave func(conn, i int) action

	mu     sync.Mutex
	stored []string // every stored frame, in order of storage
	conns  int
}

type action int

const (
	store       action = iota // store and ack
	storeNoAck                // store, do not ack, keep reading
	dropConn                  // close the connection without storing
	storeDrop                 // store, then close without acking it
	errUnavail                // send ERR <acked> UNAVAILABLE and close
	errTooLarge               // send ERR <acked> FRAME_TOO_LARGE and close
)

func newFakeServer(t *testing.T, behave func(conn, i int) action) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &fakeServer{ln: ln, behave: behave}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			idx := s.conns
			s.conns++
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c, idx)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *fakeServer) serve(c net.Conn, idx int) {
	defer c.Close()
	d := protocol.NewDecoder(c, 1<<20)
	defer d.Release()
	var n uint64
	for {
		f, err := d.ReadFrame()
		if err != nil {
			return
		}
		act := store
		if s.behave != nil {
			act = s.behave(idx, int(n)+1)
		}
		switch act {
		case dropConn:
			return
		case errUnavail:
			c.Write(protocol.AppendErr(nil, n, protocol.CodeUnavailable, "redis down"))
			return
		case errTooLarge:
			c.Write(protocol.AppendErr(nil, n, protocol.CodeFrameTooLarge, "too big"))
			return
		}
		s.mu.Lock()
		s.stored = append(s.stored, string(f))
		s.mu.Unlock()
		n++
		switch act {
		case storeDrop:
			return
		case store:
			if _, err := c.Write(protocol.AppendOK(nil, n)); err != nil {
				return
			}
		}
	}
}

func (s *fakeServer) Stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.stored...)
}

func msg(i int) []byte { return []byte("m" + strconv.Itoa(i)) }

// checkStored verifies that every message 1..n is stored and that the first
// copies appear in order (duplicates from resends are allowed).
func checkStored(t *testing.T, stored []string, n int) (dups int) {
	t.Helper()
	seen := map[string]bool{}
	next := 1
	for _, s := range stored {
		if seen[s] {
			dups++
			continue
		}
		seen[s] = true
		if s != string(msg(next)) {
			t.Fatalf("stored %q where first copy of %q expected", s, msg(next))
		}
		next++
	}
	if next-1 != n {
		t.Fatalf("stored %d distinct messages, want %d", next-1, n)
	}
	return dups
}

func TestClientDelivers(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		behave func(conn, i int) action
		// wantReconnect: the client must have needed more than one connection.
		wantReconnect bool
		// window is MaxUnacked (default 64).
		window int
	}{
		{name: "plain", n: 2000},
		// Large writes: the server acks parts of a chunk before Write
		// returns; that must not look like an ack of unwritten data.
		{name: "large window, one connection", n: 200_000, window: 100_000},
		{name: "drop without storing", n: 500, wantReconnect: true, behave: func(conn, i int) action {
			if conn < 3 && i == 100 {
				return dropConn
			}
			return store
		}},
		{name: "stored but ack lost", n: 500, wantReconnect: true, behave: func(conn, i int) action {
			if conn < 3 && i == 50 {
				return storeDrop
			}
			return store
		}},
		{name: "unacked tail then drop", n: 500, wantReconnect: true, behave: func(conn, i int) action {
			switch {
			case conn == 0 && i > 200 && i < 210:
				return storeNoAck
			case conn == 0 && i == 210:
				return dropConn
			}
			return store
		}},
		{name: "ERR UNAVAILABLE", n: 500, wantReconnect: true, behave: func(conn, i int) action {
			if conn < 2 && i == 120 {
				return errUnavail
			}
			return store
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, tc.behave)
			var mu sync.Mutex
			var acks []uint64
			window := tc.window
			if window == 0 {
				window = 64
			}
			c, err := Dial(t.Context(), Config{
				Addr: srv.ln.Addr().String(), MaxUnacked: window, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
				OnAck: func(n uint64) { mu.Lock(); acks = append(acks, n); mu.Unlock() },
			})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for i := 1; i <= tc.n; i++ {
				seq, err := c.Send(ctx, msg(i))
				if err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				if seq != uint64(i) {
					t.Fatalf("send %d got seq %d", i, seq)
				}
			}
			if err := c.WaitAcked(ctx); err != nil {
				t.Fatalf("wait: %v (status %+v)", err, c.Status())
			}
			st := c.Close()
			if st.Acked != uint64(tc.n) || st.Queued != uint64(tc.n) || st.Written != uint64(tc.n) {
				t.Fatalf("status %+v, want all %d acked", st, tc.n)
			}
			if got := st.Outcome(uint64(tc.n)); got != Acked {
				t.Fatalf("outcome of last = %v", got)
			}
			if got := st.Outcome(uint64(tc.n) + 1); got != Unsent {
				t.Fatalf("outcome past the end = %v", got)
			}
			if !tc.wantReconnect && st.Connects != 1 {
				t.Fatalf("connects = %d on a server that never drops", st.Connects)
			}
			if tc.wantReconnect && st.Connects < 2 {
				t.Fatalf("connects = %d, want a reconnect", st.Connects)
			}
			if tc.wantReconnect && st.Resent == 0 {
				t.Fatalf("resent = 0 after a reconnect with unacked messages: %+v", st)
			}
			dups := checkStored(t, srv.Stored(), tc.n)
			t.Logf("connects %d, resent %d, duplicates stored %d", st.Connects, st.Resent, dups)
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < len(acks); i++ {
				if acks[i] <= acks[i-1] {
					t.Fatalf("OnAck not increasing: %d then %d", acks[i-1], acks[i])
				}
			}
			if len(acks) == 0 || acks[len(acks)-1] != uint64(tc.n) {
				t.Fatalf("last OnAck %v, want %d", acks[len(acks)-1:], tc.n)
			}
		})
	}
}

func TestClientRejectedFrameIsTerminal(t *testing.T) {
	srv := newFakeServer(t, func(conn, i int) action {
		if i == 3 {
			return errTooLarge
		}
		return store
	})
	c, err := Dial(t.Context(), Config{Addr: srv.ln.Addr().String()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := 1; i <= 5; i++ {
		c.Send(ctx, msg(i))
	}
	err = c.WaitAcked(ctx)
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("wait err = %v, want ErrRejected", err)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeFrameTooLarge {
		t.Fatalf("err %v does not carry the server code", err)
	}
	if st := c.Status(); st.Acked != 2 || st.Outcome(3) != Indeterminate {
		t.Fatalf("status %+v, want 2 acked and 3 indeterminate", st)
	}
	if _, err := c.Send(ctx, msg(6)); !errors.Is(err, ErrRejected) {
		t.Fatalf("send after terminal error = %v", err)
	}
}

func TestClientGivesUpAndReportsOutcomes(t *testing.T) {
	srv := newFakeServer(t, func(conn, i int) action {
		if i > 10 {
			return storeNoAck
		}
		return store
	})
	c, err := Dial(t.Context(), Config{
		Addr: srv.ln.Addr().String(), AckTimeout: 300 * time.Millisecond, ReconnectTimeout: 500 * time.Millisecond,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for i := 1; i <= 20; i++ {
		if _, err := c.Send(ctx, msg(i)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	// The server stops acking after 10 and then refuses to connect at all.
	waitUntil(t, func() bool { return c.Status().Written == 20 })
	srv.ln.Close()
	err = c.WaitAcked(ctx)
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("wait err = %v, want ErrGaveUp", err)
	}
	st := c.Close()
	want := map[uint64]Outcome{1: Acked, 10: Acked, 11: Indeterminate, 20: Indeterminate, 21: Unsent, 0: Unsent}
	for seq, o := range want {
		if got := st.Outcome(seq); got != o {
			t.Errorf("outcome(%d) = %v, want %v (status %+v)", seq, got, o, st)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("condition not reached in 10s")
}

func TestClientSendBlocksAtLimit(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		size int
		fit  int // sends that must succeed before blocking
	}{
		{name: "message count", cfg: Config{MaxUnacked: 5}, size: 10, fit: 5},
		{name: "bytes", cfg: Config{MaxUnackedBytes: 100}, size: 19, fit: 5}, // 5 x 20 bytes with '\n'
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newFakeServer(t, func(conn, i int) action {
				select {
				case <-release:
					return store
				default:
					return storeNoAck
				}
			})
			cfg := tc.cfg
			cfg.Addr = srv.ln.Addr().String()
			c, err := Dial(t.Context(), cfg)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			body := make([]byte, tc.size)
			for i := range body {
				body[i] = 'x'
			}
			for i := 0; i < tc.fit; i++ {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				_, err := c.Send(ctx, body)
				cancel()
				if err != nil {
					t.Fatalf("send %d: %v", i+1, err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			_, err = c.Send(ctx, body)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("send past the limit = %v, want it blocked until the deadline", err)
			}
			if st := c.Status(); st.Queued != uint64(tc.fit) {
				t.Fatalf("queued %d, want %d", st.Queued, tc.fit)
			}
		})
	}
}

func TestClientRejectsBadMessages(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, err := Dial(t.Context(), Config{Addr: srv.ln.Addr().String(), MaxFrame: 8})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	for _, m := range []string{"", "a\nb", "ab\r", "123456789"} {
		t.Run(fmt.Sprintf("%q", m), func(t *testing.T) {
			if _, err := c.Send(t.Context(), []byte(m)); err == nil {
				t.Fatalf("send %q accepted", m)
			}
		})
	}
	if st := c.Status(); st.Queued != 0 {
		t.Fatalf("queued %d bad messages", st.Queued)
	}
}

func TestDialFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(t.Context(), Config{Addr: addr}); err == nil {
		t.Fatalf("dial to a closed port succeeded")
	}
}

// BenchmarkSend measures Send through to the ack over loopback against the
// fake server (which acks every frame); allocs/op should round to 0.
func BenchmarkSend(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d := protocol.NewDecoder(c, 1<<20)
				var n uint64
				var out []byte
				for {
					if _, err := d.Fill(); err != nil {
						return
					}
					for {
						_, ok, err := d.Next()
						if err != nil || !ok {
							break
						}
						n++
					}
					out = protocol.AppendOK(out[:0], n)
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	c, err := Dial(context.Background(), Config{Addr: ln.Addr().String(), MaxUnacked: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	m := make([]byte, 100)
	for i := range m {
		m[i] = 'x'
	}
	ctx := context.Background()
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		b.Fatal(err)
	}
}
