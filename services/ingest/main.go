// Command ingest is the sluice ingest service (TCP and HTTP). See PROTOCOL.md.
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
	os.Exit(cli.Exit("ingest", err, os.Stderr))
}
