package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// CommandOptions starts any program (the ingest binary, for example) under
// the same process control as the servers.
type CommandOptions struct {
	// Name appears in errors and logs, e.g. "ingest-1".
	Name string
	// Path of the program; a bare name is looked up on PATH.
	Path string
	Args []string
	// Env is added to the current environment.
	Env []string
	// Ready, if set, is polled until it returns nil (or the process exits,
	// or 20s pass). HTTPReady and TCPReady make common checks.
	Ready func(ctx context.Context) error
	// BaseDir holds the process dir (working directory and log).
	BaseDir string
}

// Command is a running program started by StartCommand.
type Command struct {
	*Process
	ready func(ctx context.Context) error
}

// StartCommand starts the program in its own temp dir, with stdout and
// stderr in process.log, and waits for Ready. Close it when done.
func StartCommand(ctx context.Context, opts CommandOptions) (*Command, error) {
	bin := opts.Path
	if filepath.Base(bin) == bin {
		p, err := lookBinary(bin)
		if err != nil {
			return nil, err
		}
		bin = p
	} else if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("start %s: %w: %w", opts.Name, ErrBinaryMissing, err)
	}
	dir, err := makeDir(opts.BaseDir, "cmd-")
	if err != nil {
		return nil, err
	}
	c := &Command{Process: newProcess(opts.Name, bin, dir, opts.Args...), ready: opts.Ready}
	c.env = append(os.Environ(), opts.Env...)
	if err := c.startAndWait(ctx); err != nil {
		c.closeProcess()
		return nil, fmt.Errorf("start %s: %w", opts.Name, err)
	}
	return c, nil
}

func (c *Command) startAndWait(ctx context.Context) error {
	if err := c.start(); err != nil {
		return err
	}
	if c.ready == nil {
		return nil
	}
	return c.waitReady(ctx, c.ready)
}

// Restart stops the program (SIGTERM) if it runs and starts it again.
func (c *Command) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.startAndWait(ctx)
}

// Close kills the program and removes its dir.
func (c *Command) Close() error {
	err := c.closeProcess()
	return errors.Join(err, os.RemoveAll(c.dir))
}

// HTTPReady returns a check that GETs url and wants status 200.
func HTTPReady(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// TCPReady returns a check that connects to addr.
func TCPReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// NewCommand starts a program for a test and closes it in Cleanup (its log
// is printed if the test failed).
func NewCommand(t TB, opts CommandOptions) *Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	c, err := StartCommand(ctx, opts)
	if err != nil {
		handleStartErr(t, "start "+opts.Name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- %s log:\n%s", opts.Name, c.Logs())
		}
		if err := c.Close(); err != nil {
			t.Logf("close %s: %v", opts.Name, err)
		}
	})
	return c
}
