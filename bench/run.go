package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/sluice-ingest/sluice/bench/internal/report"
	"github.com/sluice-ingest/sluice/bench/internal/runner"
	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
)

const usage = `usage: bench [-render dir] [-version]

Starts a local stack (redis-server, redis-sentinel, haproxy, ingest) on loopback, measures
the Redis ceiling and the acked throughput and latency per mode, and writes results.md and
chart.png. Exits 2 on a bad command line.

flags:
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	render := fs.String("render", "", "only re-render results.md and chart.png from `dir`/results.json")
	version := fs.Bool("version", false, "print the version and exit")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard) // Parse's own messages: the error is returned and printed once
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		fmt.Fprintln(stdout, "\nenvironment:")
		runner.PrintVariables(stdout)
		return nil
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err != nil {
		printUsage(stderr)
		return cli.Usage(err)
	}
	if *version {
		fmt.Fprintln(stdout, "bench", buildinfo.Read())
		return nil
	}
	if *render != "" {
		return report.Render(*render)
	}
	cfg, err := runner.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration (bench -h lists the variables):\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return runner.Run(ctx, cfg, log, stdout)
}
