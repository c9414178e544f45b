package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/loadresult"
	"github.com/sluice-ingest/sluice/services/loadgen/internal/load"
)

// errUnacked is returned when messages stay unacked, so the exit code is 1.
var errUnacked = errors.New("messages left unacked")

const usage = `usage: loadgen [flags]

Sends -n messages of -size bytes over -c connections and waits for their acks
(with -http: POSTs bodies of -batch lines and waits for each 200).
Exits 1 if any message is left unacked, 2 on a bad command line.

flags:
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	addr := getenv("LOADGEN_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9501"
	}
	var o load.Options
	fs.StringVar(&o.Addr, "addr", addr, "ingest or HAProxy address (env LOADGEN_ADDR)")
	fs.IntVar(&o.Messages, "n", 100_000, "total messages")
	fs.IntVar(&o.Size, "size", 100, "bytes per message, newline not counted")
	fs.IntVar(&o.Conns, "c", 16, "connections")
	fs.Float64Var(&o.Rate, "rate", 0, "total messages per second; 0 = unlimited")
	fs.IntVar(&o.Window, "window", 2000, "unacked messages per connection before Send blocks")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound for the whole run")
	fs.StringVar(&o.RunID, "run-id", "", "payload prefix that tells runs apart")
	fs.BoolVar(&o.HTTP, "http", false, "POST to http://<addr>/v1/messages instead of TCP (-addr is then the HTTP port, e.g. 127.0.0.1:9502)")
	fs.IntVar(&o.Batch, "batch", 1000, "with -http: lines per request")
	noProgress := fs.Bool("no-progress", false, "no progress bar on stderr")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
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
		return nil
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	case *version:
		fmt.Fprintln(stdout, "loadgen", buildinfo.Read())
		return nil
	default:
		err = o.Validate()
	}
	if err != nil {
		printUsage(stderr)
		return cli.Usage(err)
	}
	if !*noProgress {
		o.Progress = stderr
	}
	r, err := load.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		printTable(stdout, r)
	}
	if r.Unacked > 0 {
		return unackedError(r)
	}
	return nil
}

// unackedError summarises a run that left messages unacked, one cause per
// line: "40 of 1000 messages left unacked; 2 causes:\n  <error> (conns 0-3)".
func unackedError(r loadresult.Result) error {
	err := fmt.Errorf("%d of %d %w", r.Unacked, r.Messages, errUnacked)
	switch len(r.Errors) {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w: %s", err, r.Errors[0])
	}
	return fmt.Errorf("%w; %d causes:\n  %s", err, len(r.Errors), strings.Join(r.Errors, "\n  "))
}

func printTable(w io.Writer, r loadresult.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ms := func(us float64) string { return fmt.Sprintf("%.3f ms", us/1e3) }
	rate := "unlimited"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f msgs/s", r.Rate)
	}
	fmt.Fprintf(tw, "target\t%s\t%d conns, %d x %d B, rate %s\n", r.Addr, r.Conns, r.Messages, r.Size, rate)
	fmt.Fprintf(tw, "acked\t%d\tunacked %d, resent %d, reconnects %d\n", r.Acked, r.Unacked, r.Resent, r.Reconnects)
	fmt.Fprintf(tw, "duration\t%.3f s\t\n", r.Seconds)
	fmt.Fprintf(tw, "throughput\t%.0f msgs/s\t%.2f MB/s\n", r.MsgsPerSec, r.MBPerSec)
	fmt.Fprintf(tw, "ack latency p50\t%s\t\n", ms(r.LatencyP50))
	fmt.Fprintf(tw, "ack latency p90\t%s\t\n", ms(r.LatencyP90))
	fmt.Fprintf(tw, "ack latency p99\t%s\t\n", ms(r.LatencyP99))
	fmt.Fprintf(tw, "ack latency p99.9\t%s\t\n", ms(r.LatencyP999))
	fmt.Fprintf(tw, "ack latency max\t%s\tmean %s\n", ms(r.LatencyMax), ms(r.LatencyMean))
	tw.Flush()
}
