package redisconn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-redis's own log lines (pool dial errors, Sentinel switches) go into
// the service's structured logger, so that every line a sluice binary
// writes is slog JSON. Repeats are rate-limited: while Redis is down,
// go-redis logs a failed dial for every attempt of every connection, and
// one line per kind and interval says as much.

// LogEvery is how often one kind of go-redis line (its format) is logged
// at most; the next one logged says how many were suppressed.
const LogEvery = 10 * time.Second

// UseLogger makes go-redis log through log. go-redis keeps one
// process-wide logger, so a binary calls this once, at start-up.
func UseLogger(log *slog.Logger) {
	redis.SetLogger(newAdapter(log.With("component", "go-redis"), LogEvery, time.Now))
}

type adapter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	last       time.Time
	suppressed int
}

func newAdapter(log *slog.Logger, every time.Duration, now func() time.Time) *adapter {
	return &adapter{log: log, every: every, now: now, kinds: map[string]*kind{}}
}

func (a *adapter) Printf(ctx context.Context, format string, v ...any) {
	now := a.now()
	a.mu.Lock()
	k := a.kinds[format]
	if k == nil {
		if len(a.kinds) >= 1000 { // formats are constants in go-redis; bound it anyway
			clear(a.kinds)
		}
		k = &kind{}
		a.kinds[format] = k
	} else if now.Sub(k.last) < a.every {
		k.suppressed++
		a.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	a.mu.Unlock()
	if suppressed > 0 {
		a.log.WarnContext(ctx, fmt.Sprintf(format, v...), "suppressed", suppressed, "in", a.every.String())
		return
	}
	a.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
