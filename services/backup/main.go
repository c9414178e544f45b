// Command backup takes verified snapshots of the sluice queue from a Redis
// replica, keeps them by retention, and restores them. See BACKUP.md.
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
	os.Exit(cli.Exit("backup", err, os.Stderr))
}
