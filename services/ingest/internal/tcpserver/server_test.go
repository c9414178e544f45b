package tcpserver

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// TestAcksAndOrder: several concurrent raw-socket connections, messages
// split at random byte boundaries, some with "\r\n" and empty frames in
// between; every connection is acked in full and LRANGE shows each
// connection's messages in order.
func TestAcksAndOrder(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ts := startServer(t, redisTarget{addr: r.Addr}, testOptions())
	const conns, perConn = 8, 3000
	var wg sync.WaitGroup
	prefixes := make([]string, conns)
	for i := range conns {
		prefixes[i] = fmt.Sprintf("c%d", i)
		c := dial(t, ts.Addr())
		wg.Go(func() {
			var b strings.Builder
			for j := range perConn {
				b.WriteString(msg(prefixes[i], j))
				switch j % 5 {
				case 0:
					b.WriteString("\r\n")
				case 1:
					b.WriteString("\n\n\r\n") // empty frames are not counted
				default:
					b.WriteString("\n")
				}
			}
			data := b.String()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			go func() {
				for len(data) > 0 {
					n := min(len(data), 1+rng.IntN(3000))
					if _, err := io.WriteString(c.nc, data[:n]); err != nil {
						return
					}
					data = data[n:]
				}
			}()
			c.waitAck(perConn, 60*time.Second)
		})
	}
	wg.Wait()
	vals := lrange(t, r.Addr)
	if len(vals) != conns*perConn {
		t.Errorf("LRANGE has %d values, want %d", len(vals), conns*perConn)
	}
	checkOrder(t, vals, prefixes, perConn)
}

// TestProtocol sends raw bytes to a real listener and checks the exact
// replies and the clean close.
func TestProtocol(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.MaxFrameBytes = 100
	o.MaxInflightBytes = 1 << 20
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	tests := []struct {
		name   string
		send   string
		half   bool     // close our write side after sending
		want   []string // replies, in order, after coalescing is removed
		stored []string
	}{
		{
			name: "eof gets final ack", send: "p1-a\r\n\n\np1-b\n", half: true,
			want: []string{"OK 2"}, stored: []string{"p1-a", "p1-b"},
		},
		{
			name: "oversize frame", send: "p2-a\np2-b\n" + strings.Repeat("x", 101) + "\np2-c\n",
			want: []string{"OK 2", "ERR 2 FRAME_TOO_LARGE"}, stored: []string{"p2-a", "p2-b"},
		},
		{
			name: "oversize frame without newline", send: "p3-a\n" + strings.Repeat("y", 500),
			want: []string{"OK 1", "ERR 1 FRAME_TOO_LARGE"}, stored: []string{"p3-a"},
		},
		{
			name: "exactly max frame", send: "p4-" + strings.Repeat("z", 97) + "\r\n", half: true,
			want: []string{"OK 1"}, stored: []string{"p4-" + strings.Repeat("z", 97)},
		},
		{
			name: "nothing sent", send: "\n\r\n", half: true,
			want: nil, stored: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.Addr())
			c.send(tc.send)
			if tc.half {
				_ = c.nc.CloseWrite()
			}
			var got []string
			var last uint64
			for {
				rep, err := c.reply(20 * time.Second)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				// Acks may be coalesced: keep only the last OK before an error.
				if rep.OK() && len(got) > 0 && strings.HasPrefix(got[len(got)-1], "OK ") {
					got = got[:len(got)-1]
				}
				if rep.N < last {
					t.Fatalf("ack went backwards: %s after %d", rep, last)
				}
				last = rep.N
				s := rep.String()
				if !rep.OK() {
					s = fmt.Sprintf("ERR %d %s", rep.N, rep.Code)
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("replies %q, want %q", got, tc.want)
			}
			var stored []string
			for _, v := range lrange(t, r.Addr) {
				for _, w := range tc.stored {
					if v == w {
						stored = append(stored, v)
					}
				}
			}
			if strings.Join(stored, "|") != strings.Join(tc.stored, "|") {
				t.Fatalf("stored %q, want %q", stored, tc.stored)
			}
		})
	}
}

// TestTooManyConnections: over the cap, a client gets ERR 0
// TOO_MANY_CONNECTIONS and a clean close; /ready reports the cap.
func TestTooManyConnections(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.MaxConns = 2
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	a, b := dial(t, ts.Addr()), dial(t, ts.Addr())
	a.send("m-1\n")
	b.send("m-2\n")
	a.waitAck(1, 10*time.Second)
	b.waitAck(1, 10*time.Second)
	if err := ts.Ready(); err == nil {
		t.Error("Ready() = nil with the connection cap reached")
	}
	c := dial(t, ts.Addr())
	rep, err := c.reply(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != protocol.CodeTooManyConnections || rep.N != 0 {
		t.Fatalf("got %s, want ERR 0 TOO_MANY_CONNECTIONS", rep)
	}
	c.expectCleanEOF(10 * time.Second)
}

// TestIdleTimeout: a silent connection gets IDLE_TIMEOUT and a clean close.
func TestIdleTimeout(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.IdleTimeout = 300 * time.Millisecond
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	c := dial(t, ts.Addr())
	c.send("idle-1\n")
	c.waitAck(1, 10*time.Second)
	start := time.Now()
	rep, err := c.reply(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != protocol.CodeIdleTimeout || rep.N != 1 {
		t.Fatalf("got %s, want ERR 1 IDLE_TIMEOUT", rep)
	}
	t.Logf("idle close after %s", time.Since(start))
	c.expectCleanEOF(10 * time.Second)
}

// TestDrain: cancelling Serve (SIGTERM) acks everything read, then sends
// SHUTTING_DOWN and closes cleanly; Serve returns nil.
func TestDrain(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.DrainDelay = 300 * time.Millisecond
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	const conns, perConn = 4, 2000
	clients := make([]*rawClient, conns)
	prefixes := make([]string, conns)
	for i := range clients {
		prefixes[i] = fmt.Sprintf("drain%d", i)
		clients[i] = dial(t, ts.Addr())
		var b strings.Builder
		for j := range perConn {
			b.WriteString(msg(prefixes[i], j) + "\n")
		}
		clients[i].send(b.String())
	}
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(t) }()
	for i, c := range clients {
		var last protocol.Reply
		for {
			rep, err := c.reply(30 * time.Second)
			if err != nil {
				t.Fatalf("conn %d: after %s: %v", i, last, err)
			}
			if !rep.OK() {
				last = rep
				break
			}
			last = rep
		}
		if last.Code != protocol.CodeShuttingDown {
			t.Fatalf("conn %d: got %s, want SHUTTING_DOWN", i, last)
		}
		if last.N != perConn {
			t.Errorf("conn %d: drained with ERR %d, want every one of the %d messages sent before the drain acked", i, last.N, perConn)
		}
		c.expectCleanEOF(10 * time.Second)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	checkOrder(t, lrange(t, r.Addr), prefixes, perConn)
	if _, err := net.DialTimeout("tcp", ts.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after the drain")
	}
}

// TestRedisStoppedAndRestarted: with Redis down, a connection gets no acks
// and then UNAVAILABLE after the retry deadline; a writer that keeps
// sending is pushed back (memory stays within the budget); after a
// restart acks resume.
func TestRedisStoppedAndRestarted(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.RetryTimeout = 2 * time.Second
	o.MaxInflightBytes = 256 << 10
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	c := dial(t, ts.Addr())
	c.send("down-000000\n")
	c.waitAck(1, 10*time.Second)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}

	// Flood: the server stops reading once the budget is used.
	flood := dial(t, ts.Addr())
	line := strings.Repeat("f", 99) + "\n"
	chunk := strings.Repeat(line, 1000) // 100 kB
	sent := 0
	for sent < 64<<20 {
		_ = flood.nc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := io.WriteString(flood.nc, chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= 64<<20 {
		t.Fatalf("server read all %d bytes while Redis was down: no backpressure", sent)
	}
	inflight := ts.b.Inflight()
	t.Logf("flood: client wrote %d kB before TCP pushed back; in flight %d kB (budget %d kB)", sent>>10, inflight>>10, o.MaxInflightBytes>>10)
	if inflight > int64(o.MaxInflightBytes) {
		t.Fatalf("in flight %d > budget %d", inflight, o.MaxInflightBytes)
	}

	start := time.Now()
	c.send("down-000001\ndown-000002\n")
	rep, err := c.reply(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first reply while Redis is down after %s: %s", time.Since(start).Round(time.Millisecond), rep)
	if rep.Code != protocol.CodeUnavailable || rep.N != 1 {
		t.Fatalf("got %s, want ERR 1 UNAVAILABLE", rep)
	}
	c.expectCleanEOF(10 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A write issued while Redis is down is acked once it is back.
	c2 := dial(t, ts.Addr())
	c2.send("back-000000\n")
	time.Sleep(300 * time.Millisecond) // let the first attempt fail
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c2.waitAck(1, 30*time.Second)
	c2.send("back-000001\n")
	c2.waitAck(2, 30*time.Second)
	vals := lrange(t, r.Addr)
	checkOrder(t, vals, []string{"back"}, 2)
}
