package ingest

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/sluice-ingest/sluice/internal/redistest"
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

// TestSlowReaderClosed: a client that never reads its acks is closed after
// the write timeout instead of pinning the connection.
func TestSlowReaderClosed(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.BatchMax = 1 // one flush, hence one ack line, per message
	o.BatchLinger = 0
	o.WriteTimeout = 300 * time.Millisecond
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Shrink the server's send buffer too, so a few thousand unread ack
	// lines fill both buffers (the kernel would otherwise grow it to MBs).
	for ts.nconns.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ts.mu.Lock()
	for c := range ts.conns {
		if err := c.nc.(*net.TCPConn).SetWriteBuffer(1024); err != nil {
			t.Fatal(err)
		}
	}
	ts.mu.Unlock()
	line := []byte("slow-000000\n")
	deadline := time.Now().Add(60 * time.Second)
	sent := 0
	for ts.nconns.Load() > 0 || sent == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connection still open after %d messages with unread acks", sent)
		}
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(line); err != nil {
			break // the server closed the connection
		}
		sent++
		if sent%500 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for ts.nconns.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connection not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("closed after %d messages whose acks were never read", sent)
	if !strings.Contains(ts.logs.String(), "ack write failed") {
		t.Errorf("no ack write failure logged")
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
	for ts.inflight.Load() == 0 {
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
