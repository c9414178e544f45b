package main

import (
	"testing"

	"github.com/sluice-ingest/sluice/internal/clitest"
)

// TestCommandLine runs main's path (run, then cli.Exit) for the command
// lines that end before the bench starts anything.
func TestCommandLine(t *testing.T) {
	clitest.Run(t, "bench", run, []clitest.Case{
		{Name: "help", Args: []string{"-h"}, WantStdout: []string{"usage: bench", "-render dir", "BENCH_MESSAGES", "2000000"}},
		{Name: "version", Args: []string{"-version"}, WantStdout: []string{"bench ", "(revision ", "go1."}},
		{Name: "unknown flag", Args: []string{"-bogus"}, WantCode: 2,
			WantStderr: []string{"usage: bench", "bench: flag provided but not defined: -bogus\n"}},
		{Name: "extra args", Args: []string{"now"}, WantCode: 2,
			WantStderr: []string{"usage: bench", `bench: unexpected arguments ["now"]`}},
		{Name: "configuration: parse and validation errors together", Env: map[string]string{
			"BENCH_MESSAGES": "many", "BENCH_CONNS": "0", "BENCH_REDIS_MODE": "cluster"}, WantCode: 1,
			WantStderr: []string{"bench: configuration (bench -h lists the variables):\n", "BENCH_MESSAGES: not a valid int",
				"BENCH_CONNS: 0 must be at least 1", `BENCH_REDIS_MODE: "cluster" is not sentinel or single`}},
	})
}
