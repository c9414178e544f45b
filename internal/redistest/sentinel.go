package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// MasterName is the Sentinel master name every part of sluice uses.
const MasterName = "sluice"

// SentinelOptions configures a redis-sentinel monitoring MasterName.
type SentinelOptions struct {
	// MasterAddr is the "host:port" of the master to monitor. Required.
	MasterAddr string
	// Quorum defaults to 2.
	Quorum int
	// DownAfter is down-after-milliseconds; default 1s.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; default 5s.
	FailoverTimeout time.Duration
	// AuthPass is the password of the monitored Redis servers.
	AuthPass string
	// Password sets requirepass on the Sentinel itself (and sentinel-pass,
	// so Sentinels can talk to each other). Empty: no auth.
	Password string
	// BaseDir holds the Sentinel's temp dir. Empty: the system temp dir.
	BaseDir string
	// ExtraConfig lines are appended to sentinel.conf.
	ExtraConfig []string
}

// Sentinel is a running redis-sentinel.
type Sentinel struct {
	*Process
	Port     int
	Addr     string
	Password string
}

// StartSentinel starts a redis-sentinel on a free loopback port in its own
// temp dir and waits until it answers PING. Close it when done.
func StartSentinel(ctx context.Context, opts SentinelOptions) (*Sentinel, error) {
	if opts.MasterAddr == "" {
		return nil, errors.New("start redis-sentinel: MasterAddr is empty")
	}
	if opts.Quorum == 0 {
		opts.Quorum = 2
	}
	if opts.DownAfter == 0 {
		opts.DownAfter = time.Second
	}
	if opts.FailoverTimeout == 0 {
		opts.FailoverTimeout = 5 * time.Second
	}
	bin, err := lookBinary("redis-sentinel")
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(opts.BaseDir, "sentinel-")
	if err != nil {
		return nil, err
	}
	var s *Sentinel
	err = bindWithRetry(dir, "redis-sentinel", func(port int) (*Process, error) {
		s = &Sentinel{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Password: opts.Password}
		conf := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(sentinelConfig(port, dir, opts)), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", conf, err)
		}
		s.Process = newProcess("redis-sentinel "+s.Addr, bin, dir, conf)
		return s.Process, s.startAndWait(ctx)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func sentinelConfig(port int, dir string, opts SentinelOptions) string {
	host, mport, _ := net.SplitHostPort(opts.MasterAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\n", port)
	b.WriteString("bind 127.0.0.1\n")
	b.WriteString("protected-mode no\n")
	fmt.Fprintf(&b, "dir %s\n", dir)
	b.WriteString("daemonize no\n")
	b.WriteString("logfile \"\"\n")
	fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", MasterName, host, mport, opts.Quorum)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", MasterName, opts.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", MasterName, opts.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", MasterName)
	if opts.AuthPass != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", MasterName, opts.AuthPass)
	}
	if opts.Password != "" {
		fmt.Fprintf(&b, "requirepass %s\n", opts.Password)
		fmt.Fprintf(&b, "sentinel sentinel-pass %s\n", opts.Password)
	}
	for _, l := range opts.ExtraConfig {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (s *Sentinel) startAndWait(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	c := s.Client()
	defer c.Close()
	return s.waitReady(ctx, func(ctx context.Context) error { return c.Ping(ctx).Err() })
}

// Restart stops the Sentinel (SIGTERM) if it runs and starts it again on the
// same port with its (rewritten) config.
func (s *Sentinel) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	if err := s.startAndWait(ctx); err != nil {
		return fmt.Errorf("restart redis-sentinel %s: %w", s.Addr, err)
	}
	return nil
}

// Client returns a new go-redis Sentinel client; the caller closes it.
func (s *Sentinel) Client() *redis.SentinelClient {
	return redisconn.Config{SentinelPassword: s.Password}.NewSentinel(s.Addr, clientOptions())
}

// Master asks this Sentinel for the current master address of MasterName.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	c := s.Client()
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s get-master-addr-by-name: %w", s.Addr, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s get-master-addr-by-name: unexpected reply %v", s.Addr, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// Close kills the Sentinel and removes its dir.
func (s *Sentinel) Close() error {
	err := s.closeProcess()
	return errors.Join(err, os.RemoveAll(s.dir))
}
