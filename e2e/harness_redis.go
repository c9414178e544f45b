//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Master asks the Sentinels (first one that answers) for the current master
// and returns its container name ("redis-2").
func (s *Stack) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, sn := range SentinelNames() {
		if !s.running(ctx, sn) {
			errs = append(errs, fmt.Errorf("%s is not running", sn))
			continue
		}
		name, err := s.sentinelMaster(ctx, sn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return name, nil
	}
	return "", fmt.Errorf("ask sentinels for master %q: %w", SentinelMaster, errors.Join(errs...))
}

// sentinelMaster is one Sentinel's idea of the master, as a container name.
func (s *Stack) sentinelMaster(ctx context.Context, sentinel string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addr, err := s.Sentinel(sentinel).GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", fmt.Errorf("%s: get-master-addr-by-name: %w", sentinel, err)
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("%s: get-master-addr-by-name: unexpected reply %q", sentinel, addr)
	}
	name, err := s.nodeName(ctx, addr[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", sentinel, err)
	}
	return name, nil
}

// nodeName maps a host as Redis or Sentinel report it (hostname or IP) to a
// Redis container name.
func (s *Stack) nodeName(ctx context.Context, host string) (string, error) {
	if slices.Contains(RedisNames(), host) {
		return host, nil
	}
	for _, n := range RedisNames() {
		if ip, err := s.IP(ctx, n); err == nil && ip == host {
			return n, nil
		}
	}
	return "", fmt.Errorf("host %q is none of %v", host, RedisNames())
}

// Replication is the part of INFO replication the harness looks at.
type Replication struct {
	Role            string // "master" or "slave"
	MasterHost      string // replicas: the master they follow
	LinkUp          bool   // replicas: master_link_status:up
	Offset          int64  // master_repl_offset (master) or slave_repl_offset (replica)
	ConnectedSlaves int
	Raw             map[string]string
}

// Replication reads INFO replication from one node.
func (s *Stack) Replication(ctx context.Context, name string) (Replication, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	info, err := s.Redis(name).Info(ctx, "replication").Result()
	if err != nil {
		return Replication{}, fmt.Errorf("info replication on %s: %w", name, err)
	}
	raw := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			raw[k] = v
		}
	}
	r := Replication{Role: raw["role"], MasterHost: raw["master_host"], LinkUp: raw["master_link_status"] == "up", Raw: raw}
	r.ConnectedSlaves, _ = strconv.Atoi(raw["connected_slaves"])
	key := "master_repl_offset"
	if r.Role == "slave" {
		key = "slave_repl_offset"
	}
	if r.Offset, err = strconv.ParseInt(raw[key], 10, 64); err != nil {
		return r, fmt.Errorf("info replication on %s: %s=%q: %w", name, key, raw[key], err)
	}
	return r, nil
}

// WaitConverged waits until every running Sentinel names the same master, that
// master says it is one, and every other running Redis node replicates from it
// with its link up and its offset equal to the master's. It returns the last
// reason it was not converged when ctx ends.
func (s *Stack) WaitConverged(ctx context.Context) error {
	t0 := time.Now()
	err := retry(ctx, 200*time.Millisecond, func() error { return s.converged(ctx) })
	if err != nil {
		return fmt.Errorf("not converged after %s: %w", time.Since(t0).Round(time.Millisecond), err)
	}
	return nil
}

func (s *Stack) converged(ctx context.Context) error {
	master := ""
	asked := 0
	for _, sn := range SentinelNames() {
		if !s.running(ctx, sn) {
			continue
		}
		m, err := s.sentinelMaster(ctx, sn)
		if err != nil {
			return err
		}
		if master != "" && m != master {
			return fmt.Errorf("sentinels disagree: %s vs %s (%s)", master, m, sn)
		}
		master = m
		asked++
	}
	if asked == 0 {
		return errors.New("no sentinel is running")
	}
	if !s.running(ctx, master) {
		return fmt.Errorf("sentinels name %s, which is not running", master)
	}
	mr, err := s.Replication(ctx, master)
	if err != nil {
		return err
	}
	if mr.Role != "master" {
		return fmt.Errorf("sentinels name %s, which is a %s", master, mr.Role)
	}
	replicas := 0
	for _, n := range RedisNames() {
		if n == master || !s.running(ctx, n) {
			continue
		}
		replicas++
		r, err := s.Replication(ctx, n)
		if err != nil {
			return err
		}
		if r.Role != "slave" {
			return fmt.Errorf("%s is a %s, want a replica of %s", n, r.Role, master)
		}
		if follows, err := s.nodeName(ctx, r.MasterHost); err != nil || follows != master {
			return fmt.Errorf("%s replicates from %q, want %s", n, r.MasterHost, master)
		}
		if !r.LinkUp {
			return fmt.Errorf("%s: master link is %s", n, r.Raw["master_link_status"])
		}
		if r.Offset != mr.Offset {
			return fmt.Errorf("%s at offset %d, master %s at %d", n, r.Offset, master, mr.Offset)
		}
	}
	if mr.ConnectedSlaves < replicas {
		return fmt.Errorf("master %s has %d connected replicas, want %d", master, mr.ConnectedSlaves, replicas)
	}
	// Sentinels only promote replicas they know, and need their peers for a
	// failover: each running Sentinel must see the master up, every running
	// replica up, and every other running Sentinel.
	var running []string
	for _, sn := range SentinelNames() {
		if s.running(ctx, sn) {
			running = append(running, sn)
		}
	}
	for _, sn := range running {
		if err := s.sentinelSees(ctx, sn, master, len(running)-1); err != nil {
			return err
		}
	}
	return nil
}

// sentinelSees checks one Sentinel's view: the master without s_down/o_down,
// every running replica known and up, and at least peers other Sentinels.
func (s *Stack) sentinelSees(ctx context.Context, sentinel, master string, peers int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sc := s.Sentinel(sentinel)
	m, err := sc.Master(ctx, SentinelMaster).Result()
	if err != nil {
		return fmt.Errorf("%s: sentinel master: %w", sentinel, err)
	}
	if m["flags"] != "master" {
		return fmt.Errorf("%s: master flags %q", sentinel, m["flags"])
	}
	if n, _ := strconv.Atoi(m["num-other-sentinels"]); n < peers {
		return fmt.Errorf("%s: knows %d other sentinels, want %d", sentinel, n, peers)
	}
	reps, err := sc.Replicas(ctx, SentinelMaster).Result()
	if err != nil {
		return fmt.Errorf("%s: sentinel replicas: %w", sentinel, err)
	}
	flags := map[string]string{}
	for _, r := range reps {
		if name, err := s.nodeName(ctx, r["ip"]); err == nil {
			flags[name] = r["flags"]
		}
	}
	for _, n := range RedisNames() {
		if n == master || !s.running(ctx, n) {
			continue
		}
		f, ok := flags[n]
		if !ok {
			return fmt.Errorf("%s: does not know replica %s yet", sentinel, n)
		}
		if f != "slave" {
			return fmt.Errorf("%s: replica %s flags %q", sentinel, n, f)
		}
	}
	return nil
}

// ReadQueue returns the whole data_queue list of one node (LRANGE in pages).
func (s *Stack) ReadQueue(ctx context.Context, name string) ([]string, error) {
	rdb := s.Redis(name)
	n, err := rdb.LLen(ctx, QueueKey).Result()
	if err != nil {
		return nil, fmt.Errorf("llen %s on %s: %w", QueueKey, name, err)
	}
	const page = 10000
	out := make([]string, 0, n)
	for start := int64(0); ; start += page {
		vals, err := rdb.LRange(ctx, QueueKey, start, start+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("lrange %s %d on %s: %w", QueueKey, start, name, err)
		}
		out = append(out, vals...)
		if len(vals) < page {
			return out, nil
		}
	}
}

// ReadAll waits for convergence and returns the master's list and each running
// replica's list, keyed by node name.
func (s *Stack) ReadAll(ctx context.Context) (master string, masterList []string, replicas map[string][]string, err error) {
	if err := s.WaitConverged(ctx); err != nil {
		return "", nil, nil, err
	}
	if master, err = s.Master(ctx); err != nil {
		return "", nil, nil, err
	}
	if masterList, err = s.ReadQueue(ctx, master); err != nil {
		return "", nil, nil, err
	}
	replicas = map[string][]string{}
	for _, n := range RedisNames() {
		if n == master || !s.running(ctx, n) {
			continue
		}
		if replicas[n], err = s.ReadQueue(ctx, n); err != nil {
			return "", nil, nil, err
		}
	}
	return master, masterList, replicas, nil
}

// waitPing waits until a Redis node or Sentinel answers PING (with AUTH).
func (s *Stack) waitPing(ctx context.Context, name string, sentinel bool) error {
	return retry(ctx, 100*time.Millisecond, func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if sentinel {
			return s.Sentinel(name).Ping(pctx).Err()
		}
		return s.Redis(name).Ping(pctx).Err()
	})
}
