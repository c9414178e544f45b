// Package hostlab simulates several Docker hosts on one machine (each a
// network namespace with its own dockerd, joined by a bridge with its own
// addresses), loads images into them and creates the containers a Terraform
// module evaluates to (topology.InstanceSpec) on them, as the kreuzwerker/docker
// provider would. terraform/multihost's drills use it. It needs root.
package hostlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mobyclient "github.com/moby/moby/client"
)

// Lab is a bridge on this machine and the simulated hosts attached to it.
type Lab struct {
	Bridge  string // interface name on this machine
	Subnet  string // first three octets, e.g. "10.77.0"
	Gateway string // this machine's address on the bridge
	Dir     string // data and exec roots of every host
	hosts   map[string]*Host
	order   []string
	forward bool // the iptables FORWARD rule is in place
	logf    func(format string, args ...any)
}

// Host is one simulated Docker host: a network namespace reached over a veth
// pair, and a dockerd started inside it.
type Host struct {
	Name    string
	Addr    string // IPv4 on the bridge
	NetNS   string // ip netns name
	Socket  string // unix:///... of its dockerd
	veth    string // this machine's end, enslaved to the bridge
	root    string // data root, exec root, pid file, log
	dockerd *exec.Cmd

	mu     sync.Mutex
	client *mobyclient.Client
}

// LabOption changes NewLab's defaults.
type LabOption func(*Lab)

// WithSubnet puts the bridge and hosts on PREFIX.0/24 (default 10.77.0).
func WithSubnet(prefix string) LabOption { return func(l *Lab) { l.Subnet = prefix } }

// WithLog sends progress lines to logf (t.Logf).
func WithLog(logf func(format string, args ...any)) LabOption {
	return func(l *Lab) { l.logf = logf }
}

// WithDir keeps the hosts' data and exec roots under dir (default a new
// directory under /var/lib).
func WithDir(dir string) LabOption { return func(l *Lab) { l.Dir = dir } }

// NewLab creates the bridge; AddHost adds hosts. Close removes everything.
func NewLab(ctx context.Context, opts ...LabOption) (*Lab, error) {
	id := os.Getpid() % 100000
	l := &Lab{
		Bridge: fmt.Sprintf("smh%d", id),
		Subnet: "10.77.0",
		Dir:    fmt.Sprintf("/var/lib/sluice-multihost-%d", id),
		hosts:  map[string]*Host{},
		logf:   func(string, ...any) {},
	}
	for _, o := range opts {
		o(l)
	}
	l.Gateway = l.Subnet + ".1"
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab dir %s: %w", l.Dir, err)
	}
	// Who owns the lab: SweepDead removes it once this process is gone without Close
	// (go test -timeout kills before cleanups run).
	if err := os.WriteFile(filepath.Join(l.Dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("lab dir %s: %w", l.Dir, err)
	}
	// Docker sets FORWARD's policy to DROP, and with br_netfilter bridged frames pass
	// through it: let the hosts reach each other (removed again by Close).
	if err := run(ctx, "iptables", "-w", "-I", "FORWARD", "1", "-i", l.Bridge, "-o", l.Bridge, "-j", "ACCEPT"); err != nil {
		return l, fmt.Errorf("allow forwarding on %s: %w", l.Bridge, err)
	}
	l.forward = true
	for _, args := range [][]string{
		{"link", "add", l.Bridge, "type", "bridge"},
		{"addr", "add", l.Gateway + "/24", "dev", l.Bridge},
		{"link", "set", l.Bridge, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return l, fmt.Errorf("create bridge %s: %w", l.Bridge, err)
		}
	}
	return l, nil
}

// AddHost creates host name at PREFIX.octet: a namespace, a veth pair (eth0
// inside), and a dockerd with its own data root, exec root and socket.
func (l *Lab) AddHost(ctx context.Context, name string, octet int) (*Host, error) {
	h := &Host{
		Name:  name,
		Addr:  fmt.Sprintf("%s.%d", l.Subnet, octet),
		NetNS: l.Bridge + "-" + name,
		veth:  l.Bridge + name,
		root:  filepath.Join(l.Dir, name),
	}
	h.Socket = "unix://" + filepath.Join(h.root, "docker.sock")
	l.hosts[name] = h
	l.order = append(l.order, name)
	peer := "p" + h.veth
	steps := [][]string{
		{"netns", "add", h.NetNS},
		{"link", "add", h.veth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", h.NetNS},
		{"-n", h.NetNS, "link", "set", peer, "name", "eth0"},
		{"-n", h.NetNS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.NetNS, "link", "set", "eth0", "up"},
		{"-n", h.NetNS, "link", "set", "lo", "up"},
		{"link", "set", h.veth, "master", l.Bridge},
		{"link", "set", h.veth, "up"},
	}
	for _, args := range steps {
		if err := run(ctx, "ip", args...); err != nil {
			return h, fmt.Errorf("create host %s: %w", name, err)
		}
	}
	if err := h.startDockerd(ctx); err != nil {
		return h, err
	}
	l.logf("host %s: %s, dockerd %s", name, h.Addr, h.Socket)
	return h, nil
}

// Host is the host called name, nil if none.
func (l *Lab) Host(name string) *Host { return l.hosts[name] }

func (h *Host) startDockerd(ctx context.Context) error {
	exec1 := filepath.Join(h.root, "exec")
	for _, d := range []string{filepath.Join(h.root, "data"), exec1} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("start dockerd %s: %w", h.Name, err)
		}
	}
	// The machine's /etc/docker/daemon.json sets a data root: give this daemon its own.
	conf := filepath.Join(h.root, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		return fmt.Errorf("start dockerd %s: %w", h.Name, err)
	}
	logFile, err := os.Create(filepath.Join(h.root, "dockerd.log"))
	if err != nil {
		return fmt.Errorf("start dockerd %s: %w", h.Name, err)
	}
	// nsenter, not ip netns exec: the latter remounts /sys and hides the cgroups.
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+h.NetNS, "dockerd",
		"--config-file", conf, "--data-root", filepath.Join(h.root, "data"), "--exec-root", exec1,
		"--pidfile", filepath.Join(h.root, "dockerd.pid"), "-H", h.Socket,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false",
		"--storage-driver=fuse-overlayfs")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start dockerd %s: %w", h.Name, err)
	}
	h.dockerd = cmd
	go func() { _ = cmd.Wait(); logFile.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := run(ctx, "docker", "-H", h.Socket, "version", "--format", "{{.Server.Version}}"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start dockerd %s: no answer on %s within 60 s (log %s)", h.Name, h.Socket, logFile.Name())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start dockerd %s: %w", h.Name, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Docker runs the docker CLI against this host's daemon.
func (h *Host) Docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", append([]string{"-H", h.Socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker -H %s %s: %w: %s", h.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Cut takes the host off the bridge (its link goes down); Heal brings it back.
func (h *Host) Cut(ctx context.Context) error  { return run(ctx, "ip", "link", "set", h.veth, "down") }
func (h *Host) Heal(ctx context.Context) error { return run(ctx, "ip", "link", "set", h.veth, "up") }

// KillAll kills every running container of the host (SIGKILL, as a power loss).
func (h *Host) KillAll(ctx context.Context) error {
	ids, err := h.Docker(ctx, "ps", "-q")
	if err != nil {
		return err
	}
	if ids = strings.TrimSpace(ids); ids == "" {
		return nil
	}
	_, err = h.Docker(ctx, append([]string{"kill"}, strings.Fields(ids)...)...)
	return err
}

// StartAll starts every stopped container of the host (the host booted again).
func (h *Host) StartAll(ctx context.Context) error {
	ids, err := h.Docker(ctx, "ps", "-aq", "--filter", "status=exited")
	if err != nil {
		return err
	}
	if ids = strings.TrimSpace(ids); ids == "" {
		return nil
	}
	_, err = h.Docker(ctx, append([]string{"start"}, strings.Fields(ids)...)...)
	return err
}

// Close removes every container, daemon, namespace and link of the lab and
// its directory, hosts in reverse order; it keeps going after errors.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	for i := len(l.order) - 1; i >= 0; i-- {
		errs = append(errs, l.hosts[l.order[i]].close(ctx))
	}
	if l.forward {
		if err := run(ctx, "iptables", "-w", "-D", "FORWARD", "-i", l.Bridge, "-o", l.Bridge, "-j", "ACCEPT"); err != nil && !strings.Contains(err.Error(), "does a matching rule exist") {
			errs = append(errs, err)
		}
	}
	if err := run(ctx, "ip", "link", "del", l.Bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", l.Dir, err))
	}
	return errors.Join(errs...)
}

func (h *Host) close(ctx context.Context) error {
	var errs []error
	if h.dockerd != nil && h.dockerd.Process != nil {
		if ids, err := h.Docker(ctx, "ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			if _, err := h.Docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
				errs = append(errs, err)
			}
		}
		_, _ = h.Docker(ctx, "volume", "prune", "-f")
		_ = h.dockerd.Process.Signal(syscall.SIGTERM)
		if !waitGone(h.dockerd.Process.Pid, 20*time.Second) {
			_ = h.dockerd.Process.Kill()
			waitGone(h.dockerd.Process.Pid, 5*time.Second)
		}
	}
	if err := run(ctx, "ip", "link", "del", h.veth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := run(ctx, "ip", "netns", "del", h.NetNS); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	// dockerd bind-mounts its own namespace file there; unmount before removing.
	_ = syscall.Unmount(filepath.Join(h.root, "exec", "netns", "default"), syscall.MNT_DETACH)
	return errors.Join(errs...)
}

// waitGone waits until pid no longer exists (dockerd is our child: Wait reaps it).
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err != nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// itoa is strconv.Itoa, short.
func itoa(i int) string { return strconv.Itoa(i) }

// ResetAddresses leaves the host's eth0 with only its own address, as after
// a reboot (a virtual IP that keepalived held when it was killed is gone).
func (h *Host) ResetAddresses(ctx context.Context) error {
	if err := run(ctx, "ip", "-n", h.NetNS, "addr", "flush", "dev", "eth0"); err != nil {
		return err
	}
	return run(ctx, "ip", "-n", h.NetNS, "addr", "add", h.Addr+"/24", "dev", "eth0")
}

// HasAddress reports whether the host's eth0 carries ip (a virtual IP, say).
func (h *Host) HasAddress(ctx context.Context, ip string) (bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", h.NetNS, "-o", "-4", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ip -n %s addr: %w: %s", h.NetNS, err, out)
	}
	return strings.Contains(string(out), " "+ip+"/"), nil
}

// SweepDead removes the labs under /var/lib whose owning process is gone
// (killed before Close ran): their containers, daemons, namespaces, links,
// FORWARD rule and directories.
func SweepDead(logf func(format string, args ...any)) error {
	dirs, _ := filepath.Glob("/var/lib/sluice-multihost-*")
	var errs []error
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive, or not ours to judge
		}
		l := &Lab{Bridge: "smh" + strings.TrimPrefix(filepath.Base(dir), "sluice-multihost-"), Dir: dir,
			hosts: map[string]*Host{}, forward: true, logf: logf}
		hostDirs, _ := os.ReadDir(dir)
		for _, e := range hostDirs {
			if !e.IsDir() {
				continue
			}
			h := &Host{Name: e.Name(), NetNS: l.Bridge + "-" + e.Name(), veth: l.Bridge + e.Name(), root: filepath.Join(dir, e.Name())}
			h.Socket = "unix://" + filepath.Join(h.root, "docker.sock")
			if raw, err := os.ReadFile(filepath.Join(h.root, "dockerd.pid")); err == nil {
				if dpid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
					if p, err := os.FindProcess(dpid); err == nil {
						h.dockerd = &exec.Cmd{Process: p}
					}
				}
			}
			l.hosts[h.Name] = h
			l.order = append(l.order, h.Name)
		}
		logf("removing the lab of dead process %d: %s", pid, dir)
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
