package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/tools/status/internal/status"
)

const usage = `Usage:
  status          one screen about the stack; exit status 1 when it lists problems
  status -watch   redraw the screen every STATUS_INTERVAL until Ctrl-C
  status -h       this help and the configuration table

It reaches the parts by their names on the stack's network (redis-1, sentinel-1,
ingest, haproxy, backup); ` + "`make status [WATCH=1]`" + ` runs it there.

Environment:
`

// clearHome moves the cursor home and clears the screen (ANSI).
const clearHome = "\x1b[H\x1b[2J"

// errProblems is the one-shot result when the screen lists problems.
var errProblems = errors.New("the stack has problems (listed above)")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	watch := fs.Bool("watch", false, "redraw every STATUS_INTERVAL until interrupted")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		_ = status.PrintTable(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *version {
		fmt.Fprintln(stdout, "status", buildinfo.Read())
		return nil
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := status.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	c := status.NewCollector(cfg)
	if !*watch {
		snap := c.Collect(ctx)
		if err := status.Render(stdout, snap); err != nil {
			return err
		}
		if len(snap.Problems()) > 0 {
			return errProblems
		}
		return nil
	}
	var buf bytes.Buffer
	for {
		snap := c.Collect(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		buf.Reset()
		buf.WriteString(clearHome)
		if err := status.Render(&buf, snap); err != nil {
			return err
		}
		fmt.Fprintf(&buf, "\nevery %s; Ctrl-C to quit\n", cfg.Interval)
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Interval):
		}
	}
}
