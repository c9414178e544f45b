// Command status prints one screen about a running sluice stack (`make
// status`); -watch redraws it every STATUS_INTERVAL until Ctrl-C. It runs
// inside the stack's Docker network (the sluice/status image), where every
// part answers to its service name.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		os.Exit(1)
	}
}
