package queue_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/consumer/queue"
)

func newClient(t *testing.T) *redis.Client {
	t.Helper()
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	rdb := r.Client()
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// push appends messages "<prefix>-<i>" for i in [from, to) to key.
func push(t *testing.T, rdb *redis.Client, key, prefix string, from, to int) []string {
	t.Helper()
	var vals []any
	var out []string
	for i := from; i < to; i++ {
		m := fmt.Sprintf("%s-%05d", prefix, i)
		vals = append(vals, m)
		out = append(out, m)
	}
	if err := rdb.RPush(context.Background(), key, vals...).Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func strs(msgs [][]byte) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m)
	}
	return out
}

// drain takes and acks batches of n until the queue is empty (bounded).
func drain(t *testing.T, c *queue.Consumer, n int) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	for range 100000 {
		msgs, err := c.NextBatch(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return got
		}
		if len(msgs) > n {
			t.Fatalf("batch of %d, asked for %d", len(msgs), n)
		}
		got = append(got, strs(msgs)...)
		if err := c.Ack(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("queue never drained")
	return nil
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s:\n got %d %v\nwant %d %v", what, len(got), head(got), len(want), head(want))
	}
}

func head(s []string) []string {
	if len(s) > 12 {
		return append(s[:12:12], "...")
	}
	return s
}

func llen(t *testing.T, rdb *redis.Client, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    queue.Options
		wantErr string
		key     string
	}{
		{"defaults", queue.Options{Name: "c1"}, "", "data_queue"},
		{"own key", queue.Options{Name: "c1", Key: "q"}, "", "q"},
		{"no name", queue.Options{}, "empty name", ""},
		{"negative block", queue.Options{Name: "c1", Block: -time.Second}, "negative block", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := queue.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Key() != tc.key || c.ProcessingKey() != tc.key+":processing:c1" || c.Name() != "c1" {
				t.Fatalf("key %q processing %q name %q", c.Key(), c.ProcessingKey(), c.Name())
			}
		})
	}
}

// TestOrder: a single consumer sees the queue's order whatever its batch
// size, and acking leaves nothing in its processing list.
func TestOrder(t *testing.T) {
	rdb := newClient(t)
	ctx := context.Background()
	for _, n := range []int{1, 7, 100, 1000} {
		t.Run(fmt.Sprint("batch ", n), func(t *testing.T) {
			key := fmt.Sprintf("q%d", n)
			want := push(t, rdb, key, "m", 0, 250)
			c, err := queue.Open(ctx, rdb, queue.Options{Key: key, Name: "c"})
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "delivered", drain(t, c, n), want)
			if p, err := c.Pending(ctx); err != nil || p != 0 {
				t.Fatalf("pending %d %v after acking everything", p, err)
			}
			if l := llen(t, rdb, key); l != 0 {
				t.Fatalf("queue holds %d", l)
			}
		})
	}
}

// TestKilledMidBatch: a consumer takes a batch and dies before acking it; a
// new consumer with the same name recovers it on Open. Nothing is lost, the
// unacked messages come again first and in order, followed by the rest of
// the queue, including what producers pushed meanwhile.
func TestKilledMidBatch(t *testing.T) {
	rdb := newClient(t)
	ctx := context.Background()
	const key = "data_queue"
	all := push(t, rdb, key, "m", 0, 10)

	c1, err := queue.Open(ctx, rdb, queue.Options{Name: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c1.NextBatch(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "first batch", strs(first), all[:3])
	if err := c1.Ack(ctx, first...); err != nil {
		t.Fatal(err)
	}
	inHand, err := c1.NextBatch(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "batch in hand", strs(inHand), all[3:7])
	// c1 dies here: no Ack. Producers keep sending.
	all = append(all, push(t, rdb, key, "m", 10, 15)...)
	if p := llen(t, rdb, queue.ProcessingKey(key, "worker")); p != 4 {
		t.Fatalf("processing list holds %d, want the 4 in hand", p)
	}

	c2, err := queue.Open(ctx, rdb, queue.Options{Name: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Recovered() != 4 {
		t.Fatalf("recovered %d, want 4", c2.Recovered())
	}
	equal(t, "after restart", drain(t, c2, 5), all[3:])
	// the dead consumer's late Ack finds nothing: the messages were recovered
	if err := c1.Ack(ctx, inHand...); err == nil || !strings.Contains(err.Error(), "4 of 4 messages: not in the processing list") {
		t.Fatalf("late ack: %v", err)
	}
}

// TestRecoverOther: a live consumer moves a dead consumer's list back to the
// head of the queue, in order, and takes it first; its own list is
// untouched. The chunked Recover is exercised with more than one pipeline.
func TestRecoverOther(t *testing.T) {
	rdb := newClient(t)
	ctx := context.Background()
	const key = "data_queue"
	all := push(t, rdb, key, "m", 0, 2600)

	dead, err := queue.Open(ctx, rdb, queue.Options{Name: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	taken, err := dead.NextBatch(ctx, 2500)
	if err != nil || len(taken) != 2500 {
		t.Fatalf("took %d: %v", len(taken), err)
	}
	live, err := queue.Open(ctx, rdb, queue.Options{Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	if live.Recovered() != 0 {
		t.Fatalf("live recovered %d of its own", live.Recovered())
	}
	own, err := live.NextBatch(ctx, 50) // in hand while it recovers the other list
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "live's batch", strs(own), all[2500:2550])
	n, err := live.Recover(ctx, "dead")
	if err != nil || n != 2500 {
		t.Fatalf("recover: %d %v", n, err)
	}
	if p := llen(t, rdb, queue.ProcessingKey(key, "dead")); p != 0 {
		t.Fatalf("dead's list still holds %d", p)
	}
	if p, _ := live.Pending(ctx); p != 50 {
		t.Fatalf("live's own list holds %d, want its 50", p)
	}
	if err := live.Ack(ctx, own...); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, all[:2500]...), all[2550:]...)
	equal(t, "after recover", drain(t, live, 300), want)
	if n, err := queue.Recover(ctx, rdb, key, "nobody"); n != 0 || err != nil {
		t.Fatalf("recover of an empty list: %d %v", n, err)
	}
}

// TestAckErrors: acking twice, or something never taken, is reported.
func TestAckErrors(t *testing.T) {
	rdb := newClient(t)
	ctx := context.Background()
	push(t, rdb, "data_queue", "m", 0, 3)
	c, err := queue.Open(ctx, rdb, queue.Options{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.NextBatch(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ack     [][]byte
		wantErr string
	}{
		{"nothing", nil, ""},
		{"first two", msgs[:2], ""},
		{"first again", msgs[:1], "1 of 1 messages: not in"},
		{"never taken and the last", [][]byte{[]byte("other"), msgs[2]}, "1 of 2 messages: not in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Ack(ctx, tc.ack...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (!errors.Is(err, queue.ErrNotPending) || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
	if p, _ := c.Pending(ctx); p != 0 {
		t.Fatalf("pending %d", p)
	}
	if _, err := c.NextBatch(ctx, 0); err == nil {
		t.Fatal("NextBatch(0) succeeded")
	}
}

// TestNextBlocks: Next waits for a message up to Block, returns ErrEmpty
// when none comes, and returns one pushed while it waits.
func TestNextBlocks(t *testing.T) {
	rdb := newClient(t)
	ctx := context.Background()
	c, err := queue.Open(ctx, rdb, queue.Options{Name: "c", Block: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("Next on an empty queue: %v", err)
	}
	got := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		for range 30 { // each waits up to 1s; the push below comes at some point
			m, err := c.Next(ctx)
			if errors.Is(err, queue.ErrEmpty) {
				continue
			}
			if err != nil {
				errc <- err
				return
			}
			got <- m
			return
		}
		errc <- errors.New("no message after 30 waits")
	}()
	push(t, rdb, "data_queue", "late", 0, 1)
	select {
	case m := <-got:
		if string(m) != "late-00000" {
			t.Fatalf("got %q", m)
		}
	case err := <-errc:
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("Next after: %v", err)
	}
}

// TestConnectionError: a failing server is an error naming the command.
func TestConnectionError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	if _, err := queue.Open(context.Background(), rdb, queue.Options{Name: "c"}); err == nil || !strings.Contains(err.Error(), "llen data_queue:processing:c") {
		t.Fatalf("Open: %v", err)
	}
	c, _ := queue.New(rdb, queue.Options{Name: "c", Block: time.Second})
	if _, err := c.NextBatch(context.Background(), 5); err == nil || !strings.Contains(err.Error(), "blmove data_queue data_queue:processing:c") {
		t.Fatalf("NextBatch: %v", err)
	}
}

// The pattern works as the shipped `consumer` ACL user (redis/redis.conf):
// take, ack, recover; the user cannot write anything else.
func TestAsShippedACLUser(t *testing.T) {
	conf, err := os.ReadFile("../../../redis/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return "consumer-acl-" + user }
	users, err := redistest.ShippedUsers(string(conf), pw)
	if err != nil {
		t.Fatal(err)
	}
	r := redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: pw("admin"), ExtraConfig: users})
	admin := r.Client()
	defer admin.Close()
	ctx := context.Background()
	want := push(t, admin, queue.DefaultKey, "acl", 0, 10)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "consumer", Password: pw("consumer"), Protocol: 2})
	defer rdb.Close()
	dead, err := queue.Open(ctx, rdb, queue.Options{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.NextBatch(ctx, 4); err != nil {
		t.Fatal(err)
	}
	c, err := queue.Open(ctx, rdb, queue.Options{Name: "c"}) // recovers the 4
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "as user consumer", drain(t, c, len(want)), want)
	if err := rdb.RPush(ctx, queue.DefaultKey, "x").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("RPUSH as consumer: %v, want NOPERM", err)
	}
}
