package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/devcerts"
)

func run(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devcerts", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse's own messages: the error is returned and printed once
	dir := fs.String("dir", "certs", "output directory")
	hosts := fs.String("hosts", "", "extra comma-separated names or addresses for the server certificate (it always covers "+strings.Join(devcerts.DefaultHosts, ", ")+")")
	days := fs.Int("days", 365, "validity in days")
	version := fs.Bool("version", false, "print the version and exit")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: devcerts [-dir certs] [-hosts a,b] [-days 365] [-version]\n\nWrites a development CA, a server certificate for HAProxy (server.pem) and a client certificate.")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.Usage = func() {}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return nil
	case err != nil:
		usage(stderr)
		return cli.Usage(err)
	case *version:
		fmt.Fprintln(stdout, "devcerts", buildinfo.Read())
		return nil
	case fs.NArg() > 0:
		usage(stderr)
		return cli.Usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
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
