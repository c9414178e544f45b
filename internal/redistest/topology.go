package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TopologyOptions configures a master, its replicas and the Sentinels.
type TopologyOptions struct {
	// Replicas is the number of replicas of the initial master (taken as is;
	// 2 matches the shipped topology).
	Replicas int
	// Sentinels defaults to 3. The quorum is 2 (1 if there is one Sentinel).
	Sentinels int
	// Password protects the Redis servers (requirepass, masterauth,
	// sentinel auth-pass).
	Password string
	// SentinelPassword protects the Sentinels (requirepass, sentinel-pass).
	SentinelPassword string
	// DownAfter and FailoverTimeout go to every Sentinel (defaults 1s, 5s).
	DownAfter       time.Duration
	FailoverTimeout time.Duration
	// RedisConfig lines are appended to every redis.conf.
	RedisConfig []string
	// BaseDir holds every process's temp dir. Empty: the system temp dir.
	BaseDir string
}

// Topology is 1 master + N replicas + Sentinels, all on loopback.
type Topology struct {
	// Redis[0] is the initial master, the rest are its replicas. After a
	// failover use Master or MasterRedis to find the current master.
	Redis     []*Redis
	Sentinels []*Sentinel
}

// StartTopology starts the servers and Sentinels. It does not wait for
// replication or Sentinel discovery: call WaitReady. Close it when done.
func StartTopology(ctx context.Context, opts TopologyOptions) (_ *Topology, err error) {
	if opts.Sentinels == 0 {
		opts.Sentinels = 3
	}
	if opts.Replicas < 0 || opts.Sentinels < 0 {
		return nil, errors.New("start topology: negative Replicas or Sentinels")
	}
	t := &Topology{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	master, err := StartRedis(ctx, RedisOptions{Password: opts.Password, BaseDir: opts.BaseDir, ExtraConfig: opts.RedisConfig})
	if err != nil {
		return nil, err
	}
	t.Redis = append(t.Redis, master)
	for range opts.Replicas {
		r, err := StartRedis(ctx, RedisOptions{
			Password: opts.Password, ReplicaOf: master.Addr, BaseDir: opts.BaseDir, ExtraConfig: opts.RedisConfig,
		})
		if err != nil {
			return nil, err
		}
		t.Redis = append(t.Redis, r)
	}
	quorum := 2
	if opts.Sentinels == 1 {
		quorum = 1
	}
	for range opts.Sentinels {
		s, err := StartSentinel(ctx, SentinelOptions{
			MasterAddr:      master.Addr,
			Quorum:          quorum,
			DownAfter:       opts.DownAfter,
			FailoverTimeout: opts.FailoverTimeout,
			AuthPass:        opts.Password,
			Password:        opts.SentinelPassword,
			BaseDir:         opts.BaseDir,
		})
		if err != nil {
			return nil, err
		}
		t.Sentinels = append(t.Sentinels, s)
	}
	return t, nil
}

// SentinelAddrs returns the "127.0.0.1:port" of every Sentinel.
func (t *Topology) SentinelAddrs() []string {
	out := make([]string, len(t.Sentinels))
	for i, s := range t.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// RedisAddrs returns the addresses of every Redis server, initial master first.
func (t *Topology) RedisAddrs() []string {
	out := make([]string, len(t.Redis))
	for i, r := range t.Redis {
		out[i] = r.Addr
	}
	return out
}

// Master asks the Sentinels (first one that answers) for the master address.
func (t *Topology) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, s := range t.Sentinels {
		if !s.Running() {
			continue
		}
		addr, err := s.Master(ctx)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("ask sentinels for master %s: %w", MasterName, errors.Join(append(errs, errors.New("no sentinel answered"))...))
}

// MasterRedis returns the process of the master the Sentinels name.
func (t *Topology) MasterRedis(ctx context.Context) (*Redis, error) {
	addr, err := t.Master(ctx)
	if err != nil {
		return nil, err
	}
	if r := t.ByAddr(addr); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("master %s is not a server of this topology", addr)
}

// ByAddr returns the server with that address, or nil.
func (t *Topology) ByAddr(addr string) *Redis {
	for _, r := range t.Redis {
		if r.Addr == addr {
			return r
		}
	}
	return nil
}

// Replicas returns every server except the one the Sentinels name as master.
func (t *Topology) Replicas(ctx context.Context) ([]*Redis, error) {
	m, err := t.Master(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Redis
	for _, r := range t.Redis {
		if r.Addr != m {
			out = append(out, r)
		}
	}
	return out, nil
}

// WaitMasterChange polls the Sentinels until they name a master other than
// old, and that server answers ROLE master. It returns the new address.
func (t *Topology) WaitMasterChange(ctx context.Context, old string) (string, error) {
	var last error
	for {
		addr, err := t.Master(ctx)
		if err == nil && addr == old {
			err = fmt.Errorf("sentinels still name %s", old)
		}
		if err == nil {
			if r := t.ByAddr(addr); r == nil {
				err = fmt.Errorf("new master %s is not a server of this topology", addr)
			} else {
				c := r.Client()
				role, rerr := c.Do(ctx, "ROLE").Slice()
				c.Close()
				switch {
				case rerr != nil:
					err = rerr
				case len(role) == 0 || role[0] != "master":
					err = fmt.Errorf("%s has role %v", addr, role)
				default:
					return addr, nil
				}
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for a new master: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Failover asks a Sentinel for a forced failover (SENTINEL FAILOVER, no
// agreement needed) and waits until a replica is the new master. It returns
// the new master's address.
func (t *Topology) Failover(ctx context.Context) (string, error) {
	old, err := t.Master(ctx)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, s := range t.Sentinels {
		if !s.Running() {
			continue
		}
		c := s.Client()
		err := c.Failover(ctx, MasterName).Err()
		c.Close()
		if err == nil {
			return t.WaitMasterChange(ctx, old)
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", s.Addr, err))
	}
	return "", fmt.Errorf("sentinel failover %s: %w", MasterName, errors.Join(append(errs, errors.New("no sentinel accepted"))...))
}

// WaitReady polls until every running Sentinel names the same master, sees
// the other running Sentinels and all running replicas, CKQUORUM passes, and
// the master reports every running replica online with its offset caught up.
func (t *Topology) WaitReady(ctx context.Context) error {
	var last error
	for {
		last = t.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topology: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (t *Topology) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var running []*Sentinel
	for _, s := range t.Sentinels {
		if s.Running() {
			running = append(running, s)
		}
	}
	if len(running) == 0 {
		return errors.New("no sentinel running")
	}
	var replicas []*Redis
	master := ""
	for _, s := range running {
		m, err := s.Master(ctx)
		if err != nil {
			return err
		}
		if master == "" {
			master = m
		} else if m != master {
			return fmt.Errorf("sentinels disagree on master: %s vs %s", master, m)
		}
	}
	for _, r := range t.Redis {
		if r.Addr != master && r.Running() {
			replicas = append(replicas, r)
		}
	}
	for _, s := range running {
		c := s.Client()
		info, err := c.Master(ctx, MasterName).Result()
		if err == nil {
			err = c.CkQuorum(ctx, MasterName).Err()
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", s.Addr, err)
		}
		if f := info["flags"]; f != "master" {
			return fmt.Errorf("sentinel %s: master flags %q", s.Addr, f)
		}
		if n, _ := strconv.Atoi(info["num-other-sentinels"]); n < len(running)-1 {
			return fmt.Errorf("sentinel %s: sees %d other sentinels, want %d", s.Addr, n, len(running)-1)
		}
		if n, _ := strconv.Atoi(info["num-slaves"]); n < len(replicas) {
			return fmt.Errorf("sentinel %s: sees %d replicas, want %d", s.Addr, n, len(replicas))
		}
	}
	m := t.ByAddr(master)
	if m == nil {
		return fmt.Errorf("master %s is not a server of this topology", master)
	}
	c := m.Client()
	defer c.Close()
	text, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("info replication on %s: %w", master, err)
	}
	repl := parseInfo(text)
	if repl["role"] != "master" {
		return fmt.Errorf("%s: role %s", master, repl["role"])
	}
	offset := repl["master_repl_offset"]
	for _, r := range replicas {
		found := false
		for k, v := range repl {
			if !strings.HasPrefix(k, "slave") || !strings.Contains(v, "port="+strconv.Itoa(r.Port)+",") {
				continue
			}
			found = true
			if !strings.Contains(v, "state=online") || !strings.Contains(v, "offset="+offset+",") {
				return fmt.Errorf("replica %s not caught up: %s (master offset %s)", r.Addr, v, offset)
			}
		}
		if !found {
			return fmt.Errorf("replica %s not connected to %s", r.Addr, master)
		}
	}
	return nil
}

func parseInfo(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// Close kills every process and removes every dir.
func (t *Topology) Close() error {
	var errs []error
	for _, s := range t.Sentinels {
		errs = append(errs, s.Close())
	}
	for _, r := range t.Redis {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Logs returns the logs of every process, for a failed test.
func (t *Topology) Logs() string {
	var b strings.Builder
	for _, r := range t.Redis {
		fmt.Fprintf(&b, "----- redis-server %s (%s)\n%s\n", r.Addr, r.LogPath(), r.Logs())
	}
	for _, s := range t.Sentinels {
		fmt.Fprintf(&b, "----- redis-sentinel %s (%s)\n%s\n", s.Addr, s.LogPath(), s.Logs())
	}
	return b.String()
}
