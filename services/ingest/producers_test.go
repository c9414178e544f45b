package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/internal/syslogngtest"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

const queueKey = "data_queue"

// rcvbufDialer dials with a receive buffer of n bytes.
func rcvbufDialer(n int) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		return errors.Join(err, serr)
	}}
}

// waitLen waits until the list holds at least n messages and returns its
// length.
func waitLen(t *testing.T, rdb *redis.Client, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := rdb.LLen(context.Background(), queueKey).Result()
		if err == nil && got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("LLEN %s = %d (%v) after %s, want %d", queueKey, got, err, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStable waits until the list length stops changing for quiet and
// returns it (for senders that may lose lines: there is no count to wait
// for).
func waitStable(t *testing.T, rdb *redis.Client, quiet, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		n, err := rdb.LLen(context.Background(), queueKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("LLEN %s still changing after %s", queueKey, timeout)
	return 0
}

// scanList calls fn for every element of the list, in order, reading it
// in chunks.
func scanList(t *testing.T, rdb *redis.Client, fn func(i int64, v string)) {
	t.Helper()
	const chunk = 200_000
	for start := int64(0); ; start += chunk {
		vals, err := rdb.LRange(context.Background(), queueKey, start, start+chunk-1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			fn(start+int64(i), v)
		}
		if len(vals) < chunk {
			return
		}
	}
}

// TestSenderThatNeverReads: a sender that never reads (like syslog-ng's
// network() or nc) streams 5,000,000 messages on one connection at a
// steady rate with a 4 KiB receive buffer. Every message is stored, in
// order, once; the server never closes the connection; its RSS stays
// within the in-flight budget plus a fixed overhead; the server holds the
// acks back instead of filling the sender's receive buffer. When the
// sender finally reads, the latest count follows.
func TestSenderThatNeverReads(t *testing.T) {
	if testing.Short() {
		t.Skip("5M messages")
	}
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	const budget = 16 << 20
	in := ingesttest.Start(t, r.Addr, ingesttest.WithEnv("INGEST_MAX_INFLIGHT_BYTES", fmt.Sprint(budget)), ingesttest.WithEnv("INGEST_WRITE_TIMEOUT", "1s"))
	nc, err := rcvbufDialer(4096).Dial("tcp", in.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	var rssAt1M int64
	stopSampling := in.SamplePeakRSS(100 * time.Millisecond)

	const total, perTick = 5_000_000, 5_000
	tick := time.NewTicker(10 * time.Millisecond) // 500,000 messages/s
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Minute)
	buf := make([]byte, 0, perTick*12)
	start := time.Now()
	for sent := 0; sent < total; {
		<-tick.C
		if time.Now().After(deadline) {
			t.Fatalf("sent only %d of %d messages in 3 minutes", sent, total)
		}
		buf = buf[:0]
		for range perTick {
			buf = fmt.Appendf(buf, "m-%07d\n", sent)
			sent++
		}
		_ = nc.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := nc.Write(buf); err != nil {
			t.Fatalf("write after %d messages: %v", sent, err)
		}
		if sent == 1_000_000 {
			rssAt1M, _, _ = in.Memory()
		}
	}
	sendTime := time.Since(start)
	rdb := r.Client()
	waitLen(t, rdb, total, 2*time.Minute)
	peakRSS := stopSampling()
	_, hwm, err := in.Memory()
	if err != nil {
		t.Fatal(err)
	}
	rssEnd, _, _ := in.Memory()
	t.Logf("5M messages in %s; ingest RSS: %.1f MiB after 1M, %.1f MiB at the end, peak sampled %.1f MiB, VmHWM %.1f MiB (budget %d MiB)",
		sendTime.Round(time.Millisecond), mib(rssAt1M), mib(rssEnd), mib(peakRSS), mib(hwm), budget>>20)

	next := int64(0)
	scanList(t, rdb, func(i int64, v string) {
		if want := fmt.Sprintf("m-%07d", i); v != want {
			t.Fatalf("element %d is %q, want %q", i, v, want)
		}
		next = i + 1
	})
	if next != total {
		t.Fatalf("%d elements, want %d", next, total)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := in.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if closed := m["sluice_ingest_connections_closed_total"]; closed != 0 || m["sluice_ingest_connections"] != 1 {
		t.Fatalf("connections closed %v, open %v: want 0 and 1", closed, m["sluice_ingest_connections"])
	}
	// The server holds the latest count back rather than fill a receive
	// buffer nobody drains (its kernel would drop our TCP ACKs with the
	// acks, and this sender's writes would stall).
	if held := m["sluice_ingest_acks_held_total"]; held < 1 {
		t.Errorf("sluice_ingest_acks_held_total = %v with the sender not reading, want at least 1", held)
	}
	// Bounded: the budget, the kernel's socket buffers and a fixed
	// overhead, whatever the count (the unread acks are one number).
	if limit := int64(budget) + 64<<20; hwm > limit {
		t.Errorf("ingest peak RSS %.1f MiB, want at most %.1f MiB", mib(hwm), mib(limit))
	}
	rd := bufio.NewReader(nc)
	var last protocol.Reply
	for last.N < total {
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the acks after %s: %v", last, err)
		}
		if last, err = protocol.ParseReply(line); err != nil || !last.OK() {
			t.Fatalf("reply %q: %v", line, err)
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// writeLines writes n lines "line-%07d" to a file.
func writeLines(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "input.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "line-%07d\n", i)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// countLines checks every element is prefix+"line-%07d" with i < n (no
// cut or mangled line) and returns, per prefix, how many distinct lines
// are stored and how many elements are duplicates.
func countLines(t *testing.T, rdb *redis.Client, n int, prefixes ...string) (distinct, dups map[string]int) {
	t.Helper()
	seen := map[string][]bool{}
	distinct, dups = map[string]int{}, map[string]int{}
	for _, p := range prefixes {
		seen[p] = make([]bool, n)
	}
	scanList(t, rdb, func(i int64, v string) {
		for _, p := range prefixes {
			rest, ok := strings.CutPrefix(v, p+"line-")
			if !ok {
				continue
			}
			var k int
			if len(rest) != 7 || func() bool { _, err := fmt.Sscanf(rest, "%d", &k); return err != nil }() || k >= n {
				t.Fatalf("element %d %q is not a line that was sent", i, v)
			}
			if seen[p][k] {
				dups[p]++
			} else {
				seen[p][k] = true
				distinct[p]++
			}
			return
		}
		t.Fatalf("element %d %q is not a line that was sent", i, v)
	})
	return distinct, dups
}

// TestSyslogNG: syslog-ng 3.38, as people run it, sends 500,000 lines
// straight to one ingest: with network() (plain TCP, a 4 KiB receive
// buffer, never reading) and with http() (batches of 1,000 lines to
// /v1/messages). Every line is stored, and the server closes no
// connection.
func TestSyslogNG(t *testing.T) {
	if testing.Short() {
		t.Skip("500,000 lines per destination")
	}
	const n = 500_000
	input := writeLines(t, n)
	tests := []struct {
		name string
		dest func(in *ingesttest.Ingest) syslogngtest.Destination
	}{
		{"network to the no-ack port", func(in *ingesttest.Ingest) syslogngtest.Destination {
			return syslogngtest.Network("127.0.0.1", in.NoAck, "", 4096)
		}},
		{"http", func(in *ingesttest.Ingest) syslogngtest.Destination { return syslogngtest.HTTP(in.HTTPURL(), "", 1000) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.NewRedis(t, redistest.RedisOptions{})
			in := ingesttest.Start(t, r.Addr)
			start := time.Now()
			syslogngtest.New(t, syslogngtest.Options{Input: input, Destinations: []syslogngtest.Destination{tc.dest(in)}})
			rdb := r.Client()
			waitLen(t, rdb, n, 3*time.Minute)
			took := time.Since(start)
			distinct, dups := countLines(t, rdb, n, "")
			t.Logf("%d lines in %s, %d duplicates", distinct[""], took.Round(time.Millisecond), dups[""])
			if distinct[""] != n {
				t.Fatalf("%d of %d lines stored", distinct[""], n)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := in.Metrics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if closed := m["sluice_ingest_connections_closed_total"]; closed != 0 {
				t.Errorf("the server closed %v connections", closed)
			}
		})
	}
}

// TestSyslogNGThroughHAProxy: one syslog-ng sends every line with both
// network() and http() through the shipped haproxy.cfg to two ingests,
// and one ingest is stopped (SIGTERM: drain) in the middle. The http()
// sender loses no line; the network() sender, which reads no acks, loses
// at most what was in flight when its connection closed, and no line is
// stored cut or mangled.
func TestSyslogNGThroughHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 lines per destination")
	}
	const n = 200_000
	input := writeLines(t, n)
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	drain := ingesttest.WithEnv("INGEST_DRAIN_DELAY", "3s") // longer than haproxy's fall x inter (2 x 1 s), as shipped
	proxy := ingesttest.WithEnv("INGEST_PROXY_PROTOCOL", "true")
	ins := []*ingesttest.Ingest{ingesttest.Start(t, r.Addr, drain, proxy), ingesttest.Start(t, r.Addr, drain, proxy)}
	hp := startShippedHAProxy(t, ins)
	sng := syslogngtest.New(t, syslogngtest.Options{Input: input, Destinations: []syslogngtest.Destination{
		// 20,000 lines/s each: the stop lands in the middle of both streams.
		syslogngtest.Network("127.0.0.1", hp.noack, "net-", 4096).Throttle(20_000),
		syslogngtest.HTTP(hp.HTTPURL(), "http-", 1000).Throttle(20_000),
	}})
	rdb := r.Client()
	waitLen(t, rdb, 2*n/3, 3*time.Minute) // a third of each stream
	// Stop the ingest that holds network()'s connection.
	victim := -1
	for i, in := range ins {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := in.Metrics(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if m[`sluice_ingest_connections{transport="tcp_noack"}`] == 1 {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatal("no ingest holds syslog-ng's network() connection")
	}
	stopped := time.Now()
	if err := ins[victim].Stop(); err != nil {
		t.Fatalf("stop ingest: %v", err)
	}
	t.Logf("the ingest holding network()'s connection drained and exited in %s", time.Since(stopped).Round(time.Millisecond))
	stored := waitStable(t, rdb, 5*time.Second, 3*time.Minute)
	distinct, dups := countLines(t, rdb, n, "net-", "http-")
	t.Logf("%d elements; http(): %d of %d lines, %d duplicates; network(): %d of %d lines (%d lost in flight), %d duplicates",
		stored, distinct["http-"], n, dups["http-"], distinct["net-"], n, n-distinct["net-"], dups["net-"])
	if distinct["http-"] != n {
		t.Errorf("http(): %d of %d lines stored", distinct["http-"], n)
	}
	if distinct["net-"] == 0 {
		t.Errorf("network(): no line stored")
	}
	_ = sng
}

// shippedHAProxy is haproxy with the shipped haproxy.cfg in front of
// ingest processes.
type shippedHAProxy struct {
	*redistest.HAProxy
	data, http, noack, stats int
}

func (h *shippedHAProxy) HTTPURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/v1/messages", h.http)
}

// startShippedHAProxy runs the shipped haproxy/haproxy.cfg (TLS settings
// come from the environment, see t.Setenv) with the ingests as static
// servers.
func startShippedHAProxy(t *testing.T, ins []*ingesttest.Ingest) *shippedHAProxy {
	t.Helper()
	if os.Getenv("HAPROXY_STATS_PASSWORD") == "" {
		t.Setenv("HAPROXY_STATS_PASSWORD", "test-stats-password")
	}
	b, err := os.ReadFile("../../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]redistest.IngestPorts, len(ins))
	for i, in := range ins {
		ports[i] = in.IngestPorts
	}
	var cfgErr error
	h := redistest.NewHAProxy(t, redistest.HAProxyOptions{Ports: 4, Config: func(p []int) string {
		cfg, err := redistest.ShippedHAProxyConfig(string(b), redistest.ShippedPorts{Data: p[0], HTTP: p[1], NoAck: p[2], Stats: p[3], Ingests: ports})
		cfgErr = err
		return cfg
	}})
	if cfgErr != nil {
		t.Fatal(cfgErr)
	}
	sh := &shippedHAProxy{HAProxy: h, data: h.Ports[0], http: h.Ports[1], noack: h.Ports[2], stats: h.Ports[3]}
	// Wait until haproxy's checks marked every ingest UP.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpGetAuth(fmt.Sprintf("http://127.0.0.1:%d/stats;csv", sh.stats), "admin", os.Getenv("HAPROXY_STATS_PASSWORD"))
		if err == nil && strings.Count(resp, ",UP,") >= 3*len(ins) {
			return sh
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy: not every ingest UP after 30s (%v):\n%s", err, resp)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGetAuth(url, user, pass string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
