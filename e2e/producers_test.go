//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/syslogngtest"
)

// TestSyslogNGIngestContainerStopped: a real syslog-ng on the host sends
// every line of a file through the stack's HAProxy twice, with http()
// (batches of 1,000 lines to port 9502) and with network() (plain TCP to
// the no-ack port 9503), while the ingest container that holds network()'s
// connection is stopped (docker stop: a drain). With the shipped
// INGEST_MIN_REPLICAS=2, http() loses no line, and no line is stored cut or
// mangled; what network() lost in flight is measured.
func TestSyslogNGIngestContainerStopped(t *testing.T) {
	s := StartStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	web, err := s.HAProxy.Port(ctx, httpPort)
	if err != nil {
		t.Fatal(err)
	}
	noack, err := s.HAProxy.Port(ctx, noackPort)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(noack, ":")
	var noackPortNum int
	fmt.Sscanf(port, "%d", &noackPortNum)

	const n = 100_000
	input := filepath.Join(t.TempDir(), "input.log")
	f, err := os.Create(input)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "line-%07d\n", i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	syslogngtest.New(t, syslogngtest.Options{Input: input, Destinations: []syslogngtest.Destination{
		// 10,000 lines/s each: the stop lands in the middle of both streams.
		syslogngtest.Network(host, noackPortNum, "net-", 4096).Throttle(10_000),
		syslogngtest.HTTP("http://"+web+"/v1/messages", "http-", 1000).Throttle(10_000),
	}})
	master, err := s.Redis.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rdb := s.Redis.Client(master)
	waitFor := func(what string, cond func(int64) bool) int64 {
		t.Helper()
		var got int64
		err := retry(ctx, 200*time.Millisecond, func() error {
			got, err = rdb.LLen(ctx, QueueKey).Result()
			if err != nil {
				return err
			}
			if !cond(got) {
				return fmt.Errorf("LLEN %s = %d, waiting for %s", QueueKey, got, what)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitFor("a third of both streams", func(l int64) bool { return l >= 2*n/3 })

	victim := ""
	for _, name := range s.Ingest.Names() {
		m, err := s.Ingest.Metrics(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if m["sluice_ingest_connections"] >= 1 {
			victim = name
		}
	}
	if victim == "" {
		t.Fatal("no ingest container holds syslog-ng's network() connection")
	}
	stopped := time.Now()
	if err := s.Node(victim).Stop(ctx, 40*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (holding network()'s connection) drained and stopped in %s", victim, time.Since(stopped).Round(time.Millisecond))

	// Done when the list stops growing for 10 s.
	var last int64 = -1
	since := time.Now()
	waitFor("the list to stop growing", func(l int64) bool {
		if l != last {
			last, since = l, time.Now()
			return false
		}
		return time.Since(since) > 10*time.Second
	})
	vals, err := s.Redis.ReadQueue(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]bool{"net-": {}, "http-": {}}
	dups := map[string]int{}
	for _, v := range vals {
		prefix, rest, ok := strings.Cut(v, "line-")
		var k int
		if _, err := fmt.Sscanf(rest, "%07d", &k); !ok || seen[prefix] == nil || err != nil || len(rest) != 7 || k >= n {
			t.Fatalf("%q is not a line that was sent", v)
		}
		if seen[prefix][rest] {
			dups[prefix]++
		}
		seen[prefix][rest] = true
	}
	t.Logf("http(): %d of %d lines, %d duplicates; network(): %d of %d lines (%d lost in flight), %d duplicates",
		len(seen["http-"]), n, dups["http-"], len(seen["net-"]), n, n-len(seen["net-"]), dups["net-"])
	if len(seen["http-"]) != n {
		t.Errorf("http(): %d of %d lines stored", len(seen["http-"]), n)
	}
	if len(seen["net-"]) == 0 {
		t.Error("network(): no line stored")
	}
}
