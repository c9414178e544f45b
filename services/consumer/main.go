// Command consumer takes messages from the sluice queue reliably (at least
// once) and writes them as lines to a file or stdout. See
// services/consumer/queue and RELIABILITY.md ("Consumers").
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
	os.Exit(cli.Exit("consumer", err, os.Stderr))
}
