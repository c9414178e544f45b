package clitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sluice-ingest/sluice/internal/cli"
)

// fakeRun prints its usage on -h (stdout) and on a bad flag (stderr, usage
// error), fails with $FAIL, and succeeds silently otherwise.
func fakeRun(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 1 && args[0] == "-h":
		fmt.Fprintln(stdout, "usage: tool [-h]")
		return nil
	case len(args) > 0:
		fmt.Fprintln(stderr, "usage: tool [-h]")
		return cli.Usage(fmt.Errorf("flag provided but not defined: %s", args[0]))
	case getenv("FAIL") != "":
		return errors.New(getenv("FAIL"))
	}
	return nil
}

func TestRun(t *testing.T) {
	Run(t, "tool", fakeRun, []Case{
		{Name: "quiet success"},
		{Name: "help", Args: []string{"-h"}, WantStdout: []string{"usage: tool"}},
		{Name: "usage error", Args: []string{"-x"}, WantCode: 2,
			WantStderr: []string{"usage: tool", "tool: flag provided but not defined: -x\n"}},
		{Name: "failure from the environment", Env: map[string]string{"FAIL": "no redis"}, WantCode: 1,
			WantStderr: []string{"tool: no redis\n"}},
	})
}
