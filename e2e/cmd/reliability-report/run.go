package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sluice-ingest/sluice/internal/reliability"
)

func run(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reliability-report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", envOr(getenv, "SLUICE_E2E_OUT", "e2e/out"), "directory with the suite's scenario-*.json results (env SLUICE_E2E_OUT)")
	doc := fs.String("doc", "RELIABILITY.md", "markdown file whose generated table is replaced")
	printOnly := fs.Bool("print", false, "print the table instead of updating -doc")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := reliability.Load(*in)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no scenario-*.json in %s: run the e2e fault suite first (make test-e2e)", *in)
	}
	table := reliability.Table(results)
	if *printOnly {
		_, err := io.WriteString(stdout, table)
		return err
	}
	old, err := os.ReadFile(*doc)
	if err != nil {
		return fmt.Errorf("read %s: %w", *doc, err)
	}
	updated, err := reliability.Splice(string(old), table)
	if err != nil {
		return fmt.Errorf("update %s: %w", *doc, err)
	}
	if err := os.WriteFile(*doc, []byte(updated), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *doc, err)
	}
	failed := 0
	for _, r := range results {
		if !r.Pass && !r.LossAllowed {
			failed++
		}
	}
	fmt.Fprintf(stdout, "%s: %d scenarios, %d failed\n", *doc, len(results), failed)
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
