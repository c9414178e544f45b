package store

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Outcome errors of Flusher.Push.
var (
	// ErrUnavailable: Redis was not writable before the deadline.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrNotReplicated: WAIT kept reporting too few replicas until the deadline.
	ErrNotReplicated = errors.New("not replicated")
	// ErrQueueFull: the list stayed at MaxQueueLen (or Redis answered OOM)
	// until the deadline.
	ErrQueueFull = errors.New("queue full")
)

// SeqKeyPrefix starts the name of every sequence key: the small string key
// "sluice:lane:<writer id>-<flusher index>" (the name is data: it stays)
// that holds the sequence number of the last flush the flusher applied (see seqScript).
const SeqKeyPrefix = "sluice:lane:"

// MinSeqKeyTTL is the shortest expiry of a sequence key; see WriterOptions.
const MinSeqKeyTTL = 10 * time.Minute

// seqScript is the checked form of a flush attempt (see pushOnce): the
// first flush on every connection and every retry use it; the other first
// attempts are a WATCH-guarded transaction (see transact) that can only apply
// where this script would push. KEYS[1] is the list, KEYS[2] the sequence key,
// ARGV[1] the flush's sequence number, ARGV[2] the sequence key's expiry in
// milliseconds, ARGV[3..] the messages. It pushes only when the sequence is
// above the one stored in the sequence key: a retry of a flush that was already
// applied (after an EOF, a timeout or a failover) finds its own sequence
// there and pushes nothing, and so does an attempt whose bytes reach Redis
// late, after the flusher gave up on it and a later attempt or flush was
// applied (TCP retransmission on the abandoned connection), which finds its
// sequence or a higher one. The sequence key only moves upward: when it does
// not push, the script SETs the value it found. It SETs the sequence key in
// both cases: that write is what the WAIT after the script waits for, so a
// retry on a new connection still waits until the replicas have everything
// up to and including the original push. Script effects replicate as one MULTI/EXEC,
// so a replica (and so a promoted replica) has the batch and its sequence
// together or neither. The "#!lua" line declares a script that may write:
// Redis rejects it up front on a replica (READONLY), below
// min-replicas-to-write (NOREPLICAS) and when out of memory (OOM), exactly
// as it rejects a plain RPUSH. It returns {1 if pushed else 0, list length}.
// It hands at most 4000 values to one RPUSH: Lua's unpack is limited by its
// C stack (LUAI_MAXCSTACK, 8000 slots), and INGEST_BATCH_MAX may be up to
// 1048576, so larger batches are pushed in chunks inside the one script.
const seqScript = `#!lua
local last = redis.call('GET', KEYS[2])
local pushed = 0
if not last or tonumber(ARGV[1]) > tonumber(last) then
  for i = 3, #ARGV, 4000 do
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
  end
  last = ARGV[1]
  pushed = 1
end
redis.call('SET', KEYS[2], last, 'PX', ARGV[2])
return {pushed, redis.call('LLEN', KEYS[1])}
`

// WriterOptions configure a Writer.
type WriterOptions struct {
	Key         string
	MinReplicas int
	WaitTimeout time.Duration
	// RetryTimeout is how long the caller retries one flush (the deadline
	// it passes to Push, INGEST_REDIS_RETRY_TIMEOUT). Sequence keys expire
	// max(10 x RetryTimeout, MinSeqKeyTTL) after a flusher's last flush, so a
	// retry always finds the key of the flush it repeats.
	RetryTimeout time.Duration
	// MinBackoff and MaxBackoff bound the backoff between attempts, doubled
	// after each failure; each pause is drawn from [backoff/2, backoff].
	MinBackoff time.Duration // default 20ms
	MaxBackoff time.Duration // default 1s
	// MaxQueueLen bounds the list (INGEST_MAX_QUEUE_LEN; 0: no bound). A
	// flush waits while the list, as last seen, holds MaxQueueLen messages
	// or more. The bound is soft: each flusher of each process may add one
	// batch after the last length it saw.
	MaxQueueLen int64
	Logger      *slog.Logger
	Metrics     *Metrics
}

// Writer creates Flushers that share one Redis client.
type Writer struct {
	rdb *redis.Client
	o   WriterOptions
	id  string // random per Writer (per process start)
	ttl any    // sequence key expiry in ms, boxed once
	// script is seqScript, sent as EVALSHA of its hash; pushOnce falls
	// back to EVAL of its text when the server answers NOSCRIPT (a
	// restart, a promoted replica that never ran it, SCRIPT FLUSH).
	script   *redis.Script
	flushers atomic.Int64
	// queueLen is the list length as last seen by any flusher.
	queueLen atomic.Int64
}

// NewWriter returns a Writer over rdb with a random id: its flushers' keys
// never collide with those of another process or an earlier start.
func NewWriter(rdb *redis.Client, o WriterOptions) *Writer {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 20 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	var id [8]byte
	_, _ = crand.Read(id[:]) // crypto/rand.Read never fails (it panics instead)
	ttl := max(10*o.RetryTimeout, MinSeqKeyTTL)
	return &Writer{rdb: rdb, o: o, id: hex.EncodeToString(id[:]), ttl: ttl.Milliseconds(), script: redis.NewScript(seqScript)}
}

// Flusher stores the batches of one batcher lane: a dedicated Redis
// connection with at most one flush in flight, and a unique sequence key
// (sluice:lane:<id>, named after the batcher lane it serves) whose sequence
// number makes each flush idempotent. It is not safe for concurrent use.
type Flusher struct {
	w    *Writer
	key  any    // the sequence key, boxed once
	seq  uint64 // sequence number of the current (last started) flush
	conn *redis.Conn
	rnd  *rand.Rand // backoff jitter; the flusher's own, as a Flusher is used by one goroutine
	// loaded: seqScript ran on conn, so the server has it cached and
	// EVALSHA finds it.
	loaded bool
	// watching: the sequence key is WATCHed on conn, armed by the last command
	// of the flusher's last pipeline, which completed without error: a
	// transaction sent next on conn applies only if nothing wrote the sequence
	// key since (see transact).
	watching bool
	args     []any
}

// NewFlusher returns a flusher with the next index of w; its
// connection is opened on first use.
func (w *Writer) NewFlusher() *Flusher {
	n := w.flushers.Add(1) - 1
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (it panics instead)
	rnd := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	return &Flusher{w: w, key: SeqKeyPrefix + w.id + "-" + strconv.FormatInt(n, 10), rnd: rnd}
}

// Key returns the name of the sequence key.
func (f *Flusher) Key() string { return f.key.(string) }

// Close releases the flusher's connection.
func (f *Flusher) Close() error {
	if f.conn == nil {
		return nil
	}
	err := f.conn.Close()
	f.conn, f.loaded, f.watching = nil, false, false
	return err
}

// Arg is a message value handed to go-redis without copying or boxing: a
// pointer to an Arg in a reused slice converts to `any` without allocating,
// and go-redis writes it through MarshalBinary.
type Arg []byte

// MarshalBinary returns the message bytes.
func (a *Arg) MarshalBinary() ([]byte, error) { return *a, nil }

// Push stores vals (each a *Arg, or anything go-redis can encode) as one
// flush with the flusher's next sequence number: one multi-value RPUSH that
// also records the sequence in the sequence key (a WATCH-guarded MULTI/EXEC on
// the first attempt when the connection watches the sequence key, the checking
// seqScript otherwise), plus WAIT on the same connection in the same
// pipeline when MinReplicas > 0. It retries until deadline: connection
// errors, EOF, READONLY, NOREPLICAS, LOADING, MASTERDOWN, a rejected ROLE,
// and every other error alike. A retry after an ambiguous error (the write
// was applied but its reply was lost) does not store the values twice, also
// on a promoted replica, and neither does an abandoned attempt whose bytes
// reach Redis after a later one. When WAIT reports too few replicas it
// re-issues only WAIT on the same connection. It returns nil, or an error
// wrapping ErrUnavailable or ErrNotReplicated, or ctx's error.
func (f *Flusher) Push(ctx context.Context, vals []any, deadline time.Time) error {
	o := &f.w.o
	f.seq++ // one sequence number per flush, the same for all its attempts
	seq := strconv.FormatUint(f.seq, 10)
	if err := f.waitForRoom(ctx, deadline); err != nil {
		return err
	}
	backoff := o.MinBackoff
	pushed := false // the RPUSH is applied on f.conn; only WAIT is missing
	var lastErr error
	var lastReplicas int64
	for attempt := 0; ; attempt++ {
		start := time.Now()
		var err error
		var replicas int64
		switch {
		case pushed:
			replicas, err = f.waitOnly(ctx)
		case attempt == 0 && f.watching:
			replicas, err = f.transact(ctx, seq, vals)
		default:
			replicas, err = f.pushOnce(ctx, seq, vals)
		}
		switch {
		case err == nil && (o.MinReplicas == 0 || replicas >= int64(o.MinReplicas)):
			if o.Metrics != nil {
				o.Metrics.writeDuration.Observe(time.Since(start).Seconds())
			}
			if attempt > 0 {
				o.Logger.Info("redis write recovered", "attempts", attempt+1)
			}
			return nil
		case err == nil:
			// Stored on the master, not yet on enough replicas.
			pushed = true
			lastErr, lastReplicas = nil, replicas
			f.retried("wait_short")
			f.waited(BackpressureNotReplicated, time.Since(start))
			if time.Now().Add(o.WaitTimeout).After(deadline) {
				return fmt.Errorf("%w: WAIT saw %d of %d replicas", ErrNotReplicated, lastReplicas, o.MinReplicas)
			}
			continue // WAIT itself waited; no extra backoff
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pushed = false // a new connection must push (if seq is not applied)
			if errors.Is(err, errPushFailed) {
				// The transaction's SET recorded seq in the sequence key but its
				// RPUSH failed: the next attempt takes a fresh sequence
				// number, or its check would take the batch for stored.
				f.seq++
				seq = strconv.FormatUint(f.seq, 10)
			}
			lastErr = err
			f.discard()
			f.retried(reason(err))
			if attempt == 0 || attempt%10 == 0 {
				o.Logger.Warn("redis write failed, retrying", "err", err, "attempt", attempt+1, "deadline_in", time.Until(deadline).Round(time.Millisecond).String())
			}
		}
		why := BackpressureUnavailable
		if reason(lastErr) == "OOM" {
			why = BackpressureQueueFull
		}
		more, err := f.pause(ctx, &backoff, deadline)
		if !more {
			f.waited(why, time.Since(start))
			if why == BackpressureQueueFull {
				return fmt.Errorf("%w: %w", ErrQueueFull, lastErr)
			}
			return fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
		}
		if err != nil {
			return err
		}
		f.waited(why, time.Since(start))
	}
}

// waitForRoom holds the flush while the list, as last seen, is at
// MaxQueueLen: it polls LLEN with the retry backoff until there is room,
// and gives up with ErrQueueFull at the deadline. Connection errors are
// left to the attempts that follow.
func (f *Flusher) waitForRoom(ctx context.Context, deadline time.Time) error {
	o := &f.w.o
	if o.MaxQueueLen <= 0 || f.w.queueLen.Load() < o.MaxQueueLen {
		return nil
	}
	start := time.Now()
	defer func() { f.waited(BackpressureQueueFull, time.Since(start)) }()
	backoff := o.MinBackoff
	for {
		n, err := f.connection().LLen(ctx, o.Key).Result()
		if err != nil {
			f.discard()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		f.sawLength(n)
		if n < o.MaxQueueLen {
			return nil
		}
		f.retried("queue_full")
		more, err := f.pause(ctx, &backoff, deadline)
		if !more {
			return fmt.Errorf("%w: %s holds %d messages (INGEST_MAX_QUEUE_LEN %d)", ErrQueueFull, o.Key, n, o.MaxQueueLen)
		}
		if err != nil {
			return err
		}
	}
}

// pause is the wait between two attempts of Push and waitForRoom: it
// sleeps a jittered *backoff and doubles *backoff up to MaxBackoff. It
// reports false, without sleeping, when the pause would end past deadline,
// and ctx's error if ctx ended first.
func (f *Flusher) pause(ctx context.Context, backoff *time.Duration, deadline time.Time) (more bool, err error) {
	d := f.jittered(*backoff)
	if time.Now().Add(d).After(deadline) {
		return false, nil
	}
	if err := sleep(ctx, d); err != nil {
		return true, err
	}
	*backoff = min(2**backoff, f.w.o.MaxBackoff)
	return true, nil
}

// sleep pauses for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sawLength records the list length from a reply.
func (f *Flusher) sawLength(n int64) {
	f.w.queueLen.Store(n)
	if f.w.o.Metrics != nil {
		f.w.o.Metrics.queueLength.Set(float64(n))
	}
}

func (f *Flusher) waited(reason string, d time.Duration) {
	if f.w.o.Metrics != nil {
		f.w.o.Metrics.backpressure.WithLabelValues(reason).Add(d.Seconds())
	}
}

// jittered returns the pause before the next attempt: drawn uniformly from
// [backoff/2, backoff] by the flusher's own random source. Without it every
// flusher of every container, all failing at the same failover, retried in
// step and hit the new master together; with it they spread over half of
// each backoff step, and a pause is never shorter than half of it.
func (f *Flusher) jittered(backoff time.Duration) time.Duration {
	half := backoff / 2
	return half + time.Duration(f.rnd.Int64N(int64(backoff-half)+1))
}

func (f *Flusher) retried(reason string) {
	if f.w.o.Metrics != nil {
		f.w.o.Metrics.retries.WithLabelValues(reason).Inc()
	}
}

// reason classifies an error for the retries metric.
func reason(err error) string {
	switch {
	case errors.Is(err, redisconn.ErrNotMaster):
		return "not_master"
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS", "OOM", "WRONGTYPE"} {
			if len(msg) >= len(p) && msg[:len(p)] == p {
				return p
			}
		}
		return "redis_error"
	}
	return "connection"
}

func (f *Flusher) connection() *redis.Conn {
	if f.conn == nil {
		f.conn = f.w.rdb.Conn()
	}
	return f.conn
}

func (f *Flusher) discard() {
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn, f.loaded, f.watching = nil, false, false
	}
}

// pushOnce sends the checked attempt of a flush: UNWATCH, EVALSHA
// seqScript 2 key seqkey seq ttl vals..., which pushes only if the sequence
// key does not show seq (or a later flush) as applied, then WATCH seqkey
// and, when MinReplicas > 0, WAIT, in one pipeline on the flusher's
// connection. Push sends it for the first flush on a connection and for
// every retry; tests call it directly as a retry. The UNWATCH drops a WATCH
// that the script's own SET would otherwise mark as touched (and one left
// by an earlier user of a pooled connection); the WATCH after the script
// arms the transaction of the flusher's next flush (see transact). The first
// script on a connection is sent as EVAL with its text (the server may be
// new to it: a restart, a promoted replica), which Redis caches; later ones
// send only its hash. When the server answers NOSCRIPT all the same (SCRIPT
// FLUSH; nothing ran), the attempt is sent again with EVAL. That costs the
// WAIT of the first pipeline, which returns at once unless the replicas lag
// behind the connection's previous write.
func (f *Flusher) pushOnce(ctx context.Context, seq string, vals []any) (int64, error) {
	o := &f.w.o
	f.watching = false // until this pipeline's WATCH is answered
	if f.loaded {
		f.args = append(f.args[:0], "evalsha", f.w.script.Hash())
	} else {
		f.args = append(f.args[:0], "eval", seqScript)
	}
	f.args = append(f.args, 2, o.Key, f.key, seq, f.w.ttl)
	f.args = append(f.args, vals...)
	push, watch, wait, err := f.evalPipeline(ctx)
	if err != nil && f.loaded && redis.HasErrorPrefix(push.Err(), "NOSCRIPT") {
		f.args[0], f.args[1] = "eval", seqScript
		push, watch, wait, err = f.evalPipeline(ctx)
	}
	clear(f.args) // drop references to the batch buffer
	if perr := push.Err(); perr != nil {
		return 0, fmt.Errorf("eval rpush %s (sequence key %s, flush %s): %w", o.Key, f.key, seq, perr)
	}
	f.loaded = true
	if err != nil {
		return 0, err
	}
	if err := watch.Err(); err != nil {
		return 0, fmt.Errorf("watch %s: %w", f.key, err)
	}
	f.watching = true
	res, err := push.Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, fmt.Errorf("eval rpush %s: unexpected reply %v: %v", o.Key, push.Val(), err)
	}
	f.sawLength(res[1])
	if res[0] == 0 {
		// An earlier attempt of this flush was applied; its reply was lost.
		if o.Metrics != nil {
			o.Metrics.duplicateFlushes.Inc()
		}
		o.Logger.Info("redis flush already applied by an earlier attempt, not pushed again", "seq_key", f.key, "flush", seq, "messages", len(vals))
	}
	if wait == nil {
		return 0, nil
	}
	n, err := wait.Result()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return n, nil
}

// evalPipeline sends UNWATCH, f.args (EVALSHA or EVAL of seqScript),
// WATCH seqkey and, when MinReplicas > 0, WAIT, in one pipeline on the
// flusher's connection.
func (f *Flusher) evalPipeline(ctx context.Context) (push *redis.Cmd, watch *redis.StatusCmd, wait *redis.IntCmd, err error) {
	o := &f.w.o
	pipe := f.connection().Pipeline()
	_ = pipe.Process(ctx, redis.NewStatusCmd(ctx, "unwatch"))
	push = redis.NewCmd(ctx, f.args...)
	_ = pipe.Process(ctx, push)
	watch = redis.NewStatusCmd(ctx, "watch", f.key)
	_ = pipe.Process(ctx, watch)
	if o.MinReplicas > 0 {
		wait = redis.NewIntCmd(ctx, "wait", o.MinReplicas, o.WaitTimeout.Milliseconds())
		_ = pipe.Process(ctx, wait)
	}
	_, err = pipe.Exec(ctx)
	return push, watch, wait, err
}

// transact sends the first attempt of a flush on a connection that watches
// the sequence key (f.watching): MULTI, RPUSH key vals..., SET seqkey seq PX
// ttl, EXEC, WATCH seqkey and, when MinReplicas > 0, WAIT, in one
// pipeline. It has the effects of seqScript without its check, at the
// cost of a bare RPUSH (the script copies every value into Lua and back,
// 28-40% of a flusher's throughput).
//
// Why an unchecked first attempt cannot store a batch twice or move the
// sequence key backwards, even when its bytes reach Redis long after the flusher
// gave up on it and retried elsewhere: the WATCH it relies on ran on the
// same connection as the last command of the flusher's previous flush, whose
// replies had all arrived before this flush started. At that moment no
// attempt with this flush's sequence number (or a higher one) existed
// anywhere, and the sequence key held the previous flush's. Redis executes the
// EXEC only if no write touched the sequence key on that server since the WATCH
// (any write counts, even a SET of the value it holds; so does the key's
// expiry, a FLUSHALL, and the full resynchronisation of a demoted master).
// Every other attempt of this flush, and every later flush, writes the sequence
// key: a retry's seqScript always SETs it. So on any server, either the
// EXEC runs before every other attempt of this flush and later flush, and
// those find its sequence in the sequence key (the script then pushes nothing),
// or it aborts (a nil EXEC reply) and changes nothing. Across a failover
// the same holds: the new master's writes reach the old one only by
// replication, which touches the key (a replicated SET) or replaces the
// whole data set (a full resync, which touches every watched key); a
// demoted master refuses the RPUSH while queueing (READONLY, so EXECABORT);
// and a write the old master applies on its own after the failover (a
// partition, until min-replicas-max-lag stops it) is in a history that is
// discarded when it resyncs from the new master, or survives only if the
// new master's is lost, never both. The sequence key's expiry counts as a write
// for WATCH (Redis 7.0 aborts the EXEC), so unlike a late script a late
// transaction stays harmless after the key expired.
//
// A nil EXEC means the sequence key was written since the WATCH: it expired
// (the flusher was idle for the key's TTL), or a stale attempt of an earlier
// flush was delivered late (a script, which only moves it up). Nothing of
// the transaction ran, so transact sends the checked attempt (pushOnce) on
// the same connection at once.
func (f *Flusher) transact(ctx context.Context, seq string, vals []any) (int64, error) {
	o := &f.w.o
	f.watching = false // until this pipeline's WATCH is answered
	pipe := f.connection().Pipeline()
	f.args = append(f.args[:0], "rpush", o.Key)
	f.args = append(f.args, vals...)
	multi := redis.NewStatusCmd(ctx, "multi")
	push := redis.NewCmd(ctx, f.args...)
	set := redis.NewCmd(ctx, "set", f.key, seq, "px", f.w.ttl)
	exec := redis.NewCmd(ctx, "exec")
	watch := redis.NewStatusCmd(ctx, "watch", f.key)
	for _, c := range []redis.Cmder{multi, push, set, exec, watch} {
		_ = pipe.Process(ctx, c)
	}
	var wait *redis.IntCmd
	if o.MinReplicas > 0 {
		wait = redis.NewIntCmd(ctx, "wait", o.MinReplicas, o.WaitTimeout.Milliseconds())
		_ = pipe.Process(ctx, wait)
	}
	_, err := pipe.Exec(ctx)
	clear(f.args) // drop references to the batch buffer
	// A command refused while queued (READONLY, NOREPLICAS, OOM) makes EXEC
	// fail with EXECABORT: nothing of the transaction is applied.
	for _, c := range []redis.Cmder{multi, push, set} {
		if cerr := c.Err(); cerr != nil {
			return 0, fmt.Errorf("rpush %s (sequence key %s, flush %s): %s: %w", o.Key, f.key, seq, c.Name(), cerr)
		}
	}
	if eerr := exec.Err(); eerr == redis.Nil {
		o.Logger.Info("sequence key written since the flusher's last flush (expired, or a stale attempt delivered late); sending the checked attempt", "seq_key", f.key, "flush", seq)
		f.retried("watch_aborted")
		return f.pushOnce(ctx, seq, vals)
	} else if eerr != nil {
		return 0, fmt.Errorf("rpush %s (sequence key %s, flush %s): exec: %w", o.Key, f.key, seq, eerr)
	}
	if err != nil {
		return 0, err
	}
	n, err := execErr(exec)
	if err != nil {
		return 0, fmt.Errorf("rpush %s (sequence key %s, flush %s): %w", o.Key, f.key, seq, err)
	}
	f.sawLength(n)
	if err := watch.Err(); err != nil {
		return 0, fmt.Errorf("watch %s: %w", f.key, err)
	}
	f.watching = true
	if wait == nil {
		return 0, nil
	}
	n, err = wait.Result()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return n, nil
}

// errPushFailed marks an EXEC whose RPUSH failed at run time (WRONGTYPE)
// while its SET of the sequence key was applied.
var errPushFailed = errors.New("transaction ran, its RPUSH failed")

// execErr checks the reply of EXEC after MULTI, RPUSH, SET: two replies, and
// neither an error (a command that fails at run time, e.g. WRONGTYPE, does
// not abort the others). A failed RPUSH is wrapped in errPushFailed. It
// returns the RPUSH's reply: the list's new length.
func execErr(exec *redis.Cmd) (int64, error) {
	res, err := exec.Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("unexpected EXEC reply %v", res)
	}
	if e, ok := res[0].(error); ok {
		return 0, fmt.Errorf("%w: %w", errPushFailed, e)
	}
	if e, ok := res[1].(error); ok {
		return 0, fmt.Errorf("set sequence key: %w", e)
	}
	n, _ := res[0].(int64)
	return n, nil
}

// waitOnly re-issues WAIT on the connection that applied the RPUSH.
func (f *Flusher) waitOnly(ctx context.Context) (int64, error) {
	o := &f.w.o
	n, err := f.connection().Do(ctx, "wait", o.MinReplicas, o.WaitTimeout.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return n, nil
}
