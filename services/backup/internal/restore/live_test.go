package restore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// onPlan is the restore's Out: it records the output and, once the plan
// has been printed (the "WILL OVERWRITE" line), runs hook once, before Run
// acts on it.
type onPlan struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	hook func()
	done bool
}

func (o *onPlan) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf.Write(p)
	run := !o.done && bytes.Contains(o.buf.Bytes(), []byte("WILL OVERWRITE")) && o.hook != nil
	if run {
		o.done = true
	}
	o.mu.Unlock()
	if run {
		o.hook()
	}
	return len(p), nil
}

func (o *onPlan) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// liveWriter RPUSHes one message at a time, like ingest, and records those
// Redis acknowledged. Its messages are numbered in the order they were sent.
type liveWriter struct {
	c      *redis.Client
	prefix string
	mu     sync.Mutex
	acked  []string
}

func (w *liveWriter) push(ctx context.Context, i int) {
	m := msg(w.prefix, i)
	if err := w.c.RPush(ctx, key, m).Err(); err == nil {
		w.mu.Lock()
		w.acked = append(w.acked, m)
		w.mu.Unlock()
	}
}

// run pushes messages from..to-1 until stop is closed or all are sent.
func (w *liveWriter) run(ctx context.Context, from, to int, stop <-chan struct{}) {
	for i := from; i < to; i++ {
		select {
		case <-stop:
			return
		default:
		}
		w.push(ctx, i)
	}
}

func (w *liveWriter) ackedSoFar() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

// TestRestoreWithLiveWriter restores while a writer keeps appending to the
// queue (bounded: at most 20,000 messages), in both modes, on a single
// node. The restore must keep every message the writer got an OK for, after
// the restored ones and in order; -replace must discard exactly the
// elements the plan counted. Some writes are made synchronously right after
// the plan is printed, so that they surely fall between the plan's count
// and the restore's last step; the rest run concurrently.
func TestRestoreWithLiveWriter(t *testing.T) {
	tests := []struct {
		name    string
		replace bool
		current int // elements in the queue at plan time
	}{
		{name: "merge", current: 5000},
		{name: "replace", replace: true, current: 5000},
		{name: "replace an empty queue", replace: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r := redistest.NewRedis(t, redistest.RedisOptions{Password: password, ExtraConfig: []string{"repl-diskless-sync-delay 0"}})
			mc := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password})
			defer mc.Close()
			const backupLen = 20000
			push(t, mc, "backup", backupLen)
			dir := t.TempDir()
			s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := mc.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			push(t, mc, "current", tc.current)

			w := &liveWriter{c: mc, prefix: "live"}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			out := &onPlan{hook: func() {
				w.run(ctx, 0, 200, nil) // after the plan's count, before the restore acts
				wg.Add(1)
				go func() { defer wg.Done(); w.run(ctx, 200, 20000, stop) }()
			}}
			res, err := Run(ctx, filepath.Join(dir, m.File), Options{Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password},
				Key: key, Replace: tc.replace, Confirm: true, Timeout: 30 * time.Second, Out: out})
			close(stop)
			wg.Wait()
			t.Logf("restore output:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			acked := w.ackedSoFar()
			got, err := mc.LRange(ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("result %+v; the writer got %d OKs, the queue holds %d elements", res, len(acked), len(got))
			want := make([]string, 0, backupLen+tc.current+len(acked))
			for i := range backupLen {
				want = append(want, msg("backup", i))
			}
			if !tc.replace {
				for i := range tc.current {
					want = append(want, msg("current", i))
				}
			}
			want = append(want, acked...)
			if len(got) != len(want) {
				lost := 0
				have := map[string]bool{}
				for _, g := range got {
					have[g] = true
				}
				for _, a := range acked {
					if !have[a] {
						lost++
					}
				}
				t.Fatalf("the queue holds %d elements, want %d; %d of %d acknowledged live messages are missing", len(got), len(want), lost, len(acked))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("element %d = %q, want %q", i, got[i], want[i])
				}
			}
			if res.Restored != backupLen {
				t.Errorf("Restored %d, want %d", res.Restored, backupLen)
			}
		})
	}
}

// TestRestoreReplaceRefusesConsumedQueue: when elements are taken from the
// head of the queue between the plan and the discard (a consumer), the
// elements the plan counted are no longer the first ones; -replace must
// refuse rather than discard messages appended since, and change nothing.
func TestRestoreReplaceRefusesConsumedQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := redistest.NewRedis(t, redistest.RedisOptions{Password: password, ExtraConfig: []string{"repl-diskless-sync-delay 0"}})
	mc := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password})
	defer mc.Close()
	push(t, mc, "backup", 3000)
	dir := t.TempDir()
	s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	push(t, mc, "current", 100)
	out := &onPlan{hook: func() {
		if err := mc.LPop(ctx, key).Err(); err != nil {
			t.Error(err)
		}
		if err := mc.RPush(ctx, key, "live").Err(); err != nil {
			t.Error(err)
		}
	}}
	_, err = Run(ctx, filepath.Join(dir, m.File), Options{Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password},
		Key: key, Replace: true, Confirm: true, Timeout: 30 * time.Second, Out: out})
	t.Logf("restore output:\n%s", out.String())
	if err == nil || !strings.Contains(err.Error(), "CHANGED") {
		t.Fatalf("Run: %v, want a refusal (CHANGED)", err)
	}
	got, err := mc.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for i := 1; i < 100; i++ {
		want = append(want, msg("current", i))
	}
	want = append(want, "live")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("the refused restore changed the queue: %d elements, first %q", len(got), fmt.Sprint(got[:min(2, len(got))]))
	}
}

// TestRestoreMergeChunked merges a backup of 20,000 elements into a live
// queue of 30,000 while a writer keeps appending. The merge must not be one
// Lua call over a whole list (it blocks the master, and its replicas, for
// as long as it runs): every script call may move at most 1,000 elements,
// so there must be at least 20 calls. Every acknowledged message stays, in
// order, after the backup's. The slowest script call is logged (SLOWLOG),
// not asserted.
func TestRestoreMergeChunked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := redistest.NewRedis(t, redistest.RedisOptions{Password: password,
		ExtraConfig: []string{"repl-diskless-sync-delay 0", "slowlog-log-slower-than 0", "slowlog-max-len 100000"}})
	mc := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password})
	defer mc.Close()
	const backupLen, current = 20000, 30000
	push(t, mc, "backup", backupLen)
	dir := t.TempDir()
	s, err := snapshot.New(snapshot.Options{Dir: dir, Key: key, Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	push(t, mc, "current", current)
	if err := mc.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := mc.SlowLogReset(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w := &liveWriter{c: mc, prefix: "live"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	out := &onPlan{hook: func() {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, 0, 20000, stop) }()
	}}
	_, err = Run(ctx, filepath.Join(dir, m.File), Options{Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password},
		Key: key, Confirm: true, Timeout: 30 * time.Second, Out: out})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	stats, err := mc.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	scripts := cmdCalls(stats, "eval") + cmdCalls(stats, "evalsha")
	var slowest time.Duration
	logs, err := mc.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if len(l.Args) > 0 && strings.HasPrefix(strings.ToLower(l.Args[0]), "eval") {
			slowest = max(slowest, l.Duration)
		}
	}
	t.Logf("merge: %d script calls, the slowest took %v", scripts, slowest)
	if scripts < backupLen/1000 {
		t.Errorf("the merge ran in %d script calls, want at least %d (at most 1000 elements each)", scripts, backupLen/1000)
	}
	acked := w.ackedSoFar()
	got, err := mc.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, backupLen+current+len(acked))
	for i := range backupLen {
		want = append(want, msg("backup", i))
	}
	for i := range current {
		want = append(want, msg("current", i))
	}
	want = append(want, acked...)
	t.Logf("the writer got %d OKs during the restore", len(acked))
	if len(got) != len(want) {
		t.Fatalf("the queue holds %d elements, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n, err := mc.Exists(ctx, key+":restore-staging").Result(); err != nil || n != 0 {
		t.Errorf("staging key left behind: %d %v", n, err)
	}
}

// cmdCalls returns the calls of cmdstat_<cmd> in INFO commandstats that
// ran: calls less rejected_calls and failed_calls (a NOSCRIPT EVALSHA).
func cmdCalls(stats, cmd string) int {
	for _, line := range strings.Split(stats, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":"); ok {
			n := 0
			for _, kv := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(kv, "=")
				var x int
				fmt.Sscan(val, &x)
				switch k {
				case "calls":
					n += x
				case "rejected_calls", "failed_calls":
					n -= x
				}
			}
			return n
		}
	}
	return 0
}

// TestPrependScriptBounds runs prependScript directly: each call moves at
// most maxn elements and, with elements of equal size, at most one element
// more than fits in maxb bytes; the calls together make the queue the
// staging list followed by what the queue held.
func TestPrependScriptBounds(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	c := r.Client()
	defer c.Close()
	tests := []struct {
		name             string
		staging, current int
		size             int // bytes per element
		maxn, maxb       int
	}{
		{name: "element bound", staging: 2500, current: 3, size: 10, maxn: 1000, maxb: 1 << 20},
		{name: "byte bound", staging: 300, current: 2, size: 1000, maxn: 1000, maxb: 20000},
		{name: "one large element per call", staging: 5, current: 0, size: 100000, maxn: 1000, maxb: 1000},
		{name: "empty staging", staging: 0, current: 4, size: 10, maxn: 1000, maxb: 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			elem := func(p string, i int) string {
				s := fmt.Sprintf("%s-%d-", p, i)
				return s + strings.Repeat("x", tc.size-len(s))
			}
			var want []string
			for i := range tc.staging {
				want = append(want, elem("s", i))
				if err := c.RPush(ctx, "staging", elem("s", i)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tc.current {
				want = append(want, elem("q", i))
				if err := c.RPush(ctx, "q", elem("q", i)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			perCall := min(tc.maxn, tc.maxb/tc.size+1)
			script := redis.NewScript(prependScript)
			left, calls := int64(tc.staging), 0
			for left > 0 || calls == 0 {
				r, err := script.Run(ctx, c, []string{"q", "staging"}, tc.maxn, tc.maxb).Int64Slice()
				if err != nil {
					t.Fatal(err)
				}
				if moved := left - r[0]; moved > int64(perCall) || (left > 0 && moved < 1) {
					t.Fatalf("call %d moved %d elements, want 1..%d", calls, moved, perCall)
				}
				left = r[0]
				calls++
			}
			got, err := c.LRange(ctx, "q", 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("queue after %d calls: %d elements, want %d in order", calls, len(got), len(want))
			}
			if n, _ := c.Exists(ctx, "staging").Result(); n != 0 {
				t.Fatal("staging key left behind")
			}
		})
	}
}
