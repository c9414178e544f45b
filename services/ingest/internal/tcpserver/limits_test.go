package tcpserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// TestProxyProtocol: with PROXY protocol on, the client address from the
// header is the one logged; a connection without a header is refused.
func TestProxyProtocol(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.ProxyProtocol = true
	ts := startServer(t, redisTarget{addr: r.Addr}, o)

	c := dial(t, ts.Addr())
	h := &proxyproto.Header{
		Version:           2,
		Command:           proxyproto.PROXY,
		TransportProtocol: proxyproto.TCPv4,
		SourceAddr:        &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242},
		DestinationAddr:   &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9501},
	}
	if _, err := h.WriteTo(c.nc); err != nil {
		t.Fatal(err)
	}
	c.send("pp-000000\n")
	c.waitAck(1, 10*time.Second)
	if logs := ts.logs.String(); !strings.Contains(logs, `"remote":"203.0.113.7:4242"`) {
		t.Fatalf("client address from the PROXY header not logged:\n%s", tailLines(logs, 10))
	}

	bare := dial(t, ts.Addr())
	bare.send("bare-000000\n")
	if rep, err := bare.reply(10 * time.Second); err == nil {
		t.Fatalf("connection without PROXY header got %s", rep)
	}
	for _, v := range lrange(t, r.Addr) {
		if strings.HasPrefix(v, "bare") || strings.HasPrefix(v, "PROXY") {
			t.Fatalf("message from a connection without PROXY header stored: %q", v)
		}
	}
}

// TestIdleConnectionsMemory opens many idle connections and measures the
// memory they cost the server (heap and goroutine stacks, client side
// included since both live in this process).
func TestIdleConnectionsMemory(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.MaxConns = 10000
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	const n = 2000
	before := memInUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", ts.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// One message on the last connection proves they are all being served.
	if _, err := conns[n-1].Write([]byte("idle-000000\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conns[n-1].SetReadDeadline(time.Now().Add(10 * time.Second))
	if k, err := conns[n-1].Read(buf); err != nil || string(buf[:k]) != "OK 1\n" {
		t.Fatalf("read ack: %q %v", buf[:k], err)
	}
	for ts.nconns.Load() < n {
		time.Sleep(10 * time.Millisecond)
	}
	after := memInUse()
	per := (int64(after) - int64(before)) / n
	t.Logf("%d idle connections: %d kB in use (%d bytes each, client side included)", n, (int64(after)-int64(before))>>10, per)
	if per > 32<<10 {
		t.Errorf("an idle connection costs %d bytes, want at most 32 KiB", per)
	}
}

func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// smallBufDialer dials with a tiny receive buffer, so unread acks fill it
// after a few lines.
var smallBufDialer = dialerWith(sockopt{syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024})

// shrinkSendBuffers shrinks the server side's send buffers too, so a few
// hundred unread ack lines fill both (the kernel would otherwise grow
// them to MBs).
func shrinkSendBuffers(t *testing.T, ts *testServer, n int64) {
	t.Helper()
	for ts.nconns.Load() < n {
		time.Sleep(5 * time.Millisecond)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for c := range ts.conns {
		if err := c.nc.(*net.TCPConn).SetWriteBuffer(1024); err != nil {
			t.Fatal(err)
		}
	}
}

// startDeaf starts a server that writes one ack line per message (one
// flush per message) and connects a client whose acks soon fill both
// sides' socket buffers, as long as it does not read.
func startDeaf(t *testing.T, r *redistest.Redis, o testOpts) (*testServer, net.Conn) {
	t.Helper()
	o.BatchMax = 1
	o.BatchLinger = 0
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	nc, err := smallBufDialer.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	shrinkSendBuffers(t, ts, 1)
	return ts, nc
}

// TestNeverReadingClient: a client that never reads its acks (syslog-ng,
// nc, a shipper's TCP output) is neither closed nor slowed: with one ack
// line per message and a short write timeout, tens of thousands of acks go
// unread, every message is stored in order, and the connection stays open.
// When the client finally reads, it gets the latest count.
func TestNeverReadingClient(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.WriteTimeout = 100 * time.Millisecond
	ts, nc := startDeaf(t, r, o)
	const n = 20000
	var batch []byte
	for i := range n {
		batch = append(batch, msg("deaf", i)...)
		batch = append(batch, '\n')
		if len(batch) > 4096 || i == n-1 {
			_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := nc.Write(batch); err != nil {
				t.Fatalf("write after %d messages: %v", i, err)
			}
			batch = batch[:0]
		}
	}
	waitLen(t, ts.rdb, n, time.Minute)
	// Well past the write timeout: still open, and its acks still unread.
	time.Sleep(10 * o.WriteTimeout)
	if got := ts.nconns.Load(); got != 1 {
		t.Fatalf("%d open connections, want 1: the server closed a client that does not read", got)
	}
	checkOrder(t, lrange(t, r.Addr), []string{"deaf"}, n)
	rd := bufio.NewReader(nc)
	var last protocol.Reply
	for last.N < n {
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading acks after %s: %v", last, err)
		}
		if last, err = protocol.ParseReply(line); err != nil || !last.OK() {
			t.Fatalf("reply %q: %v", line, err)
		}
	}
	if strings.Contains(ts.logs.String(), "ack write failed") {
		t.Error("an ack write failed")
	}
}

// TestDrainNeverReadingClient: at drain, a client that had not read its
// acks gets a well-formed stream (no ack line cut in two) ending with the
// final count and SHUTTING_DOWN, once it reads.
func TestDrainNeverReadingClient(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.WriteTimeout = 2 * time.Second
	ts, nc := startDeaf(t, r, o)
	const n = 5000
	var all []byte
	for i := range n {
		all = append(all, msg("drain-deaf", i)...)
		all = append(all, '\n')
	}
	if _, err := nc.Write(all); err != nil {
		t.Fatal(err)
	}
	waitLen(t, ts.rdb, n, time.Minute)
	ts.cancel()
	time.Sleep(o.DrainDelay + 200*time.Millisecond)
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
	var prev uint64
	for i, l := range lines {
		rep, err := protocol.ParseReply([]byte(l))
		if err != nil {
			t.Fatalf("line %d of %d: %v", i+1, len(lines), err)
		}
		if rep.N < prev {
			t.Fatalf("line %d: %s after %d", i+1, rep, prev)
		}
		prev = rep.N
		if i == len(lines)-1 && (rep.Code != protocol.CodeShuttingDown || rep.N != n) {
			t.Fatalf("last line %s, want ERR %d SHUTTING_DOWN", rep, n)
		}
	}
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
}

// waitLen waits until the test list holds n messages.
func waitLen(t *testing.T, rdb *redis.Client, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := rdb.LLen(context.Background(), testKey).Result()
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LLEN %s = %d (%v), want %d", testKey, got, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownTimeout: with Redis down, the drain cannot flush; Serve
// gives up at the shutdown timeout, closes the connection and reports it.
func TestShutdownTimeout(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.RetryTimeout = time.Minute
	o.ShutdownTimeout = 2 * time.Second
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	c := dial(t, ts.Addr())
	c.send("st-000000\n")
	c.waitAck(1, 10*time.Second)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	c.send("st-000001\n")
	for ts.b.Inflight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	err := ts.stop(t)
	t.Logf("Serve returned after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "INGEST_SHUTDOWN_TIMEOUT") {
		t.Fatalf("Serve = %v, want the shutdown timeout error", err)
	}
	if n := ts.nconns.Load(); n != 0 {
		t.Fatalf("%d connections open after Serve returned", n)
	}
	if rep, err := c.reply(5 * time.Second); err == nil && rep.OK() && rep.N > 1 {
		t.Fatalf("message acked while Redis was down: %s", rep)
	}
}

// TestFrameTimeout: a sender that trickles a frame byte by byte (slowloris)
// keeps resetting the idle timeout, but not the frame deadline: the frame
// is cut FRAME_TIMEOUT after its first byte. Complete frames before it are
// stored and acked; on the no-ack port the connection just closes.
func TestFrameTimeout(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	for _, noack := range []bool{false, true} {
		t.Run(fmt.Sprintf("noack=%v", noack), func(t *testing.T) {
			o := testOptions()
			o.NoAck = noack
			o.FrameTimeout = 500 * time.Millisecond
			o.IdleTimeout = time.Minute
			ts := startServer(t, redisTarget{addr: r.Addr}, o)
			c := dial(t, ts.Addr())
			prefix := fmt.Sprintf("trickle-%v", noack)
			c.send(msg(prefix, 0) + "\n" + "par")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for range 1200 { // at most a minute
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.nc.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			rest, err := io.ReadAll(c.r)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			want := "OK 1\nERR 1 FRAME_TIMEOUT"
			if noack {
				want = ""
			}
			if !strings.HasPrefix(string(rest), want) || (noack && len(rest) > 0) {
				t.Fatalf("got %q, want %q...", rest, want)
			}
			if vals := lrange(t, r.Addr); !slices.Contains(vals, msg(prefix, 0)) {
				t.Errorf("the complete frame before the cut is not stored: %q", vals)
			}
		})
	}
}

// TestReadBuffersBounded: connections that each hold a long partial frame
// share INGEST_MAX_BUFFER_BYTES; those that cannot get a bigger buffer stop
// reading (TCP pushes back) until their frame deadline cuts them. A normal
// client is acked meanwhile and afterwards.
func TestReadBuffersBounded(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.MaxFrameBytes = 256 << 10
	o.Buffers = NewBuffers(1<<20, prometheus.NewRegistry())
	o.FrameTimeout = 2 * time.Second
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	partial := bytes.Repeat([]byte("p"), 200<<10)
	const hogs = 20
	var wg sync.WaitGroup
	var cut atomic.Int64
	for range hogs {
		wg.Go(func() {
			nc, err := net.Dial("tcp", ts.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = nc.Write(partial)
			_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, _ := io.ReadAll(nc)
			if strings.Contains(string(got), protocol.CodeFrameTimeout) {
				cut.Add(1)
			}
		})
	}
	c := dial(t, ts.Addr())
	c.send(msg("normal", 0) + "\n")
	c.waitAck(1, 30*time.Second)
	if used, max := o.Buffers.used.Load(), o.Buffers.max; used > max {
		t.Fatalf("read buffers hold %d bytes, budget %d", used, max)
	}
	wg.Wait()
	if cut.Load() != hogs {
		t.Errorf("%d of %d partial-frame holders got FRAME_TIMEOUT", cut.Load(), hogs)
	}
	c.send(msg("normal", 1) + "\n")
	c.waitAck(2, 30*time.Second)
	if used := o.Buffers.used.Load(); used != 0 {
		t.Errorf("%d bytes of read buffers still taken with no partial frame left", used)
	}
}

// TestQueueFull: with a stalled consumer the list reaches
// INGEST_MAX_QUEUE_LEN; the server then holds acks back (and stops reading
// once its budget is used) exactly as when Redis is down, without losing
// anything, and stays ready. When a consumer drains the list, acks resume;
// a client whose messages wait longer than the retry deadline gets
// QUEUE_FULL.
func TestQueueFull(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ctx := context.Background()
	tests := []struct {
		name    string
		retry   time.Duration
		drain   bool // a consumer makes room while the client waits
		wantErr string
	}{
		{name: "consumer drains: acks resume", retry: time.Minute, drain: true},
		{name: "nobody drains: QUEUE_FULL", retry: time.Second, wantErr: protocol.CodeQueueFull},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.BatchMax = 10
			o.RetryTimeout = tc.retry
			ts := startServer(t, redisTarget{addr: r.Addr, maxQueueLen: 100}, o)
			if err := ts.rdb.Del(ctx, testKey).Err(); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("full%d", i)
			c := dial(t, ts.Addr())
			var all strings.Builder
			for k := range 300 {
				all.WriteString(msg(prefix, k) + "\n")
			}
			c.send(all.String())
			// Acks stop at the bound (give or take a batch per lane).
			var last protocol.Reply
			var failed *protocol.Reply
			for {
				rep, err := c.reply(2 * time.Second)
				if err != nil {
					break // no ack for 2 s: held back
				}
				if !rep.OK() {
					failed = &rep
					break
				}
				last = rep
			}
			if failed != nil && tc.wantErr == "" {
				t.Fatalf("got %s while the queue fills", failed)
			}
			if last.N < 100 || last.N >= 300 {
				t.Fatalf("acked %d of 300 with a bound of 100", last.N)
			}
			if err := ts.Ready(); err != nil {
				t.Fatalf("not ready while the queue is full: %v", err)
			}
			if tc.drain {
				got, err := ts.rdb.LPopCount(ctx, testKey, 1000).Result()
				if err != nil {
					t.Fatal(err)
				}
				consumed := len(got)
				// Acks resume: the consumer takes what comes until all 300 are acked.
				deadline := time.Now().Add(time.Minute)
				for last.N < 300 {
					if time.Now().After(deadline) {
						t.Fatalf("acks did not resume: last %s", last)
					}
					rep, err := c.reply(200 * time.Millisecond)
					if err == nil {
						if !rep.OK() {
							t.Fatalf("got %s after the consumer made room", rep)
						}
						last = rep
						continue
					}
					more, _ := ts.rdb.LPopCount(ctx, testKey, 1000).Result()
					got = append(got, more...)
					consumed += len(more)
				}
				more, _ := ts.rdb.LPopCount(ctx, testKey, 1000).Result()
				got = append(got, more...)
				checkOrder(t, got, []string{prefix}, 300)
				return
			}
			var rep protocol.Reply
			if failed != nil {
				rep = *failed
			} else {
				var err error
				if rep, err = c.reply(30 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if rep.Code != tc.wantErr || rep.N < last.N {
				t.Fatalf("got %s, want ERR >= %d %s", rep, last.N, tc.wantErr)
			}
			// Everything acked is stored, in order.
			next := firstInOrder(t, lrange(t, r.Addr))
			if uint64(next[prefix]) < rep.N {
				t.Fatalf("%d of %d acked messages stored", next[prefix], rep.N)
			}
		})
	}
}

// TestFrameTimeoutSteadyStream: a steady stream whose reads end in the
// middle of a line always has a partial frame, but each one is new: the
// frame deadline runs from the first byte of the frame still partial, so
// a stream longer than the frame timeout is never cut.
func TestFrameTimeoutSteadyStream(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.FrameTimeout = 300 * time.Millisecond
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	c := dial(t, ts.Addr())
	// Every write ends in the middle of a line: the second half of one
	// line and the first half of the next, every 5 ms, for 2 s.
	const n = 400
	line := func(i int) string { return msg("steady", i) + "\n" }
	c.send(line(0)[:6])
	for i := range n {
		next := ""
		if i+1 < n {
			next = line(i + 1)[:6]
		}
		c.send(line(i)[6:] + next)
		time.Sleep(5 * time.Millisecond)
	}
	c.waitAck(n, 30*time.Second)
}
