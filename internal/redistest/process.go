// Package redistest starts real redis-server, redis-sentinel and haproxy
// processes on loopback, for tests and for the bench runner.
//
// The core API (Start*) returns errors and needs Close; it does not depend on
// the testing package. The New* wrappers take a TB (satisfied by testing.TB),
// register Cleanup, print process logs when the test failed, and handle a
// missing binary: the test fails when the CI environment variable is set and
// is skipped otherwise.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrBinaryMissing is returned (wrapped) when a required program is not on PATH.
var ErrBinaryMissing = errors.New("binary missing")

// errEarlyExit marks a process that exited before it became ready.
var errEarlyExit = errors.New("process exited before it was ready")

// StopTimeout bounds how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 15 * time.Second

// startTimeout bounds how long a start waits for the process to answer.
const startTimeout = 20 * time.Second

// lookBinary finds name on PATH, or returns an error wrapping ErrBinaryMissing.
func lookBinary(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("look up %s: %w: %w", name, ErrBinaryMissing, err)
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before it is used, so callers retry on bind
// failure (the Start functions do that themselves).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen 127.0.0.1:0: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is one child process with its own directory and log file.
// It is safe for concurrent use.
type Process struct {
	name    string   // short name used in errors, e.g. "redis-server :6379"
	bin     string   // absolute path of the program
	args    []string // arguments
	dir     string   // working directory, holds config, data and log
	logPath string   // stdout and stderr of every run, appended
	env     []string // environment; nil = inherit

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
	err  error         // exit error of the last finished run
}

func newProcess(name, bin, dir string, args ...string) *Process {
	return &Process{
		name:    name,
		bin:     bin,
		args:    args,
		dir:     dir,
		logPath: filepath.Join(dir, "process.log"),
	}
}

// Dir is the process's own directory (config, data files, log).
func (p *Process) Dir() string { return p.dir }

// LogPath is the file that receives stdout and stderr of every run.
func (p *Process) LogPath() string { return p.logPath }

// Logs returns the last 64 KiB of the log file.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("read %s: %v", p.logPath, err)
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// PID of the current run, 0 if not running.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil || p.exitedLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the current run has not exited yet.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

func (p *Process) exitedLocked() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start launches a new run. The caller checks readiness.
func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("start %s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", p.logPath, err)
	}
	fmt.Fprintf(logf, "=== %s start %s %v\n", time.Now().UTC().Format(time.RFC3339Nano), p.bin, p.args)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // own process group: signals from a terminal do not hit it
		Pdeathsig: syscall.SIGKILL, // die with the parent if the test binary crashes
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd = cmd
	p.done = done
	p.err = nil
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited returns the done channel of the current run (closed when it exits).
func (p *Process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// signal sends sig to the current run. It is a no-op if not running.
func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exitedLocked() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.exited()
	return nil
}

// Stop sends SIGTERM (after SIGCONT, in case it is paused) and waits for the
// process to exit; after StopTimeout it sends SIGKILL.
func (p *Process) Stop() error {
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited():
		return nil
	case <-time.After(StopTimeout):
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("stop %s: no exit %s after SIGTERM, killed", p.name, StopTimeout)
	}
}

// Pause sends SIGSTOP: the process keeps its sockets but answers nothing.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume sends SIGCONT after Pause.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

// Wait blocks until the current run exits or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.exited():
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeProcess kills the process (it may be paused) and waits for it.
func (p *Process) closeProcess() error {
	_ = p.signal(syscall.SIGCONT)
	return p.Kill()
}

// waitReady polls check until it returns nil, the process exits, or the
// timeout passes. An early exit is reported as errEarlyExit with the log tail.
func (p *Process) waitReady(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited():
			return fmt.Errorf("%s: %w: %s", p.name, errEarlyExit, tail(p.Logs(), 2000))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v); log: %s", p.name, ctx.Err(), last, tail(p.Logs(), 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// bindFailed reports whether the log shows a failed bind (port taken).
func (p *Process) bindFailed() bool {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Contains(b, []byte("Address already in use")) ||
		bytes.Contains(b, []byte("cannot bind socket"))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// makeDir creates the process directory under base (or the system temp dir).
func makeDir(base, pattern string) (string, error) {
	d, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return d, nil
}
