//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Node is the handle of one container of a stack (Stack.Node): its Docker
// state, signals, exec, logs and addresses. Every method returns its error.
type Node struct {
	name    string
	ctr     *testcontainers.DockerContainer
	docker  *client.Client
	network string
}

// Name is the short name ("redis-1"), which is also its name on the network.
func (n *Node) Name() string { return n.name }

// ID is the Docker container ID.
func (n *Node) ID() string { return n.ctr.GetContainerID() }

// Container is the testcontainers handle (file copies, Terminate, ...).
func (n *Node) Container() *testcontainers.DockerContainer { return n.ctr }

// State is the Docker state of the container ("running", "paused", "exited", ...).
func (n *Node) State(ctx context.Context) (container.ContainerState, error) {
	res, err := n.inspect(ctx)
	if err != nil {
		return "", err
	}
	if res.Container.State == nil {
		return "", fmt.Errorf("inspect %s: no state", n.name)
	}
	return res.Container.State.Status, nil
}

// Running reports whether the container is running and not paused.
func (n *Node) Running(ctx context.Context) bool {
	st, err := n.State(ctx)
	return err == nil && st == container.StateRunning
}

func (n *Node) inspect(ctx context.Context) (client.ContainerInspectResult, error) {
	res, err := n.docker.ContainerInspect(ctx, n.ID(), client.ContainerInspectOptions{})
	if err != nil {
		return res, fmt.Errorf("inspect %s: %w", n.name, err)
	}
	return res, nil
}

// Kill sends SIGKILL to the container.
func (n *Node) Kill(ctx context.Context) error { return n.Signal(ctx, "SIGKILL") }

// Signal sends a signal ("SIGTERM", "SIGKILL", "SIGHUP", ...) to the container's main process.
func (n *Node) Signal(ctx context.Context, sig string) error {
	return n.failed("signal " + sig)(n.docker.ContainerKill(ctx, n.ID(), client.ContainerKillOptions{Signal: sig}))
}

// Stop stops the container (SIGTERM, then SIGKILL after timeout).
func (n *Node) Stop(ctx context.Context, timeout time.Duration) error {
	secs := int(timeout.Round(time.Second) / time.Second)
	return n.failed("stop")(n.docker.ContainerStop(ctx, n.ID(), client.ContainerStopOptions{Timeout: &secs}))
}

// Start starts a stopped (or killed) container. Its host ports change; every
// harness client re-resolves them.
func (n *Node) Start(ctx context.Context) error {
	return n.failed("start")(n.docker.ContainerStart(ctx, n.ID(), client.ContainerStartOptions{}))
}

// Restart stops (SIGTERM, 10 s grace) and starts the container.
func (n *Node) Restart(ctx context.Context) error {
	secs := 10
	return n.failed("restart")(n.docker.ContainerRestart(ctx, n.ID(), client.ContainerRestartOptions{Timeout: &secs}))
}

// Pause freezes every process of the container (docker pause).
func (n *Node) Pause(ctx context.Context) error {
	return n.failed("pause")(n.docker.ContainerPause(ctx, n.ID(), client.ContainerPauseOptions{}))
}

// Unpause thaws a paused container.
func (n *Node) Unpause(ctx context.Context) error {
	return n.failed("unpause")(n.docker.ContainerUnpause(ctx, n.ID(), client.ContainerUnpauseOptions{}))
}

// failed turns the result of a Docker call on the container into its error,
// naming what was done ("pause redis-1: ...").
func (n *Node) failed(what string) func(any, error) error {
	return func(_ any, err error) error {
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, n.name, err)
		}
		return nil
	}
}

// IP is the container's address on the stack network.
func (n *Node) IP(ctx context.Context) (string, error) {
	res, err := n.inspect(ctx)
	if err != nil {
		return "", err
	}
	if res.Container.NetworkSettings == nil {
		return "", fmt.Errorf("%s has no network settings", n.name)
	}
	ep, ok := res.Container.NetworkSettings.Networks[n.network]
	if !ok || ep == nil || !ep.IPAddress.IsValid() {
		return "", fmt.Errorf("%s has no address on network %s", n.name, n.network)
	}
	return ep.IPAddress.String(), nil
}

// Env is the value of one environment variable of the container's config.
func (n *Node) Env(ctx context.Context, key string) (string, bool, error) {
	res, err := n.inspect(ctx)
	if err != nil {
		return "", false, err
	}
	if res.Container.Config == nil {
		return "", false, fmt.Errorf("inspect %s: no config", n.name)
	}
	for _, kv := range res.Container.Config.Env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true, nil
		}
	}
	return "", false, nil
}

// HostAddr is the 127.0.0.1 address a container port ("6379/tcp") is
// published on, read afresh from Docker (the host port changes when a
// container restarts).
func (n *Node) HostAddr(ctx context.Context, port string) (string, error) {
	p, err := n.ctr.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("mapped port %s of %s: %w", port, n.name, err)
	}
	return net.JoinHostPort("127.0.0.1", p.Port()), nil
}

// Exec runs a command in the container and returns its combined output. A
// non-zero exit status is an error that carries the output.
func (n *Node) Exec(ctx context.Context, cmd ...string) (string, error) {
	code, r, err := n.ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: %w", cmd, n.name, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: read output: %w", cmd, n.name, err)
	}
	if code != 0 {
		return string(out), fmt.Errorf("exec %q in %s: exit status %d: %s", cmd, n.name, code, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Logs returns the container's stdout and stderr so far (an error text if
// they cannot be read).
func (n *Node) Logs(ctx context.Context) string {
	rc, err := n.ctr.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("<logs of %s: %v>", n.name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return string(b) + fmt.Sprintf("\n<logs of %s: %v>", n.name, err)
	}
	return string(b)
}
