package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/services/consumer/internal/config"
	"github.com/sluice-ingest/sluice/services/consumer/queue"
)

const usage = `Usage:
  consumer [-n N] [-out FILE] [-rate R]
                       take messages from the queue (CONSUMER_KEY) into this consumer's
                       processing list, append each as a line to FILE (default stdout),
                       fsync, then acknowledge them; at start, move what this consumer's
                       name left unacknowledged back to the head of the queue first
  consumer -recover NAME
                       move dead consumer NAME's unacknowledged messages back to the head
                       of the queue, in order, and exit
  consumer -version    the version, VCS revision and Go version
  consumer -h          this help and the configuration table

Flags:
  -n N        stop after N messages (0: run until SIGTERM or SIGINT)
  -out FILE   append to FILE (created 0644) and fsync it before each ack
  -rate R     at most R messages per second on average (a deliberately slow consumer)

Delivery is at least once: a message can come twice (after a crash, or a producer's
resend), so process idempotently or deduplicate by content. SIGTERM finishes the batch
in hand (write, fsync, ack) and exits 0; a round waiting for messages ends first
(up to CONSUMER_BLOCK). Logs are JSON on stderr.

Exit status: 0, 1 on failure, 2 on a bad command line.
`

// flags are the command line's settings.
type flags struct {
	limit   int
	out     string
	rate    float64
	recover string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	var f flags
	fs.IntVar(&f.limit, "n", 0, "stop after N messages")
	fs.StringVar(&f.out, "out", "", "append the messages to FILE")
	fs.Float64Var(&f.rate, "rate", 0, "at most R messages per second")
	fs.StringVar(&f.recover, "recover", "", "move consumer NAME's list back and exit")
	version := fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(io.Discard) // Parse's own messages: the error is returned and printed once
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage, "\nEnvironment:\n")
		return config.PrintTable(stdout)
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	case err == nil && f.limit < 0:
		err = fmt.Errorf("-n %d is negative", f.limit)
	case err == nil && (f.rate < 0 || f.rate != f.rate):
		err = fmt.Errorf("-rate %v is not a positive number", f.rate)
	}
	if err != nil {
		fmt.Fprint(stderr, usage)
		return cli.Usage(err)
	}
	if *version {
		fmt.Fprintln(stdout, "consumer", buildinfo.Read())
		return nil
	}

	cfg, err := config.Load(getenv, config.Hostname)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	level, _ := cfg.SlogLevel()
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	redisconn.UseLogger(log)
	// go-redis's own retries stay on; consume retries beyond them until
	// CONSUMER_RETRY_TIMEOUT. A stale Sentinel answer that points at a
	// replica is harmless: LMOVE and LREM are refused there (READONLY) and
	// retried.
	rdb := redisconn.NewClient(cfg.Config, redisconn.Options{})
	defer rdb.Close()

	if f.recover != "" {
		n, err := queue.Recover(ctx, rdb, cfg.Key, f.recover)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "recovered %d messages from %s to the head of %s\n", n, queue.ProcessingKey(cfg.Key, f.recover), cfg.Key)
		return nil
	}

	out := output{w: stdout, name: "stdout", sync: syncer(stdout)}
	if f.out != "" {
		file, err := os.OpenFile(f.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer file.Close()
		out = output{w: file, name: f.out, sync: file.Sync}
	}
	n, err := consume(ctx, rdb, cfg, f, out, log)
	log.Info("consumer stopped", "messages", n, "err", err)
	return err
}

// output is where the messages go: one line each.
type output struct {
	w    io.Writer
	name string
	sync func() error // nil: nothing to sync (a pipe, a terminal)
}

// syncer is w's Sync when w is a regular file (stdout redirected to one),
// else nil.
func syncer(w io.Writer) func() error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	return f.Sync
}

// consume runs rounds until ctx is cancelled or f.limit messages were
// written and acked; it returns how many.
func consume(ctx context.Context, rdb *redis.Client, cfg config.Config, f flags, out output, log *slog.Logger) (int, error) {
	// Redis work is never cut by ctx: a round that started finishes (its
	// batch written and acked), and ctx ends the loop between rounds.
	rctx := context.WithoutCancel(ctx)
	r := retrier{ctx: ctx, timeout: cfg.RetryTimeout, log: log}
	var c *queue.Consumer
	for {
		var err error
		c, err = queue.Open(rctx, rdb, queue.Options{Key: cfg.Key, Name: cfg.Name, Block: cfg.Block})
		if err == nil {
			break
		}
		if !r.failed("open", err) {
			return 0, r.giveUp()
		}
	}
	r.ok()
	log.Info("consumer started", "key", c.Key(), "name", c.Name(), "processing", c.ProcessingKey(),
		"recovered", c.Recovered(), "batch", cfg.Batch, "block", cfg.Block.String(), "limit", f.limit, "rate", f.rate)

	n := cfg.Batch
	if f.rate > 0 { // about 100 ms worth of messages in hand
		n = min(n, max(1, int(f.rate/10)))
	}
	var line []byte
	done := 0
	start := time.Now()
	strays := false // a failed round may have left unseen messages in the processing list
	for ctx.Err() == nil && (f.limit == 0 || done < f.limit) {
		if strays {
			moved, err := c.Recover(rctx, c.Name())
			if err != nil {
				if !r.failed("recover own list", err) {
					return done, r.giveUp()
				}
				continue
			}
			strays = false
			if moved > 0 {
				log.Warn("moved unseen messages of a failed round back to the queue", "messages", moved)
			}
		}
		want := n
		if f.limit > 0 {
			want = min(want, f.limit-done)
		}
		msgs, ferr := c.NextBatch(rctx, want)
		if len(msgs) > 0 {
			line = line[:0]
			for _, m := range msgs {
				line = append(append(line, m...), '\n')
			}
			if _, err := out.w.Write(line); err != nil {
				return done, fmt.Errorf("write %s: %w", out.name, err)
			}
			if out.sync != nil {
				if err := out.sync(); err != nil {
					return done, fmt.Errorf("fsync %s: %w", out.name, err)
				}
			}
			if err := ack(c, rctx, msgs, &r); err != nil {
				return done, err
			}
			done += len(msgs)
		}
		if ferr != nil {
			strays = true
			if !r.failed("take", ferr) {
				return done, r.giveUp()
			}
			continue
		}
		r.ok()
		if f.rate > 0 {
			pause(ctx, time.Until(start.Add(time.Duration(float64(done)/f.rate*float64(time.Second)))))
		}
	}
	return done, nil
}

// ack acknowledges msgs, retrying Redis errors. Messages missing from the
// processing list on the first attempt were moved back by someone's
// -recover of this name: they will be delivered again, which is logged;
// on a retry they are what the earlier attempt removed.
func ack(c *queue.Consumer, ctx context.Context, msgs [][]byte, r *retrier) error {
	for attempt := 0; ; attempt++ {
		err := c.Ack(ctx, msgs...)
		switch {
		case err == nil:
			r.ok()
			return nil
		case errors.Is(err, queue.ErrNotPending):
			if attempt == 0 {
				r.log.Warn("acked messages were no longer pending (this consumer's list was recovered while it ran): they will be delivered again", "err", err)
			}
			r.ok()
			return nil
		}
		if !r.failed("ack", err) {
			return r.err
		}
	}
}

// retrier paces retries of failed Redis work and gives up after timeout
// of consecutive failures, or when ctx ends during a pause.
type retrier struct {
	ctx     context.Context
	timeout time.Duration
	log     *slog.Logger
	since   time.Time     // first failure of the current streak; zero when none
	backoff time.Duration // next pause
	err     error         // why it gave up
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// failed records a failure of what and pauses; false means give up (r.err
// says why): the timeout passed, or ctx ended.
func (r *retrier) failed(what string, err error) bool {
	now := time.Now()
	if r.since.IsZero() {
		r.since, r.backoff = now, minBackoff
	}
	if now.Sub(r.since) >= r.timeout {
		r.err = fmt.Errorf("%s: still failing after %s: %w", what, r.timeout, err)
		return false
	}
	r.log.Warn("redis error, retrying", "op", what, "err", err, "retry_in", r.backoff.String())
	if !pause(r.ctx, r.backoff) {
		r.err = fmt.Errorf("%s: stopped while retrying: %w", what, err)
		return false
	}
	r.backoff = min(2*r.backoff, maxBackoff)
	return true
}

// giveUp is r.err, or nil when ctx ended the retries: nothing is in hand
// then (a failed take, open or recovery), so a stop is a clean exit.
func (r *retrier) giveUp() error {
	if r.ctx.Err() != nil {
		return nil
	}
	return r.err
}

// ok ends a streak of failures.
func (r *retrier) ok() { r.since = time.Time{} }

// pause waits d, or less if ctx ends first; false if ctx ended.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
