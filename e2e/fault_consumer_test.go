//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/services/consumer/queue"
)

// boundedQueueLen is INGEST_MAX_QUEUE_LEN in scenario 11: a few seconds of
// the suite's load (4 workers x 250 msg/s).
const boundedQueueLen = 2000

// boundedQueueSlack is how far past the bound the list may grow: each lane
// of each ingest (3 x 4) may add one batch after the last length it saw,
// and batches at this load hold a few dozen messages. 200 each is ample.
const boundedQueueSlack = 3 * 4 * 200

// drainer is scenario 11's consumer: the reliable pattern of
// services/consumer/queue against the master, recording every message it
// processed.
type drainer struct {
	mu        sync.Mutex
	processed []string
	cancel    context.CancelFunc
	done      chan error
	maxLen    int64
	stalled   time.Time // the list reached the bound
	acksFull  int       // acks while the queue stayed full
	recovered int       // messages the restarted consumer got back
	redisUp   []string  // Redis nodes not running during the stall
	err       error     // the consumer's, when it stopped
}

const drainerName = "e2e-drainer"

// start runs a consumer until stop; it acks each batch after recording it.
func (d *drainer) start(f *faultRun) error {
	master, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	c, err := queue.Open(f.ctx, f.s.Redis.Client(master), queue.Options{Key: QueueKey, Name: drainerName, Block: time.Second})
	if err != nil {
		return err
	}
	d.recovered += c.Recovered()
	ctx, cancel := context.WithCancel(f.ctx)
	d.cancel, d.done = cancel, make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			msgs, err := c.NextBatch(ctx, 200)
			if errors.Is(err, queue.ErrEmpty) || (err != nil && ctx.Err() != nil && len(msgs) == 0) {
				continue
			}
			if err != nil && len(msgs) == 0 {
				d.done <- err
				return
			}
			d.mu.Lock()
			for _, m := range msgs {
				d.processed = append(d.processed, string(m))
			}
			d.mu.Unlock()
			if err := c.Ack(context.Background(), msgs...); err != nil {
				d.done <- err
				return
			}
		}
		d.done <- nil
	}()
	return nil
}

// stop stops the consumer (once; later calls return nil).
func (d *drainer) stop() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	d.cancel = nil
	return <-d.done
}

// stall stops the consumer while the producers go on: the list reaches
// INGEST_MAX_QUEUE_LEN and the producers are held back (no acks). A
// consumer then dies in the middle of a batch (taken, not acked), and a
// new one under the same name gets that batch back first and drains the
// list: acks resume.
func (d *drainer) stall(f *faultRun) error {
	if err := d.stop(); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	f.markFault()
	master, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	rdb := f.s.Redis.Client(master)
	var full time.Time
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := rdb.LLen(f.ctx, QueueKey).Result()
		if err != nil {
			return err
		}
		d.maxLen = max(d.maxLen, n)
		if n >= boundedQueueLen && full.IsZero() {
			full = time.Now()
			d.stalled = full
		}
		if !full.IsZero() && time.Since(full) > 5*time.Second {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the list did not reach %d in a minute (at %d)", boundedQueueLen, n)
		}
		sleepCtx(f.ctx, 100*time.Millisecond)
	}
	// Flushes that saw room just before the bound may still land in the
	// first seconds; from then on, none until a consumer makes room.
	d.acksFull = f.rec.AcksBetween(full.Add(2*time.Second), time.Now())
	for _, n := range RedisNames() {
		if st, err := f.s.Node(n).State(f.ctx); err != nil || st != "running" {
			d.redisUp = append(d.redisUp, fmt.Sprintf("%s %s %v", n, st, err))
		}
	}
	f.note("consumer stopped: the list reached %d (bound %d) %s after the fault, at most %d; %d acks in the 3 s after the first 2 s of a full queue",
		boundedQueueLen, boundedQueueLen, full.Sub(f.faultAt).Round(100*time.Millisecond), d.maxLen, d.acksFull)

	// A consumer dies mid-batch: 150 messages taken, never acked.
	dead, err := queue.Open(f.ctx, rdb, queue.Options{Key: QueueKey, Name: drainerName})
	if err != nil {
		return err
	}
	taken, err := dead.NextBatch(f.ctx, 150)
	if err != nil {
		return fmt.Errorf("the consumer that dies: %w", err)
	}
	before := d.recovered
	if err := d.start(f); err != nil {
		return err
	}
	f.markHeal()
	if got := d.recovered - before; got != len(taken) {
		f.fail("the restarted consumer got %d messages back, want the %d its predecessor took", got, len(taken))
	}
	f.note("a consumer died holding %d messages; its successor under the same name got them back first", len(taken))
	return nil
}

// checks runs after the load: the bound held, the producers were held
// back, Redis kept running, the consumer worked.
func (d *drainer) checks(f *faultRun) []string {
	var bad []string
	if d.err != nil {
		bad = append(bad, "consumer: "+d.err.Error())
	}
	if d.maxLen > boundedQueueLen+boundedQueueSlack {
		bad = append(bad, fmt.Sprintf("the list grew to %d, past the bound %d plus one batch per lane (%d)", d.maxLen, boundedQueueLen, boundedQueueSlack))
	}
	if d.acksFull > 0 {
		bad = append(bad, fmt.Sprintf("%d messages were acked while the queue stayed full", d.acksFull))
	}
	if len(d.redisUp) > 0 {
		bad = append(bad, fmt.Sprintf("Redis nodes not running during the stall: %v", d.redisUp))
	}
	return bad
}

// consumedMessages stops the consumer and returns what it processed.
func (d *drainer) consumedMessages() []string {
	d.err = d.stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.processed...)
}

// 11: consumers stop while producers keep sending, with INGEST_MAX_QUEUE_LEN.
func stalledConsumerScenario() scenario {
	d := &drainer{}
	return scenario{
		id: "11", name: fmt.Sprintf("consumers stop while producers send (INGEST_MAX_QUEUE_LEN %d), one dies mid-batch", boundedQueueLen),
		before: 3 * time.Second, after: 8 * time.Second,
		setup: d.start, fault: d.stall, extra: d.checks, consumed: d.consumedMessages,
	}
}
