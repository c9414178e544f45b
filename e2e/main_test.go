//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// composeProjectPrefix starts the docker-compose project name of every compose
// test; the PID of the test binary follows it, so the sweep can tell a dead
// run's leftovers from a live one's.
const composeProjectPrefix = "sluicee2e"

// TestMain fails fast on an environment that would make testcontainers pull
// images, removes what crashed earlier runs on this host left behind, and after
// the run removes anything of its own that a test did not clean up (a test
// binary killed by -timeout skips t.Cleanup; the next run sweeps it).
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if err := checkEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := sweep(ctx, func(pid int) bool { return pid != os.Getpid() && !alive(pid) }); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: sweep of earlier runs: %v\n", err)
	}
	cancel()

	code := m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sweep(ctx, func(pid int) bool { return pid == os.Getpid() }); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: final sweep: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// alive reports whether a process with that PID exists on this host.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// sweep removes the harness's containers, networks and compose projects whose
// owning PID matches (and, for harness objects, were created on this host).
func sweep(ctx context.Context, match func(pid int) bool) error {
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer docker.Close()
	host, _ := os.Hostname()
	var errs []error
	removed := 0

	owned := func(labels map[string]string) bool {
		if labels[labelE2E] != "1" || labels[labelHost] != host {
			return false
		}
		pid, err := strconv.Atoi(labels[labelPID])
		return err == nil && match(pid)
	}
	composeOwned := func(labels map[string]string) bool {
		project, ok := labels["com.docker.compose.project"]
		if !ok {
			return false
		}
		pid, ok := composeProjectPID(project)
		return ok && match(pid)
	}

	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs.Items {
		if !owned(c.Labels) && !composeOwned(c.Labels) {
			continue
		}
		if _, err := docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove container %v: %w", c.Names, err))
			continue
		}
		removed++
	}
	nets, err := docker.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range nets.Items {
		if !owned(n.Labels) && !composeOwned(n.Labels) {
			continue
		}
		if _, err := docker.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		removed++
	}
	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list volumes: %w", err))...)
	}
	for _, v := range vols.Items {
		if !composeOwned(v.Labels) {
			continue
		}
		if _, err := docker.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		removed++
	}
	if removed > 0 {
		fmt.Fprintf(os.Stderr, "e2e: swept %d leftover containers, networks and volumes\n", removed)
	}
	return errors.Join(errs...)
}

// composeProjectName is unique per test binary and call.
func composeProjectName(seq int64) string {
	return fmt.Sprintf("%s%dx%d", composeProjectPrefix, os.Getpid(), seq)
}

// composeProjectPID is the PID in a name made by composeProjectName.
func composeProjectPID(project string) (int, bool) {
	rest, ok := strings.CutPrefix(project, composeProjectPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "x")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil
}
