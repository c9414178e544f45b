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

// bindAttempts is how often a start picks a new port after a bind failure.
const bindAttempts = 5

// RedisOptions configures a redis-server. The server always runs with
// appendonly yes and appendfsync everysec, bound to 127.0.0.1.
type RedisOptions struct {
	// Password sets requirepass and masterauth. Empty: no auth. With
	// Username, it is that ACL user's password instead: the user and its
	// password come from ExtraConfig (see ShippedUsers), nothing is set.
	Password string
	// Username is the ACL user the helper's own clients (the readiness
	// PING, Client) log in as. Empty: the default user.
	Username string
	// ReplicaOf is the "host:port" of a master to replicate. Empty: master.
	ReplicaOf string
	// BaseDir holds the server's temp dir. Empty: the system temp dir.
	BaseDir string
	// ExtraConfig lines are appended to redis.conf, e.g.
	// "min-replicas-to-write 1".
	ExtraConfig []string
}

// Redis is a running redis-server.
type Redis struct {
	*Process
	// Port and Addr ("127.0.0.1:port") stay the same across Restart.
	Port     int
	Addr     string
	Username string
	Password string
}

// StartRedis starts a redis-server on a free loopback port in its own temp
// dir and waits until it answers PING. Close it when done.
func StartRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	bin, err := lookBinary("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(opts.BaseDir, "redis-")
	if err != nil {
		return nil, err
	}
	var r *Redis
	err = bindWithRetry(dir, "redis-server", func(port int) (*Process, error) {
		r = &Redis{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Username: opts.Username, Password: opts.Password}
		conf := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(redisConfig(port, dir, opts)), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", conf, err)
		}
		r.Process = newProcess("redis-server "+r.Addr, bin, dir, conf)
		return r.Process, r.startAndWait(ctx)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// bindWithRetry calls try with free loopback ports until the process it
// starts binds: another process may take a port between FreePort and the
// bind. try returns a nil process when it failed before starting one. On
// failure the dir (and the process, if any) is cleaned up.
func bindWithRetry(dir, what string, try func(port int) (*Process, error)) error {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		p, err := try(port)
		if err == nil {
			return nil
		}
		if p == nil {
			os.RemoveAll(dir)
			return err
		}
		if errors.Is(err, errEarlyExit) && p.bindFailed() && attempt < bindAttempts {
			os.Rename(p.logPath, fmt.Sprintf("%s.bindfail-%d", p.logPath, attempt))
			continue
		}
		p.closeProcess()
		return fmt.Errorf("start %s in %s: %w", what, dir, err)
	}
}

func redisConfig(port int, dir string, opts RedisOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\n", port)
	b.WriteString("bind 127.0.0.1\n")
	b.WriteString("protected-mode no\n")
	fmt.Fprintf(&b, "dir %s\n", dir)
	b.WriteString("daemonize no\n")
	b.WriteString("logfile \"\"\n") // stdout, which goes to process.log
	b.WriteString("appendonly yes\n")
	b.WriteString("appendfsync everysec\n")
	b.WriteString("save \"\"\n") // AOF is the persistence; no periodic RDB
	if opts.Password != "" && opts.Username == "" {
		fmt.Fprintf(&b, "requirepass %s\n", opts.Password)
		fmt.Fprintf(&b, "masterauth %s\n", opts.Password)
	}
	if opts.ReplicaOf != "" {
		host, p, _ := net.SplitHostPort(opts.ReplicaOf)
		fmt.Fprintf(&b, "replicaof %s %s\n", host, p)
	}
	for _, l := range opts.ExtraConfig {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (r *Redis) startAndWait(ctx context.Context) error {
	if err := r.start(); err != nil {
		return err
	}
	c := r.Client()
	defer c.Close()
	return r.waitReady(ctx, func(ctx context.Context) error { return c.Ping(ctx).Err() })
}

// Restart stops the server (SIGTERM) if it runs, and starts it again on the
// same port with the same dir, so it reloads its AOF. It waits for PING.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.Stop(); err != nil {
		return err
	}
	if err := r.startAndWait(ctx); err != nil {
		return fmt.Errorf("restart redis-server %s: %w", r.Addr, err)
	}
	return nil
}

// Client returns a new go-redis client for this server; the caller closes it.
func (r *Redis) Client() *redis.Client {
	return redisconn.NewNodeClient(r.Addr, r.Username, r.Password, clientOptions())
}

// clientOptions are those of the test clients: no retries, each command
// bounded by its context.
func clientOptions() redisconn.Options {
	return redisconn.Options{DialTimeout: time.Second, NoRetries: true, ContextTimeout: true}
}

// Close kills the server and removes its dir.
func (r *Redis) Close() error {
	err := r.closeProcess()
	return errors.Join(err, os.RemoveAll(r.dir))
}
