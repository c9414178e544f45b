//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/client"
)

// TestSmoke runs the smoke checks of the platform on one stack with the
// shipped settings (INGEST_MIN_REPLICAS default): a 100k-message load through
// HAProxy, the spread of connections over every ingest container, and HAProxy
// taking an ingest out of rotation and back, once frozen (checks time out)
// and once unready (/ready answers 503).
func TestSmoke(t *testing.T) {
	s := StartStack(t)

	// The load's clients stay connected until the connection check has run.
	load := &smokeLoad{}
	t.Cleanup(load.close)
	const conns = 8
	t.Run("100k messages from 8 connections, exactly once, in order, replicated", func(t *testing.T) {
		runSmokeLoad(t, s, load, conns, 100_000)
	})

	t.Run("every ingest container receives connections", func(t *testing.T) {
		if len(load.clients) != conns {
			t.Fatalf("the load has %d connected clients, want %d", len(load.clients), conns)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range s.Ingest.Names() {
			row, err := s.HAProxy.IngestServer(ctx, name)
			if err != nil {
				t.Fatalf("haproxy server of %s: %v", name, err)
			}
			metrics, err := s.Ingest.Metrics(ctx, name)
			if err != nil {
				t.Fatalf("metrics of %s: %v", name, err)
			}
			t.Logf("%s: haproxy %s stot=%d scur=%d; ingest connections=%v acked=%v",
				name, row.Server, row.Stot, row.Scur, metrics["sluice_ingest_connections"], metrics["sluice_ingest_messages_acked_total"])
			if row.Stot == 0 {
				t.Errorf("%s: HAProxy sent it no sessions (server %s, stot 0)", name, row.Server)
			}
			if metrics["sluice_ingest_connections"] < 1 {
				t.Errorf("%s: sluice_ingest_connections = %v while 8 clients are connected, want >= 1", name, metrics["sluice_ingest_connections"])
			}
			if metrics["sluice_ingest_messages_acked_total"] < 1 {
				t.Errorf("%s: acked no messages (sluice_ingest_messages_acked_total = %v)", name, metrics["sluice_ingest_messages_acked_total"])
			}
		}
	})
	load.close()

	t.Run("haproxy takes an unready ingest out of rotation and back", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		const victim = "ingest-2"
		if _, err := s.HAProxy.WaitServerStatus(ctx, victim, "UP"); err != nil {
			t.Fatalf("before: %v", err)
		}
		t0 := time.Now()
		// A frozen container answers no health check: /ready times out.
		if err := s.Node(victim).Pause(ctx); err != nil {
			t.Fatal(err)
		}
		paused := true
		defer func() {
			if paused {
				_ = s.Node(victim).Unpause(context.Background())
			}
		}()
		row, err := s.HAProxy.WaitServerStatus(ctx, victim, "DOWN")
		if err != nil {
			t.Fatalf("paused %s: %v", victim, err)
		}
		t.Logf("%s (%s) DOWN %s after pause (check_status %s)", victim, row.Server, time.Since(t0).Round(10*time.Millisecond), row.Raw["check_status"])

		// While it is down, new connections go to the others and are acked.
		rec := sendAndAck(t, haproxyDataAddr(t, s), "while-down", 200)
		t.Logf("sent 200 messages while %s was down: %d acked", victim, rec)
		if rec != 200 {
			t.Errorf("acked %d of 200 messages while %s was down", rec, victim)
		}

		t1 := time.Now()
		if err := s.Node(victim).Unpause(ctx); err != nil {
			t.Fatal(err)
		}
		paused = false
		row, err = s.HAProxy.WaitServerStatus(ctx, victim, "UP")
		if err != nil {
			t.Fatalf("unpaused %s: %v", victim, err)
		}
		t.Logf("%s (%s) UP %s after unpause", victim, row.Server, time.Since(t1).Round(10*time.Millisecond))
		if err := s.HAProxy.WaitUp(ctx, s.Config().IngestReplicas); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("haproxy takes an ingest whose /ready fails out of rotation and back", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const victim = "ingest-3"
		if _, err := s.HAProxy.WaitServerStatus(ctx, victim, "UP"); err != nil {
			t.Fatalf("before: %v", err)
		}
		// Cut the ingest off from every Redis node and Sentinel: it stays up and
		// answers HTTP, but its Redis check fails, so /ready says 503.
		t0 := time.Now()
		heal, err := Partition(ctx, s, []string{victim}, append(RedisNames(), SentinelNames()...))
		if err != nil {
			t.Fatal(err)
		}
		healed := false
		defer func() {
			if !healed {
				_ = heal(context.Background())
			}
		}()
		row, err := s.HAProxy.WaitServerStatus(ctx, victim, "DOWN")
		if err != nil {
			t.Fatalf("cut off %s: %v", victim, err)
		}
		code, body, err := s.Ingest.Get(ctx, victim, "/ready")
		t.Logf("%s (%s) DOWN %s after losing Redis (check_status %s, check_code %s); /ready answers %d %s",
			victim, row.Server, time.Since(t0).Round(10*time.Millisecond), row.Raw["check_status"], row.Raw["check_code"], code, strings.TrimSpace(body))
		if err != nil || code != http.StatusServiceUnavailable {
			t.Errorf("%s /ready while cut off from Redis: %d, %v; want 503", victim, code, err)
		}
		if row.Raw["check_status"] != "L7STS" {
			t.Errorf("HAProxy's last check of %s: %q, want L7STS (an HTTP status other than 200)", victim, row.Raw["check_status"])
		}

		t1 := time.Now()
		if err := heal(ctx); err != nil {
			t.Fatal(err)
		}
		healed = true
		row, err = s.HAProxy.WaitServerStatus(ctx, victim, "UP")
		if err != nil {
			t.Fatalf("healed %s: %v", victim, err)
		}
		t.Logf("%s (%s) UP %s after the partition healed", victim, row.Server, time.Since(t1).Round(10*time.Millisecond))
		if rec := sendAndAck(t, haproxyDataAddr(t, s), "after-heal", 200); rec != 200 {
			t.Errorf("acked %d of 200 messages after the heal", rec)
		}
	})
}

// smokeLoad is the set of clients of the load test, kept open afterwards.
type smokeLoad struct {
	once    sync.Once
	clients []*client.Client
}

func (l *smokeLoad) close() {
	l.once.Do(func() {
		for _, c := range l.clients {
			c.Close()
		}
	})
}

// smokeMsg is message seq (1-based) of connection conn.
func smokeMsg(conn, seq int) string { return fmt.Sprintf("smoke-c%d-%06d", conn, seq) }

// parseSmokeMsg returns the connection and sequence of a smokeMsg.
func parseSmokeMsg(m string) (conn, seq int, ok bool) {
	rest, found := strings.CutPrefix(m, "smoke-c")
	if !found {
		return 0, 0, false
	}
	c, q, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	conn, err1 := strconv.Atoi(c)
	seq, err2 := strconv.Atoi(q)
	return conn, seq, err1 == nil && err2 == nil
}

// runSmokeLoad sends total messages over conns clients (kept open in load),
// then checks the master's and the replicas' lists.
func runSmokeLoad(t *testing.T, s *Stack, load *smokeLoad, conns, total int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	per := total / conns
	addr := haproxyDataAddr(t, s)
	for range conns {
		c, err := client.Dial(context.Background(), client.Config{Addr: addr, MaxUnacked: 5000})
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		load.clients = append(load.clients, c)
	}

	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i, c := range load.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; seq <= per; seq++ {
				if _, err := c.Send(ctx, []byte(smokeMsg(i, seq))); err != nil {
					errs[i] = fmt.Errorf("connection %d: send %d: %w", i, seq, err)
					return
				}
			}
			if err := c.WaitAcked(ctx); err != nil {
				errs[i] = fmt.Errorf("connection %d: wait for acks: %w", i, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	resent, connects := uint64(0), uint64(0)
	for i, c := range load.clients {
		st := c.Status()
		resent += st.Resent
		connects += st.Connects
		if st.Acked != uint64(per) {
			t.Errorf("connection %d: %d of %d messages acked (status %+v)", i, st.Acked, per, st)
		}
	}
	t.Logf("%d messages over %d connections acked in %s (%.0f msg/s); %d connects, %d resent",
		per*conns, conns, elapsed.Round(time.Millisecond), float64(per*conns)/elapsed.Seconds(), connects, resent)
	if t.Failed() {
		return
	}

	t1 := time.Now()
	master, list, replicas, err := s.Redis.ReadAll(ctx)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	t.Logf("master %s holds %d messages; read back and replicas compared in %s", master, len(list), time.Since(t1).Round(time.Millisecond))
	checkSmokeList(t, master, list, conns, per)
	for name, rl := range replicas {
		if len(rl) != len(list) {
			t.Errorf("replica %s holds %d messages, master %s %d", name, len(rl), master, len(list))
			continue
		}
		for i := range rl {
			if rl[i] != list[i] {
				t.Errorf("replica %s differs from master %s at index %d: %q vs %q", name, master, i, rl[i], list[i])
				break
			}
		}
	}
	if len(replicas) != 2 {
		t.Errorf("compared %d replicas, want 2", len(replicas))
	}
}

// checkSmokeList checks that list holds messages 1..per of every connection
// exactly once, each connection's in order, and nothing else.
func checkSmokeList(t *testing.T, node string, list []string, conns, per int) {
	t.Helper()
	next := make([]int, conns) // last seq seen per connection
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf("%s: "+format, append([]any{node}, args...)...)
		}
	}
	for i, m := range list {
		c, seq, ok := parseSmokeMsg(m)
		if !ok || c < 0 || c >= conns || seq < 1 || seq > per {
			report("unexpected entry %q at index %d", m, i)
			continue
		}
		switch {
		case seq == next[c]+1:
			next[c] = seq
		case seq <= next[c]:
			report("connection %d: message %d again (or out of order) at index %d, after %d", c, seq, i, next[c])
		default:
			report("connection %d: message %d at index %d follows %d: %d missing before it", c, seq, i, next[c], seq-next[c]-1)
			next[c] = seq
		}
	}
	for c, last := range next {
		if last != per {
			report("connection %d: last message %d, want %d", c, last, per)
		}
	}
	if len(list) != conns*per {
		report("holds %d entries, want %d", len(list), conns*per)
	}
	if bad > 10 {
		t.Errorf("%s: ... %d problems in all", node, bad)
	}
}

// haproxyDataAddr is HAProxy's data port on 127.0.0.1; not finding it ends the test.
func haproxyDataAddr(t *testing.T, s *Stack) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.HAProxy.Addr(ctx)
	if err != nil {
		t.Fatalf("haproxy data port: %v", err)
	}
	return addr
}

// sendAndAck sends n messages over one new connection and returns how many were acked.
func sendAndAck(t *testing.T, addr, prefix string, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	for i := range n {
		if _, err := c.Send(ctx, []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		t.Errorf("wait for acks: %v", err)
	}
	return int(c.Acked())
}
