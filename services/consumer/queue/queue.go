// Package queue consumes the sluice Redis list reliably: the reliable-queue
// pattern of Redis's LMOVE documentation, at least once.
//
// Each consumer has a name and its own processing list
// "<key>:processing:<name>". Taking a message moves it atomically from the
// head of the queue to the tail of the processing list (BLMOVE key
// processing LEFT RIGHT, then LMOVE for the rest of a batch), so a message
// is always in one of the two lists until the consumer acknowledges it
// (LREM from the processing list). A consumer that dies between taking and
// acknowledging leaves its messages in its processing list; Recover moves
// them back to the head of the queue, in their original order, and they are
// delivered again. A consumer recovers its own list when it opens.
//
//	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "sluice", SentinelAddrs: addrs, Password: pw})
//	c, err := queue.Open(ctx, rdb, queue.Options{Name: hostname, Block: time.Second})
//	for {
//		msgs, err := c.NextBatch(ctx, 100)
//		... process msgs (idempotently), durably ...
//		err = c.Ack(ctx, msgs...)
//	}
//
// # Semantics
//
// Delivery is at least once. A message is delivered again when its
// consumer died (or its Ack failed) after taking it, and the producers'
// own resends (after a lost ack) already put some messages in the queue
// twice. A consumer must therefore process idempotently, or deduplicate by
// content: the producers' messages carry their own identity (sluice stores
// lines, byte strings, exactly as sent), and the queue cannot tell two
// identical byte strings apart either (Ack removes one occurrence by value).
//
// Order: a single consumer sees the queue's order; messages it recovered
// (its own or another consumer's) come first, in their original order.
// With several consumers each sees a subsequence of the queue's order.
//
// Names: every live consumer needs its own name (the CLI uses the
// hostname). Two live consumers with one name would recover, and so deliver
// again, each other's messages in hand.
//
// Messages are taken one by one from a Redis master: a failover can lose
// messages that were not yet replicated, the same for the queue and the
// processing lists (see RELIABILITY.md); this package adds no loss of its
// own. It does not work on Redis Cluster (two keys in one command).
package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// DefaultKey is the list the sluice ingest service pushes to.
const DefaultKey = redisconn.DefaultKey

// ErrEmpty is returned by Next when no message arrived within Options.Block.
var ErrEmpty = errors.New("queue empty")

// ErrNotPending is wrapped by Ack's error when a message was not in the
// processing list: acknowledged twice, never taken by this consumer, moved
// back by a Recover of this consumer's name (it will be delivered again),
// or removed by an earlier attempt of the same Ack whose reply was lost.
var ErrNotPending = errors.New("not in the processing list")

// ProcessingKey is the processing list of consumer name on queue key:
// "<key>:processing:<name>".
func ProcessingKey(key, name string) string { return key + ":processing:" + name }

// Options configures a Consumer.
type Options struct {
	// Key is the queue list; empty means DefaultKey.
	Key string
	// Name identifies the consumer and its processing list; required,
	// unique among live consumers.
	Name string
	// Block is how long Next and NextBatch wait for a first message
	// (BLMOVE's timeout). Redis counts it in whole seconds here (go-redis
	// sends an integer): it is rounded down, and up to 1s if below. 0 does
	// not block: an empty queue returns at once.
	Block time.Duration
}

// Consumer takes messages from the queue into its processing list and
// acknowledges them. Its methods may be called from one goroutine at a
// time.
type Consumer struct {
	rdb        redis.Cmdable
	key        string
	name       string
	processing string
	block      time.Duration
	recovered  int
}

// New returns a Consumer without talking to Redis; Open also recovers the
// consumer's own processing list, which a consumer must do before taking
// messages.
func New(rdb redis.Cmdable, o Options) (*Consumer, error) {
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.Name == "" {
		return nil, errors.New("queue consumer: empty name")
	}
	if o.Block < 0 {
		return nil, fmt.Errorf("queue consumer: negative block time %s", o.Block)
	}
	if o.Block > 0 && o.Block < time.Second {
		o.Block = time.Second
	}
	return &Consumer{
		rdb: rdb, key: o.Key, name: o.Name, processing: ProcessingKey(o.Key, o.Name),
		block: o.Block.Truncate(time.Second),
	}, nil
}

// Open returns a Consumer after moving what its processing list holds (left
// by an earlier process of the same name that died, or whose Ack failed)
// back to the head of the queue: those messages are delivered again first.
// Recovered tells how many.
func Open(ctx context.Context, rdb redis.Cmdable, o Options) (*Consumer, error) {
	c, err := New(rdb, o)
	if err != nil {
		return nil, err
	}
	n, err := c.Recover(ctx, c.name)
	c.recovered = n
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.name }

// Key is the queue list.
func (c *Consumer) Key() string { return c.key }

// ProcessingKey is the consumer's processing list.
func (c *Consumer) ProcessingKey() string { return c.processing }

// Recovered is the number of messages Open moved back from the consumer's
// own processing list.
func (c *Consumer) Recovered() int { return c.recovered }

// Next takes one message, waiting up to Options.Block for it; ErrEmpty if
// none came.
func (c *Consumer) Next(ctx context.Context) ([]byte, error) {
	msgs, err := c.NextBatch(ctx, 1)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, ErrEmpty
	}
	return msgs[0], nil
}

// NextBatch takes up to n messages (n >= 1) in queue order: the first with
// BLMOVE, waiting up to Options.Block (an empty batch and no error if none
// came), then up to n-1 more with LMOVE in one pipeline, without waiting.
//
// Every message returned is in the processing list until acknowledged.
// With an error, the messages returned (possibly none) were taken too and
// must be processed and acknowledged like any. A message whose move
// succeeded but whose reply was lost (a broken connection) stays in the
// processing list unseen: it is delivered again after a Recover of this
// consumer's name (Open does one).
func (c *Consumer) NextBatch(ctx context.Context, n int) ([][]byte, error) {
	if n < 1 {
		return nil, fmt.Errorf("next batch: n is %d, want at least 1", n)
	}
	var first string
	var err error
	cmd := "blmove"
	if c.block > 0 {
		first, err = c.rdb.BLMove(ctx, c.key, c.processing, "LEFT", "RIGHT", c.block).Result()
	} else {
		cmd = "lmove"
		first, err = c.rdb.LMove(ctx, c.key, c.processing, "LEFT", "RIGHT").Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", cmd, c.key, c.processing, err)
	}
	msgs := make([][]byte, 1, n)
	msgs[0] = []byte(first)
	if n == 1 {
		return msgs, nil
	}
	cmds, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range n - 1 {
			p.LMove(ctx, c.key, c.processing, "LEFT", "RIGHT")
		}
		return nil
	})
	// Collect every move that succeeded, in order: a nil reply (the queue
	// was empty at that moment) does not end the batch, since a producer
	// may have pushed between two moves and the later one took it.
	var errs []error
	for _, cmd := range cmds {
		v, cerr := cmd.(*redis.StringCmd).Result()
		switch {
		case cerr == nil:
			msgs = append(msgs, []byte(v))
		case !errors.Is(cerr, redis.Nil):
			errs = append(errs, cerr)
		}
	}
	if len(errs) == 0 && err != nil && !errors.Is(err, redis.Nil) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return msgs, fmt.Errorf("lmove %s %s: %w", c.key, c.processing, errs[0])
	}
	return msgs, nil
}

// Ack acknowledges messages this consumer took: each is removed from the
// processing list (LREM processing 1 msg, all in one pipeline). Acknowledge
// a message only once it is processed durably; acknowledge each once.
//
// Why LREM per message and not DEL of the whole list when the batch is all
// the consumer holds: the consumer cannot know that. A BLMOVE or LMOVE whose
// move was applied but whose reply was lost left a message in the list that
// the consumer never saw, and an Ack whose reply was lost may have been
// applied; a DEL would drop such messages unprocessed. LREM removes exactly
// what was processed, and costs little: it scans from the head, where the
// oldest message, the one acknowledged first, is. A failed Ack can be
// retried; a retry after a lost reply removes another copy of an identical
// byte string if the list holds one (see "Semantics").
func (c *Consumer) Ack(ctx context.Context, msgs ...[]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	cmds, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.LRem(ctx, c.processing, 1, m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lrem %s: %w", c.processing, err)
	}
	missing := 0
	for _, cmd := range cmds {
		if cmd.(*redis.IntCmd).Val() == 0 {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("lrem %s: %d of %d messages: %w", c.processing, missing, len(msgs), ErrNotPending)
	}
	return nil
}

// Pending is the number of messages in the consumer's processing list:
// taken and not yet acknowledged.
func (c *Consumer) Pending(ctx context.Context) (int64, error) {
	n, err := c.rdb.LLen(ctx, c.processing).Result()
	if err != nil {
		return 0, fmt.Errorf("llen %s: %w", c.processing, err)
	}
	return n, nil
}

// Recover moves the processing list of consumer name (a dead one, or this
// one at start) back to the head of the consumer's queue; see the package
// function Recover.
func (c *Consumer) Recover(ctx context.Context, name string) (int, error) {
	return Recover(ctx, c.rdb, c.key, name)
}

// recoverChunk is how many LMOVEs one pipeline of Recover sends.
const recoverChunk = 1000

// Recover moves every message of consumer name's processing list back to
// the head of queue key (empty: DefaultKey), keeping their order: LMOVE
// processing key RIGHT LEFT until the list is empty, so the oldest message
// ends up first. They are delivered again before anything else (at least
// once). It returns how many it moved.
//
// The consumer name must be dead: messages a live consumer holds would be
// delivered twice, and its Acks for them would fail. The loop is bounded by
// the list's length when Recover starts.
func Recover(ctx context.Context, rdb redis.Cmdable, key, name string) (int, error) {
	if key == "" {
		key = DefaultKey
	}
	if name == "" {
		return 0, errors.New("recover: empty consumer name")
	}
	processing := ProcessingKey(key, name)
	total, err := rdb.LLen(ctx, processing).Result()
	if err != nil {
		return 0, fmt.Errorf("llen %s: %w", processing, err)
	}
	moved := 0
	for left := int(total); left > 0; {
		chunk := min(left, recoverChunk)
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range chunk {
				p.LMove(ctx, processing, key, "RIGHT", "LEFT")
			}
			return nil
		})
		empty := false
		for _, cmd := range cmds {
			cerr := cmd.(*redis.StringCmd).Err()
			switch {
			case cerr == nil:
				moved++
			case errors.Is(cerr, redis.Nil):
				empty = true
			default:
				err = cerr
			}
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			return moved, fmt.Errorf("lmove %s %s: %w", processing, key, err)
		}
		if empty {
			break
		}
		left -= chunk
	}
	return moved, nil
}
