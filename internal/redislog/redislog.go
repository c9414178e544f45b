// Package redislog routes go-redis's own log lines (pool dial errors,
// Sentinel switches) into the service's structured logger, so that every
// line a sluice binary writes is slog JSON.
package redislog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// Use makes go-redis log through log. go-redis keeps one process-wide
// logger, so a binary calls this once, at start-up.
func Use(log *slog.Logger) {
	redis.SetLogger(adapter{log: log.With("component", "go-redis")})
}

type adapter struct{ log *slog.Logger }

func (a adapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
