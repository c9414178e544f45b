package runner

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// benchPassword protects the bench Redis servers (loopback only).
const benchPassword = "bench-only-redis-password"

// redisConfig mirrors the relevant lines of redis/redis.conf.
var redisConfig = []string{
	"min-replicas-to-write 1",
	"min-replicas-max-lag 10",
	"repl-backlog-size 64mb",
	"repl-ping-replica-period 1",
	"repl-diskless-sync yes",
	"repl-diskless-sync-delay 0",
	"maxmemory-policy noeviction",
	// The bench deletes its key and rewrites the AOF between runs itself;
	// an automatic rewrite in the middle of a run would only add noise.
	"auto-aof-rewrite-percentage 0",
	// Record event-loop stalls (fsync, command, fork...) of 2 ms or more:
	// the bench reads LATENCY LATEST after each run to split the tail.
	"latency-monitor-threshold 2",
}

// startTopology starts master + 2 replicas + 3 Sentinels and waits for it.
func startTopology(ctx context.Context, base string) (*redistest.Topology, error) {
	top, err := redistest.StartTopology(ctx, redistest.TopologyOptions{
		Replicas:    2,
		Sentinels:   3,
		Password:    benchPassword,
		DownAfter:   10 * time.Second, // above BENCH_OVERLOAD_PAUSE: a paused master is not failed over
		RedisConfig: redisConfig,
		BaseDir:     base,
	})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := top.WaitReady(wctx); err != nil {
		top.Close()
		return nil, err
	}
	return top, nil
}

// ceiling runs redis-benchmark -t rpush -P 128 -c 50 against addr three
// times and returns the best and the worst RPUSH requests per second (the
// machine is shared: the best run is the closest to what Redis can do).
func ceiling(ctx context.Context, addr string, requests, dataSize int) (best, worst float64, err error) {
	for i := range 3 {
		v, err := ceilingOnce(ctx, addr, requests, dataSize)
		if err != nil {
			return 0, 0, err
		}
		best = max(best, v)
		if i == 0 || v < worst {
			worst = v
		}
	}
	return best, worst, nil
}

func ceilingOnce(ctx context.Context, addr string, requests, dataSize int) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-h", host, "-p", port, "-a", benchPassword, "-t", "rpush", "-P", "128", "-c", "50",
		"-n", strconv.Itoa(requests), "--csv"}
	if dataSize > 0 {
		args = append(args, "-d", strconv.Itoa(dataSize))
	}
	return runBenchmark(ctx, args)
}

// multiValues is the number of values per RPUSH in the multi-value ceiling.
const multiValues = 100

// multiCeiling measures multi-value RPUSH (multiValues values of dataSize
// bytes each, -P 16 -c 50), the command shape ingest sends, and returns
// elements per second.
func multiCeiling(ctx context.Context, addr string, elements, dataSize int) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-h", host, "-p", port, "-a", benchPassword, "-P", "16", "-c", "50",
		"-n", strconv.Itoa(max(elements/multiValues, 100)), "--csv", "RPUSH", "mylist"}
	v := strings.Repeat("v", dataSize)
	for range multiValues {
		args = append(args, v)
	}
	rps, err := runBenchmark(ctx, args)
	return rps * multiValues, err
}

func runBenchmark(ctx context.Context, args []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).Output()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark %v: %w", args[:min(len(args), 16)], err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("parse redis-benchmark output %q: %w", out, err)
	}
	for _, r := range recs {
		if len(r) >= 2 && strings.HasPrefix(strings.ToUpper(r[0]), "RPUSH") {
			v, err := strconv.ParseFloat(r[1], 64)
			if err != nil {
				return 0, fmt.Errorf("parse redis-benchmark rps %q: %w", r[1], err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("no RPUSH line in redis-benchmark output %q", out)
}

// resetData deletes the keys the bench wrote and rewrites every AOF, so the
// next run starts from the same state.
func resetData(ctx context.Context, top *redistest.Topology) error {
	m, err := top.MasterRedis(ctx)
	if err != nil {
		return err
	}
	c := m.Client()
	err = c.Unlink(ctx, redisconn.DefaultKey, "mylist").Err()
	if err == nil {
		// Replicas receive the UNLINK before the rewrite starts.
		err = c.Do(ctx, "WAIT", len(top.Redis)-1, 10000).Err()
	}
	c.Close()
	if err != nil {
		return fmt.Errorf("reset bench keys: %w", err)
	}
	for _, r := range top.Redis {
		rc := r.Client()
		err := rc.BgRewriteAOF(ctx).Err()
		if err != nil && !strings.Contains(err.Error(), "already in progress") {
			rc.Close()
			return fmt.Errorf("bgrewriteaof on %s: %w", r.Addr, err)
		}
		for i := 0; ; i++ {
			info, err := rc.Info(ctx, "persistence").Result()
			if err != nil {
				rc.Close()
				return fmt.Errorf("info persistence on %s: %w", r.Addr, err)
			}
			if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
				break
			}
			if i > 600 {
				rc.Close()
				return fmt.Errorf("aof rewrite on %s not done after 60s", r.Addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		rc.Close()
	}
	return nil
}

// ingest is one ingest process with its ports.
type ingest struct {
	*redistest.Command
	Ports redistest.IngestPorts
	Data  string // 127.0.0.1:<Ports.Data>
	Admin string // 127.0.0.1:<Ports.Admin>
}

// startIngest starts the ingest binary in Sentinel mode behind PROXY v2.
func startIngest(ctx context.Context, bin, base string, top *redistest.Topology, redisMode, name string, minReplicas int, extra []string) (*ingest, error) {
	redisEnv := []string{
		"INGEST_SENTINEL_ADDRS=" + strings.Join(top.SentinelAddrs(), ","),
		"INGEST_SENTINEL_MASTER=" + redistest.MasterName,
	}
	if redisMode == "single" {
		m, err := top.Master(ctx)
		if err != nil {
			return nil, err
		}
		redisEnv = []string{"INGEST_REDIS_ADDR=" + m}
	}
	var last error
	for range 3 { // a picked port may be taken meanwhile
		dp, err1 := redistest.FreePort()
		ap, err2 := redistest.FreePort()
		hp, err3 := redistest.FreePort()
		np, err4 := redistest.FreePort()
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, err
		}
		data, admin := fmt.Sprintf("127.0.0.1:%d", dp), fmt.Sprintf("127.0.0.1:%d", ap)
		env := []string{
			"INGEST_LISTEN_ADDR=" + data,
			"INGEST_ADMIN_ADDR=" + admin,
			fmt.Sprintf("INGEST_HTTP_ADDR=127.0.0.1:%d", hp),
			fmt.Sprintf("INGEST_NOACK_ADDR=127.0.0.1:%d", np),
			"INGEST_REDIS_PASSWORD=" + benchPassword,
			"INGEST_PROXY_PROTOCOL=true",
			"INGEST_MIN_REPLICAS=" + strconv.Itoa(minReplicas),
			"INGEST_PPROF=true",
			"INGEST_LOG_LEVEL=warn",
			"INGEST_DRAIN_DELAY=0s",
		}
		env = append(append(env, redisEnv...), extra...)
		c, err := redistest.StartCommand(ctx, redistest.CommandOptions{
			Name: name, Path: bin, Env: env, BaseDir: base,
			Ready: redistest.HTTPReady("http://" + admin + "/ready"),
		})
		if err == nil {
			return &ingest{Command: c, Ports: redistest.IngestPorts{Data: dp, HTTP: hp, NoAck: np, Admin: ap}, Data: data, Admin: admin}, nil
		}
		last = err
	}
	return nil, last
}

// haproxyConfig is the shipped haproxy/haproxy.cfg (read from the module
// root, where `go run ./bench` runs).
const haproxyConfig = "haproxy/haproxy.cfg"

// startHAProxy starts HAProxy with the shipped haproxy.cfg in front of the
// ingests (static servers instead of Docker DNS): Ports are the TCP, HTTP,
// no-ack and stats ports, Addr the TCP one.
func startHAProxy(ctx context.Context, base string, ingests []*ingest) (*redistest.HAProxy, error) {
	raw, err := os.ReadFile(haproxyConfig)
	if err != nil {
		return nil, fmt.Errorf("read shipped haproxy config: %w", err)
	}
	if os.Getenv("HAPROXY_STATS_PASSWORD") == "" {
		os.Setenv("HAPROXY_STATS_PASSWORD", "bench-only-stats-password")
	}
	ports := make([]redistest.IngestPorts, len(ingests))
	for i, in := range ingests {
		ports[i] = in.Ports
	}
	var cfgErr error
	h, err := redistest.StartHAProxy(ctx, redistest.HAProxyOptions{
		Ports:   4,
		BaseDir: base,
		Config: func(p []int) string {
			cfg, err := redistest.ShippedHAProxyConfig(string(raw), redistest.ShippedPorts{Data: p[0], HTTP: p[1], NoAck: p[2], Stats: p[3], Ingests: ports})
			cfgErr = err
			return cfg
		},
	})
	return h, errors.Join(cfgErr, err)
}
