package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/internal/devcerts"
)

// errUsage: bad flags, exit 2 (the flag package printed the usage).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func run(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devcerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "output directory")
	hosts := fs.String("hosts", "", "extra comma-separated names or addresses for the server certificate (it always covers "+strings.Join(devcerts.DefaultHosts, ", ")+")")
	days := fs.Int("days", 365, "validity in days")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: devcerts [-dir certs] [-hosts a,b] [-days 365]\n\nWrites a development CA, a server certificate for HAProxy (server.pem) and a client certificate.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *days < 1 {
		return fmt.Errorf("-days %d: must be at least 1", *days)
	}
	var extra []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			extra = append(extra, h)
		}
	}
	f, err := devcerts.Write(*dir, extra, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA:          %s (clients trust it; HAPROXY_TLS_CLIENT_CA for mTLS)\nserver:      %s (HAPROXY_TLS_CERT)\nclient:      %s, key %s\n", f.CA, f.Server, f.Client, f.ClientKey)
	return nil
}
