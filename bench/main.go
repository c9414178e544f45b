// Command bench runs the sluice benchmark (make bench): it starts a local
// stack on loopback, measures the Redis ceiling and the acked throughput and
// latency through HAProxy, and writes bench/results.md and bench/chart.png.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-ingest/sluice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.Exit("bench", err, os.Stderr))
}
