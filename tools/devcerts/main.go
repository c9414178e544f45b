// Command devcerts writes a development CA, a server certificate for
// HAProxy's TLS ports and a client certificate (make certs).
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
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if code := exitCode(err); code == 2 {
			os.Exit(code) // the usage is printed
		}
		fmt.Fprintln(os.Stderr, "devcerts:", err)
		os.Exit(1)
	}
}
