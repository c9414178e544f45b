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
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	help := fs.Bool("h", false, "print the BENCH_* variables and exit")
	render := fs.String("render", "", "only re-render results.md and chart.png from `dir`/results.json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *help {
		fmt.Fprintln(stdout, "bench: configured by environment variables:")
		runner.PrintVariables(stdout)
		return nil
	}
	if *render != "" {
		return report.Render(*render)
	}
	cfg, err := runner.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return runner.Run(ctx, cfg, log, stdout)
}
