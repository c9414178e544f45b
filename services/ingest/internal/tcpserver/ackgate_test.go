package tcpserver

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// TestAckGateLetsAReaderThrough: a client with an Ethernet-sized MSS and
// a 32 KiB receive buffer (its kernel clamps its window to two segments,
// less than a quarter of its first window, once small unread acks squeeze
// its memory) sends without reading until the server holds its acks back. Then it reads them all, and goes on one message at a time,
// waiting for each ack without sending anything else: every ack arrives,
// however small its window stayed.
func TestAckGateLetsAReaderThrough(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	o := testOptions()
	o.BatchMax = 1 // one ack line per message
	ts := startServer(t, redisTarget{addr: r.Addr}, o)
	d := dialerWith(
		sockopt{syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1448},
		sockopt{syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32 << 10},
	)
	nc, err := d.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, nc: nc.(*net.TCPConn), r: bufio.NewReader(nc)}
	t.Cleanup(func() { nc.Close() })

	sent := 0
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	for testutil.ToFloat64(ts.sh.m.held) == 0 {
		if time.Now().After(deadline) || sent >= 500_000 {
			t.Fatalf("no hold after %d messages", sent)
		}
		var b strings.Builder
		for range 10 {
			fmt.Fprintf(&b, "%s\n", msg("unread", sent))
			sent++
		}
		c.send(b.String())
		time.Sleep(2 * time.Millisecond) // stored before the next: one line each
	}
	t.Logf("held after %d messages, %s", sent, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	c.waitAck(uint64(sent), 30*time.Second)
	t.Logf("read every ack in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for i := range 3 {
		c.send(msg("one", i) + "\n")
		c.waitAck(uint64(sent+i+1), 30*time.Second)
	}
	t.Logf("3 more, one at a time, in %s", time.Since(start).Round(time.Millisecond))
}
