// Command loadgen streams N messages of S bytes over C connections to a
// sluice ingest address and reports acked throughput and ack latency.
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
	os.Exit(cli.Exit("loadgen", err, os.Stderr))
}
