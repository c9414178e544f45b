//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	redisConfPath    = "/etc/sluice/redis.conf"
	sentinelConfPath = "/etc/sluice/sentinel.conf"
)

// Redis is the Redis side of a stack (Stack.Redis): the three nodes and the
// three Sentinels, clients to each, and what they agree on (master,
// replication, the queue).
type Redis struct {
	nodes    *Containers
	cfg      Config
	password string

	mu      sync.Mutex
	clients map[string]*redis.Client
	sents   map[string]*redis.SentinelClient
}

func newRedis(nodes *Containers, cfg Config, password string) *Redis {
	return &Redis{
		nodes: nodes, cfg: cfg, password: password,
		clients: map[string]*redis.Client{},
		sents:   map[string]*redis.SentinelClient{},
	}
}

// RedisNames are the Redis node names; redis-1 is the initial master.
func RedisNames() []string { return []string{"redis-1", "redis-2", "redis-3"} }

// SentinelNames are the Sentinel names.
func SentinelNames() []string { return []string{"sentinel-1", "sentinel-2", "sentinel-3"} }

// env is the environment of the Redis and Sentinel containers, as compose.yaml sets it.
func (rd *Redis) env(name string) map[string]string {
	env := map[string]string{
		// Every ACL user of redis/redis.conf (and the Sentinels, by default) gets the one
		// test password; the harness's own clients log in as admin.
		"REDIS_PASSWORD":               rd.password,
		"REDIS_REPLICATION_PASSWORD":   rd.password,
		"REDIS_SENTINEL_PASSWORD":      rd.password,
		"REDIS_INGEST_PASSWORD":        rd.password,
		"REDIS_BACKUP_PASSWORD":        rd.password,
		"REDIS_STATUS_PASSWORD":        rd.password,
		"REDIS_CONSUMER_PASSWORD":      rd.password,
		"REDIS_MONITORING_PASSWORD":    rd.password,
		"REDIS_SENTINELS":              "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
		"REDIS_INITIAL_MASTER":         "redis-1:6379",
		"SENTINEL_MASTER_NAME":         SentinelMaster,
		"SENTINEL_DOWN_AFTER_MS":       strconv.FormatInt(rd.cfg.DownAfter.Milliseconds(), 10),
		"SENTINEL_FAILOVER_TIMEOUT_MS": strconv.FormatInt(rd.cfg.FailoverTimeout.Milliseconds(), 10),
		// min-replicas-max-lag must stay below down-after (whole seconds, at least 1).
		"REDIS_MIN_REPLICAS_MAX_LAG": strconv.Itoa(max(1, int(rd.cfg.DownAfter/time.Second))),
	}
	maps.Copy(env, rd.cfg.RedisEnv)
	env["REDIS_ANNOUNCE_HOST"] = name
	if p, ok := redisPorts[name]; ok {
		env["REDIS_PORT"] = p
	}
	return env
}

// redisPorts are the Redis nodes' ports, as in compose/compose.yaml: each node
// has its own, so that a Sentinel holding a restarted node's old address (now
// another node's) is refused and resolves the name again.
var redisPorts = map[string]string{"redis-1": "6379", "redis-2": "6380", "redis-3": "6381"}

// redisPort is the container port of a Redis node, as testcontainers names it.
func redisPort(name string) string { return redisPorts[name] + "/tcp" }

// StartNode starts one Redis node (also again, empty, after it was removed)
// and waits until it answers PING.
func (rd *Redis) StartNode(ctx context.Context, name string) error { return rd.start(ctx, name, false) }

// start starts a Redis node or a Sentinel from the redis image, with the
// repository's config file, and waits until it answers PING.
func (rd *Redis) start(ctx context.Context, name string, sentinel bool) error {
	role, conf, port := "redis", repoFile{"redis/redis.conf", redisConfPath, 0o644}, redisPort(name)
	if sentinel {
		role, conf, port = "sentinel", repoFile{"redis/sentinel.conf", sentinelConfPath, 0o644}, sentinelPort
	}
	if _, err := rd.nodes.run(ctx, containerSpec{
		name:     name,
		image:    rd.nodes.Image("redis"),
		env:      rd.env(name),
		cmd:      []string{role},
		files:    []repoFile{conf},
		ports:    []string{port},
		netAdmin: true,
	}); err != nil {
		return err
	}
	return rd.waitPing(ctx, name, sentinel)
}

// Client is a go-redis client to one Redis node through its published port,
// logged in as admin. It re-resolves the port on every new connection. The
// stack closes it.
func (rd *Redis) Client(name string) *redis.Client {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if c, ok := rd.clients[name]; ok {
		return c
	}
	o := rd.options(name, redisPort(name), 5*time.Second, 4)
	o.Username = "admin" // redis/redis.conf: the default user is off
	c := redis.NewClient(o)
	rd.clients[name] = c
	return c
}

// Sentinel is a go-redis Sentinel client to one Sentinel through its published port.
func (rd *Redis) Sentinel(name string) *redis.SentinelClient {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if c, ok := rd.sents[name]; ok {
		return c
	}
	c := redis.NewSentinelClient(rd.options(name, sentinelPort, 3*time.Second, 2))
	rd.sents[name] = c
	return c
}

// options are the harness clients' settings for one container port.
func (rd *Redis) options(name, port string, timeout time.Duration, pool int) *redis.Options {
	return &redis.Options{
		Addr:       name + ":" + strings.TrimSuffix(port, "/tcp"), // informational; Dialer decides
		Dialer:     rd.nodes.dialer(name, port),
		Password:   rd.password,
		MaxRetries: -1, // the harness and the tests retry themselves
		// One dial attempt: a stopped container fails at once instead of five times.
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   timeout,
		WriteTimeout:  timeout,
		PoolSize:      pool,
	}
}

// close closes every client.
func (rd *Redis) close() {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for _, c := range rd.clients {
		_ = c.Close()
	}
	for _, c := range rd.sents {
		_ = c.Close()
	}
}

// Master asks the Sentinels (first one that answers) for the current master
// and returns its container name ("redis-2").
func (rd *Redis) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, sn := range SentinelNames() {
		if !rd.nodes.Node(sn).Running(ctx) {
			errs = append(errs, fmt.Errorf("%s is not running", sn))
			continue
		}
		name, err := rd.sentinelMaster(ctx, sn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return name, nil
	}
	return "", fmt.Errorf("ask sentinels for master %q: %w", SentinelMaster, errors.Join(errs...))
}

// sentinelMaster is one Sentinel's idea of the master, as a container name.
func (rd *Redis) sentinelMaster(ctx context.Context, sentinel string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addr, err := rd.Sentinel(sentinel).GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", fmt.Errorf("%s: get-master-addr-by-name: %w", sentinel, err)
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("%s: get-master-addr-by-name: unexpected reply %q", sentinel, addr)
	}
	name, err := rd.nodeName(ctx, addr[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", sentinel, err)
	}
	return name, nil
}

// nodeName maps a host as Redis or Sentinel report it (hostname or IP) to a
// Redis container name.
func (rd *Redis) nodeName(ctx context.Context, host string) (string, error) {
	if slices.Contains(RedisNames(), host) {
		return host, nil
	}
	for _, n := range RedisNames() {
		if ip, err := rd.nodes.Node(n).IP(ctx); err == nil && ip == host {
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
func (rd *Redis) Replication(ctx context.Context, name string) (Replication, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	info, err := rd.Client(name).Info(ctx, "replication").Result()
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
func (rd *Redis) WaitConverged(ctx context.Context) error {
	t0 := time.Now()
	err := retry(ctx, 200*time.Millisecond, func() error { return rd.converged(ctx) })
	if err != nil {
		return fmt.Errorf("not converged after %s: %w", time.Since(t0).Round(time.Millisecond), err)
	}
	return nil
}

func (rd *Redis) converged(ctx context.Context) error {
	master := ""
	asked := 0
	for _, sn := range SentinelNames() {
		if !rd.nodes.Node(sn).Running(ctx) {
			continue
		}
		m, err := rd.sentinelMaster(ctx, sn)
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
	if !rd.nodes.Node(master).Running(ctx) {
		return fmt.Errorf("sentinels name %s, which is not running", master)
	}
	mr, err := rd.Replication(ctx, master)
	if err != nil {
		return err
	}
	if mr.Role != "master" {
		return fmt.Errorf("sentinels name %s, which is a %s", master, mr.Role)
	}
	replicas := 0
	for _, n := range RedisNames() {
		if n == master || !rd.nodes.Node(n).Running(ctx) {
			continue
		}
		replicas++
		r, err := rd.Replication(ctx, n)
		if err != nil {
			return err
		}
		if r.Role != "slave" {
			return fmt.Errorf("%s is a %s, want a replica of %s", n, r.Role, master)
		}
		if follows, err := rd.nodeName(ctx, r.MasterHost); err != nil || follows != master {
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
		if rd.nodes.Node(sn).Running(ctx) {
			running = append(running, sn)
		}
	}
	for _, sn := range running {
		if err := rd.sentinelSees(ctx, sn, master, len(running)-1); err != nil {
			return err
		}
	}
	return nil
}

// sentinelSees checks one Sentinel's view: the master without s_down/o_down,
// every running replica known and up, and at least peers other Sentinels.
func (rd *Redis) sentinelSees(ctx context.Context, sentinel, master string, peers int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sc := rd.Sentinel(sentinel)
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
		if name, err := rd.nodeName(ctx, r["ip"]); err == nil {
			flags[name] = r["flags"]
		}
	}
	for _, n := range RedisNames() {
		if n == master || !rd.nodes.Node(n).Running(ctx) {
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
func (rd *Redis) ReadQueue(ctx context.Context, name string) ([]string, error) {
	rdb := rd.Client(name)
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
func (rd *Redis) ReadAll(ctx context.Context) (master string, masterList []string, replicas map[string][]string, err error) {
	if err := rd.WaitConverged(ctx); err != nil {
		return "", nil, nil, err
	}
	if master, err = rd.Master(ctx); err != nil {
		return "", nil, nil, err
	}
	if masterList, err = rd.ReadQueue(ctx, master); err != nil {
		return "", nil, nil, err
	}
	replicas = map[string][]string{}
	for _, n := range RedisNames() {
		if n == master || !rd.nodes.Node(n).Running(ctx) {
			continue
		}
		if replicas[n], err = rd.ReadQueue(ctx, n); err != nil {
			return "", nil, nil, err
		}
	}
	return master, masterList, replicas, nil
}

// waitPing waits until a Redis node or Sentinel answers PING (with AUTH).
func (rd *Redis) waitPing(ctx context.Context, name string, sentinel bool) error {
	return retry(ctx, 100*time.Millisecond, func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if sentinel {
			return rd.Sentinel(name).Ping(pctx).Err()
		}
		return rd.Client(name).Ping(pctx).Err()
	})
}
