// Package clitest runs a binary's command-line path in table tests: its run
// function, then cli.Exit, as main does, with the exit code and what was
// printed checked case by case.
package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/cli"
)

// RunFunc is a binary's run: the command line without the program name, the
// environment lookup, stdout and stderr.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Case is one command line and what it must do.
type Case struct {
	Name       string
	Args       []string
	Env        map[string]string // the whole environment; nil for none
	WantCode   int               // cli.Exit's status
	WantStdout []string          // each must appear; stdout must be empty without any
	WantStderr []string          // each must appear exactly once; stderr must be empty without any
}

// Run runs every case as a subtest of t: run with the case's arguments and
// environment, then cli.Exit(name, err, stderr).
func Run(t *testing.T, name string, run RunFunc, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.Args, func(k string) string { return tc.Env[k] }, &stdout, &stderr)
			if code := cli.Exit(name, err, &stderr); code != tc.WantCode {
				t.Errorf("exit code %d (err %v), want %d", code, err, tc.WantCode)
			}
			for _, w := range tc.WantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.WantStderr {
				if n := strings.Count(stderr.String(), w); n != 1 {
					t.Errorf("stderr has %q %d times, want once:\n%s", w, n, stderr.String())
				}
			}
			if len(tc.WantStderr) == 0 && stderr.Len() > 0 {
				t.Errorf("stderr not empty: %q", stderr.String())
			}
			if len(tc.WantStdout) == 0 && stdout.Len() > 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}
