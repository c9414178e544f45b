package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

func listOf(t *testing.T, c *redis.Client, key string) string {
	t.Helper()
	vals, err := c.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(vals, ",")
}

// TestLaneIdempotent pushes flushes and retries of flushes: a retry of a
// flush that was applied (same lane, same sequence number: what a retry after
// a lost reply sends) is not stored again, a retry of a flush that never
// landed is stored, the next flush is stored, and lanes with other ids
// (another lane of the same Writer, a lane of another Writer, that is another
// process) are independent.
func TestLaneIdempotent(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{})
	mc := master.Client()
	defer mc.Close()
	m := NewMetrics(prometheus.NewRegistry())
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: time.Second, PoolSize: 4}, m, discard())
	defer rdb.Close()
	o := WriterOptions{Key: "q", RetryTimeout: 2 * time.Minute, Logger: discard(), Metrics: m}
	w1, w2 := NewWriter(rdb, o), NewWriter(rdb, o)
	lanes := map[string]*Flusher{"w1/0": w1.NewFlusher(), "w1/1": w1.NewFlusher(), "w2/0": w2.NewFlusher()}
	for _, l := range lanes {
		defer l.Close()
	}
	if k0, k1, k2 := lanes["w1/0"].Key(), lanes["w1/1"].Key(), lanes["w2/0"].Key(); k0 == k1 || k0 == k2 || k1 == k2 {
		t.Fatalf("sequence keys not unique: %s %s %s", k0, k1, k2)
	}

	const (
		flush     = "flush"      // Push: a new flush
		retrySame = "retry same" // the retry attempt (EVAL) of the last flush
		retryNew  = "retry new"  // the retry attempt of a new flush whose first attempt never landed
	)
	steps := []struct {
		name        string
		lane        string
		how         string
		vals        []string
		want        string // the whole list afterwards
		wantApplied float64
	}{
		{name: "first flush", lane: "w1/0", how: flush, vals: []string{"a", "b"}, want: "a,b"},
		{name: "its retry", lane: "w1/0", how: retrySame, vals: []string{"a", "b"}, want: "a,b", wantApplied: 1},
		{name: "its retry again", lane: "w1/0", how: retrySame, vals: []string{"a", "b"}, want: "a,b", wantApplied: 2},
		{name: "next flush", lane: "w1/0", how: flush, vals: []string{"c"}, want: "a,b,c", wantApplied: 2},
		{name: "retry of a flush that never landed", lane: "w1/0", how: retryNew, vals: []string{"d"}, want: "a,b,c,d", wantApplied: 2},
		{name: "and its second retry", lane: "w1/0", how: retrySame, vals: []string{"d"}, want: "a,b,c,d", wantApplied: 3},
		{name: "other lane, same writer", lane: "w1/1", how: flush, vals: []string{"e"}, want: "a,b,c,d,e", wantApplied: 3},
		{name: "other writer, same lane index", lane: "w2/0", how: flush, vals: []string{"f"}, want: "a,b,c,d,e,f", wantApplied: 3},
		{name: "other writer retries", lane: "w2/0", how: retrySame, vals: []string{"f"}, want: "a,b,c,d,e,f", wantApplied: 4},
		{name: "first lane goes on", lane: "w1/0", how: flush, vals: []string{"g", "h"}, want: "a,b,c,d,e,f,g,h", wantApplied: 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			l := lanes[st.lane]
			ctx := context.Background()
			var err error
			switch st.how {
			case flush:
				err = l.Push(ctx, args(st.vals...), time.Now().Add(5*time.Second))
			case retryNew:
				l.seq++
				fallthrough
			case retrySame:
				_, err = l.pushOnce(ctx, strconv.FormatUint(l.seq, 10), args(st.vals...))
			}
			if err != nil {
				t.Fatalf("%s: %v", st.how, err)
			}
			if got := listOf(t, mc, "q"); got != st.want {
				t.Fatalf("list %q, want %q", got, st.want)
			}
			if got := counterValue(t, m.duplicateFlushes); got != st.wantApplied {
				t.Fatalf("already-applied flushes %v, want %v", got, st.wantApplied)
			}
			stored, err := mc.Get(ctx, l.Key()).Result()
			if err != nil || stored != strconv.FormatUint(l.seq, 10) {
				t.Fatalf("lane key %s = %q (%v), want %d", l.Key(), stored, err, l.seq)
			}
			ttl, err := mc.PTTL(ctx, l.Key()).Result()
			// 10 x RetryTimeout = 20 min, above the 10 min minimum; the
			// key was just SET, so far more than 10 min must be left.
			if err != nil || ttl <= MinSeqKeyTTL || ttl > 20*time.Minute {
				t.Fatalf("lane key TTL %v (%v), want (10m, 20m]", ttl, err)
			}
		})
	}
}

// TestLaneLargeBatch pushes batches around and above the Lua unpack limit
// (about 8000 values) both ways: through Push and as a retry of a flush
// whose first attempt never landed (seqScript pushes in chunks of 4000 in
// both): in order, once.
func TestLaneLargeBatch(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{})
	mc := master.Client()
	defer mc.Close()
	m := NewMetrics(prometheus.NewRegistry())
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: 5 * time.Second, PoolSize: 2}, m, discard())
	defer rdb.Close()
	w := NewWriter(rdb, WriterOptions{Key: "big", Logger: discard(), Metrics: m})
	lane := w.NewFlusher()
	defer lane.Close()
	for _, n := range []int{3999, 4000, 4001, 8001, 20000, 1 << 16} {
		for _, retry := range []bool{false, true} {
			t.Run(fmt.Sprintf("n=%d/retry=%v", n, retry), func(t *testing.T) {
				ctx := context.Background()
				if err := mc.Del(ctx, "big").Err(); err != nil {
					t.Fatal(err)
				}
				vals := make([]string, n)
				for i := range vals {
					vals[i] = strconv.Itoa(i)
				}
				var err error
				if retry { // the retry of a new flush whose first attempt never landed
					lane.seq++
					_, err = lane.pushOnce(ctx, strconv.FormatUint(lane.seq, 10), args(vals...))
				} else {
					err = lane.Push(ctx, args(vals...), time.Now().Add(20*time.Second))
				}
				if err != nil {
					t.Fatalf("push %d values: %v", n, err)
				}
				got, err := mc.LRange(ctx, "big", 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != n {
					t.Fatalf("stored %d values, want %d", len(got), n)
				}
				for i, v := range got {
					if v != vals[i] {
						t.Fatalf("value %d is %q, want %q", i, v, vals[i])
					}
				}
			})
		}
	}
}

// TestLaneRetryAfterLostReply loses the reply of an applied flush: the
// master (no replica yet, WAIT 1) applies the script, and while its WAIT is
// pending the lane's connection is killed with CLIENT KILL. The lane retries
// on a new connection; that retry must not push the batch again, and its
// WAIT must still wait for a replica to have the batch. A replica is started
// only once the retry's WAIT is pending; then the flush succeeds, and master
// and replica hold the batch exactly once.
func TestLaneRetryAfterLostReply(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{Password: "pw"})
	mc := master.Client()
	defer mc.Close()
	m := NewMetrics(prometheus.NewRegistry())
	const waitTimeout = 30 * time.Second // WAIT stays pending until the test acts
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr, RedisPassword: "pw"}, Timeout: time.Second, WaitTimeout: waitTimeout, PoolSize: 2}, m, discard())
	defer rdb.Close()
	w := NewWriter(rdb, WriterOptions{Key: "q", MinReplicas: 1, WaitTimeout: waitTimeout, RetryTimeout: time.Minute, Logger: discard(), Metrics: m})
	lane := w.NewFlusher()
	defer lane.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- lane.Push(ctx, args("a", "b", "c"), time.Now().Add(90*time.Second)) }()

	first := waitingClient(t, ctx, mc, "", done)
	if got := listOf(t, mc, "q"); got != "a,b,c" {
		t.Fatalf("before the kill: list %q, want a,b,c (applied, WAIT pending)", got)
	}
	if err := mc.Do(ctx, "client", "kill", "id", first).Err(); err != nil {
		t.Fatalf("CLIENT KILL ID %s: %v", first, err)
	}
	second := waitingClient(t, ctx, mc, first, done)
	t.Logf("flush applied on connection %s, killed during WAIT; retry's WAIT pending on connection %s after %v", first, second, time.Since(start))
	if got := listOf(t, mc, "q"); got != "a,b,c" {
		t.Fatalf("after the retry: list %q, want a,b,c once", got)
	}

	replica := redistest.NewRedis(t, redistest.RedisOptions{Password: "pw", ReplicaOf: master.Addr})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("Push did not return: %v", ctx.Err())
	}
	t.Logf("flush acknowledged %v after start", time.Since(start))
	if got := listOf(t, mc, "q"); got != "a,b,c" {
		t.Fatalf("master list %q, want a,b,c once", got)
	}
	rc := replica.Client()
	defer rc.Close()
	if got := listOf(t, rc, "q"); got != "a,b,c" {
		t.Fatalf("replica list %q, want a,b,c once (WAIT 1 returned, so the replica has it)", got)
	}
	if got := counterValue(t, m.duplicateFlushes); got != 1 {
		t.Fatalf("already-applied flushes %v, want 1", got)
	}
}

// waitingClient polls CLIENT LIST until a client other than the caller's own
// and other than skip is blocked in WAIT, and returns its id. It fails the
// test when Push returns first.
func waitingClient(t *testing.T, ctx context.Context, mc *redis.Client, skip string, done <-chan error) string {
	t.Helper()
	for {
		list, err := mc.ClientList(ctx).Result()
		if err != nil {
			t.Fatalf("CLIENT LIST: %v", err)
		}
		for _, line := range strings.Split(list, "\n") {
			if id := clientField(line, "id"); clientField(line, "cmd") == "wait" && id != skip {
				return id
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Push returned %v before its WAIT was seen", err)
		case <-ctx.Done():
			t.Fatalf("no WAIT pending: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLaneRejected: flushes Redis refuses are never acknowledged and leave
// nothing behind. Below min-replicas-to-write seqScript is refused before
// anything runs (declared as writing by its #!lua line, so refused like a
// plain RPUSH). When the list key holds a string, the script's RPUSH fails
// and the script stops before its SET: the lane key is not written either.
func TestLaneRejected(t *testing.T) {
	tests := []struct {
		name    string
		extra   []string // redis.conf lines
		prepare bool     // SET the list key to a string first
		stored  bool     // store a flush (and DEL the list) before the prepare
		reason  string   // retries metric label
		want    string   // in the error
	}{
		{name: "NOREPLICAS", extra: []string{"min-replicas-to-write 1"}, reason: "NOREPLICAS", want: "NOREPLICAS"},
		{name: "WRONGTYPE", prepare: true, reason: "WRONGTYPE", want: "WRONGTYPE"},
		{name: "WRONGTYPE in a transaction", stored: true, prepare: true, reason: "WRONGTYPE", want: "WRONGTYPE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			master := redistest.NewRedis(t, redistest.RedisOptions{ExtraConfig: tc.extra})
			mc := master.Client()
			defer mc.Close()
			ctx := context.Background()
			m := NewMetrics(prometheus.NewRegistry())
			rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: time.Second, PoolSize: 2}, m, discard())
			defer rdb.Close()
			w := NewWriter(rdb, WriterOptions{Key: "q", Logger: discard(), Metrics: m})
			lane := w.NewFlusher()
			defer lane.Close()
			if tc.stored {
				// The lane's connection then watches its key: the next
				// flush is a transaction, whose RPUSH fails inside EXEC
				// while its SET of the lane key is applied.
				if err := lane.Push(ctx, args("z"), time.Now().Add(5*time.Second)); err != nil {
					t.Fatalf("first flush: %v", err)
				}
				if err := mc.Del(ctx, "q").Err(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.prepare {
				if err := mc.Set(ctx, "q", "not a list", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			err := lane.Push(ctx, args("a"), time.Now().Add(300*time.Millisecond))
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Push: %v, want ErrUnavailable with %s", err, tc.want)
			}
			typ, err := mc.Type(ctx, "q").Result()
			if err != nil {
				t.Fatal(err)
			}
			if tc.prepare && typ != "string" || !tc.prepare && typ != "none" {
				t.Fatalf("list key is a %s, want it untouched", typ)
			}
			if n, err := mc.Exists(ctx, lane.Key()).Result(); err != nil || (n != 0) != tc.stored {
				t.Fatalf("lane key exists: %d %v", n, err)
			}
			// the first attempt and at least one retry
			if got := counterValue(t, m.retries.WithLabelValues(tc.reason)); got < 2 {
				t.Fatalf("%s retries %v, want at least 2", tc.reason, got)
			}
			if got := counterValue(t, m.duplicateFlushes); got != 0 {
				t.Fatalf("already-applied flushes %v, want 0", got)
			}
			if !tc.prepare {
				return
			}
			// Once the list key is a list again, the lane's next retry of the
			// refused flush stores it: the lane key must not show it applied.
			if err := mc.Del(ctx, "q").Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := lane.pushOnce(ctx, strconv.FormatUint(lane.seq, 10), args("a")); err != nil {
				t.Fatalf("retry of the refused flush: %v", err)
			}
			if got := listOf(t, mc, "q"); got != "a" {
				t.Fatalf("after a retry of the refused flush: list %q, want a", got)
			}
			if got := counterValue(t, m.duplicateFlushes); got != 0 {
				t.Fatalf("already-applied flushes %v, want 0", got)
			}
		})
	}
}

// TestLaneLateFirstAttempt delays the bytes of a flush's first attempt
// until after its retry: a proxy between the lane and Redis holds back what
// the lane sends on its connection, the lane gives up on that attempt (read
// timeout), retries on a new connection and succeeds, and the lane's next
// flush is stored too. Then the proxy releases the held bytes to Redis, as a
// TCP retransmission would deliver them. The stale attempt must not store
// its batch a second time, and must not move the lane key backwards (a
// later retry of an applied flush would then push again).
func TestLaneLateFirstAttempt(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{})
	mc := master.Client()
	defer mc.Close()
	proxy := newHoldProxy(t, master.Addr)
	m := NewMetrics(prometheus.NewRegistry())
	const timeout = 300 * time.Millisecond // the lane gives up on a held attempt after this
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: proxy.Addr()}, Timeout: timeout, PoolSize: 2}, m, discard())
	defer rdb.Close()
	w := NewWriter(rdb, WriterOptions{Key: "q", RetryTimeout: time.Minute, Logger: discard(), Metrics: m})
	lane := w.NewFlusher()
	defer lane.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deadline := func() time.Time { return time.Now().Add(20 * time.Second) }

	if err := lane.Push(ctx, args("a"), deadline()); err != nil {
		t.Fatalf("flush 1: %v", err)
	}
	if n := proxy.holdAll(); n != 1 {
		t.Fatalf("proxy holds %d connections, want the lane's 1", n)
	}
	start := time.Now()
	if err := lane.Push(ctx, args("b"), deadline()); err != nil {
		t.Fatalf("flush 2: %v", err)
	}
	t.Logf("flush 2 stored by its retry %v after its held first attempt", time.Since(start))
	if proxy.heldBytes() == 0 {
		t.Fatal("flush 2's first attempt did not go through the held connection")
	}
	if err := lane.Push(ctx, args("c"), deadline()); err != nil {
		t.Fatalf("flush 3: %v", err)
	}
	if got := listOf(t, mc, "q"); got != "a,b,c" {
		t.Fatalf("before the release: list %q, want a,b,c", got)
	}

	replies, err := proxy.release(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replies to the late first attempt of flush 2: %q", replies)
	if got := listOf(t, mc, "q"); got != "a,b,c" {
		t.Errorf("after the late first attempt of flush 2: list %q, want a,b,c", got)
	}
	if got, err := mc.Get(ctx, lane.Key()).Result(); err != nil || got != "3" {
		t.Errorf("after the late first attempt of flush 2: lane key %q (%v), want 3", got, err)
	}
	// A retry of flush 3 (its reply lost) must find it applied.
	if err := mc.Del(ctx, "q").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := lane.pushOnce(ctx, "3", args("c")); err != nil {
		t.Fatalf("retry of flush 3: %v", err)
	}
	if got := listOf(t, mc, "q"); got != "" {
		t.Errorf("a retry of flush 3 pushed %q again, want nothing", got)
	}
}

// TestLaneLateTransaction: like TestLaneLateFirstAttempt, the proxy holds
// back a flush's first attempt until its retry and the next flush are
// stored, for first attempts that are transactions guarded by the WATCH of
// either kind of pipeline before them on their connection: the checked
// script (the first flush on a connection) or a transaction. With a replica
// and MinReplicas the held pipeline ends in WAIT. The late transaction must
// abort (EXEC answers nil): the list holds every batch once, the lane key
// the last flush's sequence number, and a retry of the last flush finds it
// applied.
func TestLaneLateTransaction(t *testing.T) {
	tests := []struct {
		name    string
		before  []string // flushes stored on the connection before the hold
		replica bool     // a replica, MinReplicas 1: WAIT in every pipeline
	}{
		{name: "guarded by the script's WATCH", before: []string{"a"}},
		{name: "guarded by a transaction's WATCH", before: []string{"a", "b"}},
		{name: "after several transactions", before: []string{"a", "b", "c", "d"}},
		{name: "with WAIT", before: []string{"a", "b"}, replica: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			master := redistest.NewRedis(t, redistest.RedisOptions{})
			mc := master.Client()
			defer mc.Close()
			minReplicas := 0
			if tc.replica {
				redistest.NewRedis(t, redistest.RedisOptions{ReplicaOf: master.Addr})
				waitOnline(t, master, 1)
				minReplicas = 1
			}
			proxy := newHoldProxy(t, master.Addr)
			m := NewMetrics(prometheus.NewRegistry())
			const timeout = 300 * time.Millisecond // the lane gives up on a held attempt after this
			const waitTimeout = 200 * time.Millisecond
			rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: proxy.Addr()}, Timeout: timeout, WaitTimeout: waitTimeout, PoolSize: 2}, m, discard())
			defer rdb.Close()
			w := NewWriter(rdb, WriterOptions{Key: "q", MinReplicas: minReplicas, WaitTimeout: waitTimeout, RetryTimeout: time.Minute, Logger: discard(), Metrics: m})
			lane := w.NewFlusher()
			defer lane.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			deadline := func() time.Time { return time.Now().Add(20 * time.Second) }

			for _, v := range tc.before {
				if err := lane.Push(ctx, args(v), deadline()); err != nil {
					t.Fatalf("flush %s: %v", v, err)
				}
			}
			if !lane.watching {
				t.Fatal("the lane's connection does not watch its key: the next flush would not be a transaction")
			}
			if n := proxy.holdAll(); n != 1 {
				t.Fatalf("proxy holds %d connections, want the lane's 1", n)
			}
			if err := lane.Push(ctx, args("late"), deadline()); err != nil {
				t.Fatalf("held flush: %v", err)
			}
			if proxy.heldBytes() == 0 {
				t.Fatal("the held flush's first attempt did not go through the held connection")
			}
			if err := lane.Push(ctx, args("next"), deadline()); err != nil {
				t.Fatalf("next flush: %v", err)
			}
			want := strings.Join(append(slices.Clone(tc.before), "late", "next"), ",")
			if got := listOf(t, mc, "q"); got != want {
				t.Fatalf("before the release: list %q, want %s", got, want)
			}

			replies, err := proxy.release(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("replies to the late first attempt: %q", replies)
			if len(replies) != 1 || !strings.Contains(replies[0], "+QUEUED\r\n+QUEUED\r\n_\r\n") {
				t.Errorf("late first attempt answered %q, want a transaction whose EXEC is nil", replies)
			}
			if got := listOf(t, mc, "q"); got != want {
				t.Errorf("after the late first attempt: list %q, want %s", got, want)
			}
			last := strconv.FormatUint(lane.seq, 10)
			if got, err := mc.Get(ctx, lane.Key()).Result(); err != nil || got != last {
				t.Errorf("after the late first attempt: lane key %q (%v), want %s", got, err, last)
			}
			if err := mc.Del(ctx, "q").Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := lane.pushOnce(ctx, last, args("next")); err != nil {
				t.Fatalf("retry of the last flush: %v", err)
			}
			if got := listOf(t, mc, "q"); got != "" {
				t.Errorf("a retry of the last flush pushed %q again, want nothing", got)
			}
		})
	}
}

// TestLaneScriptCache: the first flush on a connection is seqScript, sent
// with its text (EVAL); the lane's later flushes are WATCH-guarded
// transactions (EXEC). When the lane key was written since the lane's last
// flush (here another client SETs it to the value it holds), the
// transaction aborts and the flush goes through the script on the same
// connection, now sent as its hash (EVALSHA); after SCRIPT FLUSH the
// NOSCRIPT answer makes it send the text again. Every flush is stored once
// and the lane key holds the last flush's sequence number.
func TestLaneScriptCache(t *testing.T) {
	master := redistest.NewRedis(t, redistest.RedisOptions{})
	mc := master.Client()
	defer mc.Close()
	m := NewMetrics(prometheus.NewRegistry())
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: master.Addr}, Timeout: time.Second, PoolSize: 2}, m, discard())
	defer rdb.Close()
	w := NewWriter(rdb, WriterOptions{Key: "q", Logger: discard(), Metrics: m})
	lane := w.NewFlusher()
	defer lane.Close()
	ctx := context.Background()
	steps := []struct {
		name                string
		flush               bool // SCRIPT FLUSH first
		touch               bool // SET the lane key to its value first
		val                 string
		want                string
		eval, evalsha, exec string  // calls so far, from INFO commandstats
		aborted             float64 // transactions aborted so far (retries metric)
	}{
		{name: "first flush sends the text", val: "a", want: "a", eval: "1", evalsha: "", exec: ""},
		{name: "then a transaction", val: "b", want: "a,b", eval: "1", evalsha: "", exec: "1"},
		{name: "touched lane key: the hash", touch: true, val: "c", want: "a,b,c", eval: "1", evalsha: "1", exec: "2", aborted: 1},
		{name: "then a transaction again", val: "d", want: "a,b,c,d", eval: "1", evalsha: "1", exec: "3", aborted: 1},
		{name: "after SCRIPT FLUSH the text again", flush: true, touch: true, val: "e", want: "a,b,c,d,e", eval: "2", evalsha: "2", exec: "4", aborted: 2},
		{name: "then the hash again", touch: true, val: "f", want: "a,b,c,d,e,f", eval: "2", evalsha: "3", exec: "5", aborted: 3},
		{name: "and a transaction", val: "g", want: "a,b,c,d,e,f,g", eval: "2", evalsha: "3", exec: "6", aborted: 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.flush {
				if err := mc.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if st.touch {
				v, err := mc.Get(ctx, lane.Key()).Result()
				if err != nil {
					t.Fatal(err)
				}
				if err := mc.Set(ctx, lane.Key(), v, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := lane.Push(ctx, args(st.val), time.Now().Add(5*time.Second)); err != nil {
				t.Fatalf("Push: %v", err)
			}
			if got := listOf(t, mc, "q"); got != st.want {
				t.Fatalf("list %q, want %q", got, st.want)
			}
			if got, err := mc.Get(ctx, lane.Key()).Result(); err != nil || got != strconv.FormatUint(lane.seq, 10) {
				t.Fatalf("lane key %q (%v), want %d", got, err, lane.seq)
			}
			stats, err := mc.Info(ctx, "commandstats").Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := calls(stats, "eval"); got != st.eval {
				t.Errorf("EVAL calls %q, want %q", got, st.eval)
			}
			if got := calls(stats, "evalsha"); got != st.evalsha {
				t.Errorf("EVALSHA calls %q, want %q", got, st.evalsha)
			}
			if got := calls(stats, "exec"); got != st.exec {
				t.Errorf("EXEC calls %q, want %q", got, st.exec)
			}
			if got := counterValue(t, m.retries.WithLabelValues("watch_aborted")); got != st.aborted {
				t.Errorf("aborted transactions %v, want %v", got, st.aborted)
			}
			if got := counterValue(t, m.duplicateFlushes); got != 0 {
				t.Errorf("already-applied flushes %v, want 0", got)
			}
		})
	}
}

// calls returns the calls= field of cmdstat_<cmd> in INFO commandstats, or
// "" if the command was never called.
func calls(stats, cmd string) string {
	for _, line := range strings.Split(stats, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":"); ok {
			for _, kv := range strings.Split(v, ",") {
				if c, ok := strings.CutPrefix(kv, "calls="); ok {
					return c
				}
			}
		}
	}
	return ""
}

// TestBackoffJitter: the pauses between attempts are drawn from [backoff/2,
// backoff], independently per lane, so that the lanes of all containers do
// not retry in step after a failover. It draws a series of pauses for the
// same backoff on two lanes of one Writer and a lane of another Writer.
func TestBackoffJitter(t *testing.T) {
	rdb := NewClient(ClientOptions{Redis: redisconn.Config{RedisAddr: "127.0.0.1:1"}, Timeout: time.Second}, NewMetrics(prometheus.NewRegistry()), discard())
	defer rdb.Close()
	o := WriterOptions{Key: "q", Logger: discard()}
	w1, w2 := NewWriter(rdb, o), NewWriter(rdb, o)
	lanes := []*Flusher{w1.NewFlusher(), w1.NewFlusher(), w2.NewFlusher()}
	tests := []struct {
		backoff time.Duration
		spread  bool // the pauses must differ (lanes not in step)
	}{
		{backoff: 0},
		{backoff: 1},
		{backoff: 20 * time.Millisecond, spread: true},
		{backoff: time.Second, spread: true},
	}
	for _, tc := range tests {
		t.Run(tc.backoff.String(), func(t *testing.T) {
			const draws = 32
			series := make([][]time.Duration, len(lanes))
			for i, l := range lanes {
				for range draws {
					p := l.jittered(tc.backoff)
					if p < tc.backoff/2 || p > tc.backoff {
						t.Fatalf("lane %d: pause %v for backoff %v, want within [%v, %v]", i, p, tc.backoff, tc.backoff/2, tc.backoff)
					}
					series[i] = append(series[i], p)
				}
			}
			if !tc.spread {
				return
			}
			for i := range series {
				for j := i + 1; j < len(series); j++ {
					if slices.Equal(series[i], series[j]) {
						t.Errorf("lanes %d and %d pause in step: %v", i, j, series[i][:4])
					}
				}
				if slices.Min(series[i]) == slices.Max(series[i]) {
					t.Errorf("lane %d always pauses %v", i, series[i][0])
				}
			}
		})
	}
}

// clientField is the value of key in a CLIENT LIST line ("id=7 cmd=wait").
func clientField(line, key string) string {
	for _, kv := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
