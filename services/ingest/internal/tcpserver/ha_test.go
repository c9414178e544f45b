package tcpserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// streamer is a resending client: it streams numbered messages, tracks the
// cumulative ack, and after any error reconnects and resends everything
// after the last ack (at least once).
type streamer struct {
	prefix     string
	acked      atomic.Int64
	reconnects atomic.Int64
	errs       sync.Map // reply code -> count
}

func (s *streamer) run(ctx context.Context, addr string) {
	for ctx.Err() == nil {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.session(ctx, nc)
		nc.Close()
		s.reconnects.Add(1)
	}
}

func (s *streamer) session(ctx context.Context, nc net.Conn) {
	base := s.acked.Load()
	next := base
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			rep, err := protocol.ParseReply(line)
			if err != nil {
				return
			}
			if n := base + int64(rep.N); n > s.acked.Load() {
				s.acked.Store(n)
			}
			if !rep.OK() {
				v, _ := s.errs.LoadOrStore(rep.Code, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
				return
			}
		}
	}()
	var b strings.Builder
	for ctx.Err() == nil {
		select {
		case <-done:
			return
		default:
		}
		if next-s.acked.Load() >= 400 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		b.Reset()
		for range 50 {
			b.WriteString(msg(s.prefix, int(next)) + "\n")
			next++
		}
		_ = nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write([]byte(b.String())); err != nil {
			return
		}
	}
	// Stop: give the last acks a moment, then close.
	_ = nc.(*net.TCPConn).CloseWrite()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func (s *streamer) errorCounts() string {
	var parts []string
	s.errs.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	return strings.Join(parts, " ")
}

// waitAcked waits until every streamer's ack passed its target.
func waitAcked(t *testing.T, ss []*streamer, target []int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i, s := range ss {
		for s.acked.Load() < target[i] {
			if time.Now().After(deadline) {
				t.Fatalf("%s: acked %d, waited for %d (reconnects %d, errors %s)", s.prefix, s.acked.Load(), target[i], s.reconnects.Load(), s.errorCounts())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSentinelFailover kills the master mid-stream: every message acked
// before, during and after the failover is on the new master, and acks
// resume. With INGEST_MIN_REPLICAS=1 an ack means a replica has it, and
// Sentinel promotes the replica with the highest offset.
func TestSentinelFailover(t *testing.T) {
	const pw, spw = "redis-pw", "sentinel-pw"
	topo := redistest.NewTopology(t, redistest.TopologyOptions{
		Replicas: 2, Password: pw, SentinelPassword: spw, DownAfter: time.Second,
	})
	o := testOptions()
	o.RetryTimeout = 30 * time.Second
	ts := startServer(t, redisTarget{
		sentinelAddrs: topo.SentinelAddrs(), password: pw, sentinelPassword: spw,
		minReplicas: 1, waitTimeout: 500 * time.Millisecond,
	}, o)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ss := make([]*streamer, 4)
	for i := range ss {
		ss[i] = &streamer{prefix: fmt.Sprintf("fo%d", i)}
		wg.Go(func() { ss[i].run(ctx, ts.Addr().String()) })
	}
	defer func() { stop(); wg.Wait() }()

	waitAcked(t, ss, []int64{500, 500, 500, 500}, 30*time.Second)
	mctx, mcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer mcancel()
	old, err := topo.MasterRedis(mctx)
	if err != nil {
		t.Fatal(err)
	}
	before := make([]int64, len(ss))
	for i, s := range ss {
		before[i] = s.acked.Load()
	}
	killed := time.Now()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed master %s with acks at %v", old.Addr, before)
	target := make([]int64, len(ss))
	for i := range ss {
		target[i] = before[i] + 1000
	}
	waitAcked(t, ss, target, 60*time.Second)
	t.Logf("acks resumed past +1000 per connection %s after the kill", time.Since(killed).Round(time.Millisecond))
	stop()
	wg.Wait()

	nm, err := topo.MasterRedis(mctx)
	if err != nil {
		t.Fatal(err)
	}
	if nm.Addr == old.Addr {
		t.Fatalf("no failover: master is still %s", old.Addr)
	}
	vals := lrangeAuth(t, nm.Addr, pw)
	inOrder := firstInOrder(t, vals) // order holds through resends and retries
	have := make(map[string]bool, len(vals))
	for _, v := range vals {
		have[v] = true
	}
	for _, s := range ss {
		acked := s.acked.Load()
		lost := 0
		for i := range int(acked) {
			if !have[msg(s.prefix, i)] {
				lost++
			}
		}
		t.Logf("%s: acked %d, stored in order %d, reconnects %d, errors [%s]", s.prefix, acked, inOrder[s.prefix], s.reconnects.Load(), s.errorCounts())
		if lost > 0 {
			t.Errorf("%s: %d of %d acked messages are missing on the new master %s", s.prefix, lost, acked, nm.Addr)
		}
	}
	if got := ts.logs.String(); !strings.Contains(got, "redis master changed") {
		t.Errorf("no master change logged")
	}
}

// TestNotReplicated: with INGEST_MIN_REPLICAS=2 and one of two replicas
// stopped, a message gets NOT_REPLICATED (not OK) after the deadline.
func TestNotReplicated(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{})
	r1 := redistest.NewRedis(t, redistest.RedisOptions{ReplicaOf: master.Addr})
	redistest.NewRedis(t, redistest.RedisOptions{ReplicaOf: master.Addr})
	mc := master.Client()
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		info, err := mc.Info(ctx, "replication").Result()
		if err == nil && strings.Count(info, "state=online") == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("replicas did not connect: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	o := testOptions()
	o.RetryTimeout = 2 * time.Second
	ts := startServer(t, redisTarget{addr: master.Addr, minReplicas: 2, waitTimeout: 200 * time.Millisecond}, o)
	c := dial(t, ts.Addr())
	c.send("nr-000000\n")
	c.waitAck(1, 20*time.Second)
	if err := r1.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.send("nr-000001\n")
	rep, err := c.reply(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reply after %s: %s", time.Since(start).Round(time.Millisecond), rep)
	if rep.Code != protocol.CodeNotReplicated || rep.N != 1 {
		t.Fatalf("got %s, want ERR 1 NOT_REPLICATED", rep)
	}
	c.expectCleanEOF(10 * time.Second)
}
