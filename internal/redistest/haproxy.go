package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// HAProxyOptions configures an haproxy process.
type HAProxyOptions struct {
	// Ports is how many free loopback ports to pick for Config (frontends,
	// stats). At least 1: the start waits until the first port accepts.
	Ports int
	// Config renders haproxy.cfg from the picked ports. It must bind every
	// frontend on 127.0.0.1 and must not use "daemon".
	Config func(ports []int) string
	// BaseDir holds the temp dir. Empty: the system temp dir.
	BaseDir string
}

// HAProxy is a running haproxy (foreground, -db).
type HAProxy struct {
	*Process
	// Ports as passed to Config; Addr is 127.0.0.1:Ports[0].
	Ports []int
	Addr  string
}

// StartHAProxy validates the config with haproxy -c, starts haproxy in the
// foreground and waits until every port accepts TCP. Close it when done.
func StartHAProxy(ctx context.Context, opts HAProxyOptions) (*HAProxy, error) {
	if opts.Ports < 1 || opts.Config == nil {
		return nil, errors.New("start haproxy: need Ports >= 1 and Config")
	}
	bin, err := lookBinary("haproxy")
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(opts.BaseDir, "haproxy-")
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ports := make([]int, opts.Ports)
		seen := map[int]bool{}
		for i := range ports {
			for {
				p, err := FreePort()
				if err != nil {
					os.RemoveAll(dir)
					return nil, err
				}
				if !seen[p] {
					seen[p] = true
					ports[i] = p
					break
				}
			}
		}
		cfg := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(opts.Config(ports)), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("write %s: %w", cfg, err)
		}
		if out, err := exec.CommandContext(ctx, bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("check haproxy config: %w: %s", err, out)
		}
		h := &HAProxy{Ports: ports, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
		h.Process = newProcess("haproxy "+h.Addr, bin, dir, "-db", "-f", cfg)
		err = h.startAndWait(ctx)
		if err == nil {
			return h, nil
		}
		if errors.Is(err, errEarlyExit) && h.bindFailed() && attempt < bindAttempts {
			os.Rename(h.logPath, fmt.Sprintf("%s.bindfail-%d", h.logPath, attempt))
			continue
		}
		h.closeProcess()
		return nil, fmt.Errorf("start haproxy in %s: %w", dir, err)
	}
}

func (h *HAProxy) startAndWait(ctx context.Context) error {
	if err := h.start(); err != nil {
		return err
	}
	return h.waitReady(ctx, func(ctx context.Context) error {
		var d net.Dialer
		for _, p := range h.Ports {
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	})
}

// Restart stops haproxy (SIGTERM) if it runs and starts it again with the
// same config and ports.
func (h *HAProxy) Restart(ctx context.Context) error {
	if err := h.Stop(); err != nil {
		return err
	}
	if err := h.startAndWait(ctx); err != nil {
		return fmt.Errorf("restart haproxy %s: %w", h.Addr, err)
	}
	return nil
}

// Close kills haproxy and removes its dir.
func (h *HAProxy) Close() error {
	err := h.closeProcess()
	return errors.Join(err, os.RemoveAll(h.dir))
}
