package hostlab

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mobyclient "github.com/moby/moby/client"
	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"golang.org/x/sync/errgroup"
)

// Client is a Docker API client of the host's daemon (API 1.41: Docker 20.10).
func (h *Host) Client() (*mobyclient.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil {
		return h.client, nil
	}
	c, err := mobyclient.New(mobyclient.WithHost(h.Socket), mobyclient.WithVersion("1.41"))
	if err != nil {
		return nil, fmt.Errorf("docker client %s: %w", h.Name, err)
	}
	h.client = c
	return c, nil
}

// LoadImages copies images from this machine's daemon into every host given
// (docker save once, docker load on each, in parallel).
func (l *Lab) LoadImages(ctx context.Context, images []string, hosts ...*Host) error {
	tarball := l.Dir + "/images.tar"
	if _, err := os.Stat(tarball); err != nil {
		t0 := time.Now()
		if out, err := exec.CommandContext(ctx, "docker", append([]string{"save", "-o", tarball}, images...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker save %q: %w: %s", images, err, out)
		}
		l.logf("docker save %d images in %s", len(images), time.Since(t0).Round(100*time.Millisecond))
	}
	var g errgroup.Group
	for _, h := range hosts {
		g.Go(func() error {
			t0 := time.Now()
			if _, err := h.Docker(ctx, "load", "-q", "-i", tarball); err != nil {
				return fmt.Errorf("load images into %s: %w", h.Name, err)
			}
			l.logf("host %s: images loaded in %s", h.Name, time.Since(t0).Round(100*time.Millisecond))
			return nil
		})
	}
	return g.Wait()
}

// Placement is the containers one host runs: a module call's instances.
type Placement struct {
	Host  *Host
	Specs []*topology.InstanceSpec
}

// Deploy creates every placement's containers as the provider does, resource
// by resource in depends_on order (the same wave on every host at once, as
// Terraform applies independent modules in parallel).
func Deploy(ctx context.Context, logf func(string, ...any), placements ...Placement) error {
	waves, err := plan(placements)
	if err != nil {
		return err
	}
	for i, wave := range waves {
		t0 := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for _, s := range wave {
			g.Go(func() error { return Run(gctx, s.Host, s.Spec) })
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("wave %d: %w", i+1, err)
		}
		logf("wave %d: %d containers created (healthy where wait = true) in %s", i+1, len(wave), time.Since(t0).Round(100*time.Millisecond))
	}
	return nil
}

// step is one container to create on one host.
type step struct {
	Host *Host
	Spec *topology.InstanceSpec
}

// plan orders the placements' containers in waves: a resource joins the first
// wave after every resource of its depends_on (on the same host); wave i of
// every host runs together.
func plan(placements []Placement) ([][]step, error) {
	var waves [][]step
	for _, p := range placements {
		order, byRes := resourceOrder(p.Specs)
		done := map[string]bool{}
		for i := 0; len(done) < len(order); i++ {
			var wave []string
			for _, r := range order {
				if !done[r] && !slices.ContainsFunc(byRes[r][0].DependsOn, func(d string) bool { return !done[d] && byRes[d] != nil }) {
					wave = append(wave, r)
				}
			}
			if len(wave) == 0 {
				return nil, fmt.Errorf("host %s: depends_on cycle among %q", p.Host.Name, order)
			}
			if len(waves) <= i {
				waves = append(waves, nil)
			}
			for _, r := range wave {
				done[r] = true
				for _, spec := range byRes[r] {
					waves[i] = append(waves[i], step{p.Host, spec})
				}
			}
		}
	}
	return waves, nil
}

func resourceOrder(specs []*topology.InstanceSpec) ([]string, map[string][]*topology.InstanceSpec) {
	var order []string
	byRes := map[string][]*topology.InstanceSpec{}
	for _, s := range specs {
		if byRes[s.Resource] == nil {
			order = append(order, s.Resource)
		}
		byRes[s.Resource] = append(byRes[s.Resource], s)
	}
	return order, byRes
}

// Run creates one container on h from spec (create, upload its files, start)
// and with wait = true waits until Docker reports it healthy.
func Run(ctx context.Context, h *Host, spec *topology.InstanceSpec) error {
	cli, err := h.Client()
	if err != nil {
		return err
	}
	cfg := &container.Config{Image: spec.Image, Env: spec.Env, Cmd: spec.Command, Entrypoint: spec.Entry}
	if spec.StopTimeout > 0 {
		cfg.StopTimeout = &spec.StopTimeout
	}
	if hc := spec.Health; hc != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	var mounts []mount.Mount
	for _, v := range spec.Volumes {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: v.Path})
	}
	hostCfg := &container.HostConfig{
		NetworkMode:   container.NetworkMode(spec.NetworkMode),
		CapAdd:        spec.CapAdd,
		Mounts:        mounts,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(spec.Restart)},
		LogConfig:     container.LogConfig{Type: spec.LogDriver, Config: spec.LogOpts},
	}
	hostCfg.Memory = int64(spec.MemoryMiB) << 20
	created, err := cli.ContainerCreate(ctx, mobyclient.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hostCfg})
	if err != nil {
		return fmt.Errorf("create %s on %s: %w", spec.Name, h.Name, err)
	}
	if len(spec.Uploads) > 0 {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, u := range spec.Uploads {
			mode := int64(0o644)
			if u.Executable {
				mode = 0o744
			}
			if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(u.File, "/"), Mode: mode, Size: int64(len(u.Content)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write([]byte(u.Content)); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if _, err := cli.CopyToContainer(ctx, created.ID, mobyclient.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
			return fmt.Errorf("upload to %s on %s: %w", spec.Name, h.Name, err)
		}
	}
	if _, err := cli.ContainerStart(ctx, created.ID, mobyclient.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s on %s: %w", spec.Name, h.Name, err)
	}
	if !spec.Wait {
		return nil
	}
	return WaitHealthy(ctx, h, spec.Name, time.Duration(spec.WaitTimeout)*time.Second)
}

// WaitHealthy waits until container name on h is healthy.
func WaitHealthy(ctx context.Context, h *Host, name string, timeout time.Duration) error {
	cli, err := h.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	status := ""
	for time.Now().Before(deadline) {
		res, err := cli.ContainerInspect(ctx, name, mobyclient.ContainerInspectOptions{})
		if err == nil && res.Container.State != nil {
			if res.Container.State.Health != nil {
				status = string(res.Container.State.Health.Status)
			}
			if status == "healthy" {
				return nil
			}
			if !res.Container.State.Running && res.Container.State.Status == "exited" {
				return fmt.Errorf("%s on %s exited (%d)", name, h.Name, res.Container.State.ExitCode)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s on %s: %w", name, h.Name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s on %s not healthy within %s (last status %q)", name, h.Name, timeout, status)
}

// Logs is the tail of a container's output on h, for failure reports.
func (h *Host) Logs(ctx context.Context, name string, lines int) string {
	out, _ := h.Docker(ctx, "logs", "--tail", itoa(lines), name)
	return out
}
