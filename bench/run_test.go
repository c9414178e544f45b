package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/cli"
)

// TestCommandLine runs main's path (run, then cli.Exit) for the command
// lines that end before the bench starts anything.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout []string // each must appear
		wantStderr []string // each must appear exactly once
	}{
		{name: "help", args: []string{"-h"}, wantStdout: []string{"usage: bench", "-render dir", "BENCH_MESSAGES", "2000000"}},
		{name: "version", args: []string{"-version"}, wantStdout: []string{"bench ", "(revision ", "go1."}},
		{name: "unknown flag", args: []string{"-bogus"}, wantCode: 2,
			wantStderr: []string{"usage: bench", "bench: flag provided but not defined: -bogus\n"}},
		{name: "extra args", args: []string{"now"}, wantCode: 2,
			wantStderr: []string{"usage: bench", `bench: unexpected arguments ["now"]`}},
		{name: "configuration: parse and validation errors together", env: map[string]string{
			"BENCH_MESSAGES": "many", "BENCH_CONNS": "0", "BENCH_REDIS_MODE": "cluster"}, wantCode: 1,
			wantStderr: []string{"bench: configuration (bench -h lists the variables):\n", "BENCH_MESSAGES: not a valid int",
				"BENCH_CONNS: 0 must be at least 1", `BENCH_REDIS_MODE: "cluster" is not sentinel or single`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			if code := cli.Exit("bench", err, &stderr); code != tc.wantCode {
				t.Errorf("exit code %d (err %v), want %d", code, err, tc.wantCode)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.wantStderr {
				if n := strings.Count(stderr.String(), w); n != 1 {
					t.Errorf("stderr has %q %d times, want once:\n%s", w, n, stderr.String())
				}
			}
			if len(tc.wantStderr) == 0 && stderr.Len() > 0 {
				t.Errorf("stderr not empty: %q", stderr.String())
			}
			if len(tc.wantStdout) == 0 && stdout.Len() > 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}
