package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/bench/internal/report"
	"github.com/sluice-ingest/sluice/internal/loadresult"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// bench is the state of one run.
type bench struct {
	cfg     Config
	log     *slog.Logger
	out     io.Writer
	tmp     string
	ingest  string // built binaries
	loadgen string
	top     *redistest.Topology
}

// Run builds the binaries, starts the stack, measures, writes the report
// and tears everything down.
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	begin := time.Now()
	tmp, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &bench{cfg: cfg, log: log, out: out, tmp: tmp}

	if err := b.build(ctx); err != nil {
		return err
	}
	b.say("starting redis master + 2 replicas + 3 sentinels")
	b.top, err = startTopology(ctx, tmp)
	if err != nil {
		return fmt.Errorf("start topology: %w", err)
	}
	defer b.top.Close()

	res := report.Results{
		Date: begin, Commit: commit(ctx), Machine: machine(), Versions: versions(ctx),
		Messages: cfg.Messages, Size: cfg.Size, Conns: cfg.Conns, Window: cfg.Window, Ingests: cfg.Ingests,
		ScaleMode: cfg.ShippedMode, Cores: runtime.NumCPU(), HTTPBatch: httpBatch,
	}
	if err := b.ceilings(ctx, &res); err != nil {
		return err
	}
	for _, mode := range cfg.Modes {
		if err := b.runMode(ctx, mode, &res); err != nil {
			return err
		}
	}
	if cfg.OverloadPause > 0 {
		if err := b.runOverload(ctx, &res); err != nil {
			return err
		}
	}
	if err := b.runScale(ctx, &res); err != nil {
		return err
	}
	res.Duration = time.Since(begin)
	return b.write(res)
}

// build builds the ingest and loadgen binaries into the temporary directory.
func (b *bench) build(ctx context.Context) error {
	b.say("building ingest and loadgen")
	b.ingest, b.loadgen = filepath.Join(b.tmp, "ingest"), filepath.Join(b.tmp, "loadgen")
	for bin, pkg := range map[string]string{b.ingest: "./services/ingest", b.loadgen: "./services/loadgen"} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", pkg, err, out)
		}
	}
	return nil
}

// ceilings measures what the Redis master alone takes (redis-benchmark),
// then empties it.
func (b *bench) ceilings(ctx context.Context, res *report.Results) error {
	cfg, master := b.cfg, b.top.Redis[0]
	var err error
	b.say("ceiling: redis-benchmark -t rpush -P 128 -c 50 -n %d, best of 3", cfg.CeilingRequests)
	if res.Ceiling, res.CeilingMin, err = ceiling(ctx, master.Addr, cfg.CeilingRequests, 0); err != nil {
		return err
	}
	res.CeilingMax = res.Ceiling
	if res.CeilingD, _, err = ceiling(ctx, master.Addr, cfg.CeilingRequests, cfg.Size); err != nil {
		return err
	}
	if res.CeilingMulti, err = multiCeiling(ctx, master.Addr, cfg.CeilingRequests, cfg.Size); err != nil {
		return err
	}
	b.say("ceiling %.0f RPUSH/s (-d %d: %.0f; multi-value RPUSH: %.0f elements/s)", res.Ceiling, cfg.Size, res.CeilingD, res.CeilingMulti)
	return resetData(ctx, b.top)
}

// runMode measures one MIN_REPLICAS mode (full load over TCP and HTTP, 50%
// and 25% of the peak, the profile of the first mode) after a ceiling run
// next to it, and adds it to res.
func (b *bench) runMode(ctx context.Context, mode int, res *report.Results) error {
	cfg, master := b.cfg, b.top.Redis[0]
	m := report.Mode{MinReplicas: mode, Shipped: mode == cfg.ShippedMode}
	var err error
	if m.AdjacentCeiling, err = ceilingOnce(ctx, master.Addr, cfg.CeilingRequests, 0); err != nil {
		return err
	}
	res.CeilingMin = min(res.CeilingMin, m.AdjacentCeiling)
	res.CeilingMax = max(res.CeilingMax, m.AdjacentCeiling)
	if err := resetData(ctx, b.top); err != nil {
		return err
	}
	err = b.withStack(ctx, cfg.Ingests, mode, func(hap *redistest.HAProxy, ingests []*ingest) error {
		var err error
		b.say("MIN_REPLICAS=%d: full load", mode)
		if m.Full, err = b.measure(ctx, hap, ingests, cfg.Messages, 0); err != nil {
			return err
		}
		b.sayRun(m.Full, res.Ceiling)
		b.say("MIN_REPLICAS=%d: full load over HTTP (%d-line bodies)", mode, httpBatch)
		web, err := b.measureHTTP(ctx, hap, ingests, cfg.Messages)
		if err != nil {
			return err
		}
		m.HTTP = &web
		b.sayRun(web, res.Ceiling)
		rate := m.Full.Load.MsgsPerSec / 2
		b.say("MIN_REPLICAS=%d: 50%% of peak (%.0f msgs/s)", mode, rate)
		if m.Half, err = b.measure(ctx, hap, ingests, cfg.Messages/2, rate); err != nil {
			return err
		}
		b.sayRun(m.Half, res.Ceiling)
		b.say("MIN_REPLICAS=%d: 25%% of peak (%.0f msgs/s)", mode, rate/2)
		q, err := b.measure(ctx, hap, ingests, cfg.Messages/4, rate/2)
		if err != nil {
			return err
		}
		m.Quarter = &q
		b.sayRun(q, res.Ceiling)
		if cfg.Profile && mode == cfg.Modes[0] {
			res.ProfileOf = fmt.Sprintf("one ingest at full load, MIN_REPLICAS=%d", mode)
			if res.Profile, err = b.profile(ctx, hap, ingests[0]); err != nil {
				b.log.Warn("profile failed", "err", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mode MIN_REPLICAS=%d: %w", mode, err)
	}
	res.Modes = append(res.Modes, m)
	return nil
}

// runOverload runs full load on one ingest while the Redis master is paused.
func (b *bench) runOverload(ctx context.Context, res *report.Results) error {
	err := b.withStack(ctx, 1, 0, func(hap *redistest.HAProxy, ingests []*ingest) error {
		b.say("overload: Redis master paused for %s during a full-load run (MIN_REPLICAS=0)", b.cfg.OverloadPause)
		o, err := b.overload(ctx, hap, ingests[0])
		if err != nil {
			b.log.Warn("overload run", "err", err)
		}
		if o == nil {
			return nil
		}
		res.Overload = o
		fmt.Fprintf(b.out, "   ingest peak RSS %.1f MiB (INGEST_MAX_INFLIGHT_BYTES %d MiB); acked %d of %d\n",
			o.PeakRSSMiB, o.MaxInflightBytes>>20, o.Load.Acked, o.Load.Messages)
		return nil
	})
	if err != nil {
		return fmt.Errorf("overload: %w", err)
	}
	return nil
}

// runScale measures full load with each number of ingests of cfg.Scale.
func (b *bench) runScale(ctx context.Context, res *report.Results) error {
	for _, n := range b.cfg.Scale {
		if n == 0 {
			continue
		}
		err := b.withStack(ctx, n, b.cfg.ShippedMode, func(hap *redistest.HAProxy, ingests []*ingest) error {
			b.say("scaling: %d ingest(s), MIN_REPLICAS=%d, full load", n, b.cfg.ShippedMode)
			r, err := b.measure(ctx, hap, ingests, b.cfg.Messages, 0)
			if err != nil {
				return err
			}
			b.sayRun(r, res.Ceiling)
			res.Scale = append(res.Scale, report.Scale{Ingests: n, Run: r})
			return nil
		})
		if err != nil {
			return fmt.Errorf("scaling with %d ingests: %w", n, err)
		}
	}
	return nil
}

// write writes results.json, results.md and the chart; messages left
// unacked by any run are an error, after the files are written.
func (b *bench) write(res report.Results) error {
	if err := report.WriteFiles(b.cfg.Out, res); err != nil {
		return err
	}
	mdPath := filepath.Join(b.cfg.Out, "results.md")
	chart := filepath.Join(b.cfg.Out, "chart.png")
	b.say("wrote %s and %s in %s", mdPath, chart, res.Duration.Round(time.Second))
	if n := unacked(res); n > 0 {
		return fmt.Errorf("%d messages left unacked across the runs (see %s)", n, mdPath)
	}
	return nil
}

// unacked counts the messages left unacked by the full and half load runs of
// each mode (TCP and HTTP), the scaling runs and the overload run.
func unacked(res report.Results) uint64 {
	var n uint64
	for _, m := range res.Modes {
		n += m.Full.Load.Unacked + m.Half.Load.Unacked
		if m.HTTP != nil {
			n += m.HTTP.Load.Unacked
		}
	}
	for _, s := range res.Scale {
		n += s.Run.Load.Unacked
	}
	if res.Overload != nil {
		n += res.Overload.Load.Unacked
	}
	return n
}

func (b *bench) say(format string, a ...any) {
	fmt.Fprintf(b.out, ">> "+format+"\n", a...)
}

func (b *bench) sayRun(r report.Run, ceiling float64) {
	l := r.Load
	fmt.Fprintf(b.out, "   %.0f msgs/s (%.0f%% of ceiling), %.1f MB/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; ingest CPU %.0f%%, RSS %.1f MiB; redis CPU %.0f%%; unacked %d\n",
		l.MsgsPerSec, 100*l.MsgsPerSec/ceiling, l.MBPerSec, l.LatencyP50/1e3, l.LatencyP99/1e3, l.LatencyP999/1e3,
		r.IngestCPU, r.IngestRSSMiB, r.RedisCPU, l.Unacked)
	sv := r.Server
	fmt.Fprintf(b.out, "   in ingest: ack p50 %.2f ms p99 %.2f ms; redis write p50 %.2f ms p99 %.2f ms; %.0f flushes, batch p50 %.0f; aof delayed fsyncs %.0f; redis stalls [%s]; machine CPU %.0f%%, loadgen %.0f%%, haproxy %.0f%%, replicas %.0f%%\n",
		sv.AckP50/1e3, sv.AckP99/1e3, sv.WriteP50/1e3, sv.WriteP99/1e3, sv.Flushes, sv.BatchP50, r.AOFDelayedFsync, r.RedisStalls,
		r.MachineCPU, r.LoadgenCPU, r.HAProxyCPU, r.ReplicasCPU)
}

// withStack starts n ingests with MIN_REPLICAS=mode and HAProxy, warms up,
// runs fn, stops everything and resets the data.
func (b *bench) withStack(ctx context.Context, n, mode int, fn func(*redistest.HAProxy, []*ingest) error) (err error) {
	var ingests []*ingest
	defer func() {
		for _, in := range ingests {
			if in.Running() {
				in.Stop()
			}
			if err != nil {
				b.log.Info("ingest log tail", "name", in.Dir(), "log", tailString(in.Logs(), 2000))
			}
			in.Close()
		}
	}()
	for i := range n {
		in, err := startIngest(ctx, b.ingest, b.tmp, b.top, b.cfg.RedisMode, fmt.Sprintf("ingest-%d", i+1), mode, b.cfg.IngestEnv)
		if err != nil {
			return err
		}
		ingests = append(ingests, in)
	}
	hap, err := startHAProxy(ctx, b.tmp, ingests)
	if err != nil {
		return err
	}
	defer hap.Close()
	// Warm-up: connections, pools and Go's heap reach their working size.
	if _, err := b.loadgenRun(ctx, hap.Addr, max(b.cfg.Messages/20, 1000), 0); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := fn(hap, ingests); err != nil {
		return err
	}
	return resetData(ctx, b.top)
}

// httpBatch is the lines per request of the HTTP runs.
const httpBatch = 1000

// measure runs loadgen over TCP while sampling CPU and RSS of ingest, the
// Redis master, HAProxy and loadgen itself.
func (b *bench) measure(ctx context.Context, hap *redistest.HAProxy, ingests []*ingest, n int, rate float64) (report.Run, error) {
	return b.measureWith(ctx, hap, ingests, n, rate, nil)
}

// measureHTTP is measure at full load over HAProxy's HTTP port.
func (b *bench) measureHTTP(ctx context.Context, hap *redistest.HAProxy, ingests []*ingest, n int) (report.Run, error) {
	return b.measureWith(ctx, hap, ingests, n, 0, []string{"-http", "-batch", strconv.Itoa(httpBatch),
		"-addr", fmt.Sprintf("127.0.0.1:%d", hap.Ports[1])})
}

func (b *bench) measureWith(ctx context.Context, hap *redistest.HAProxy, ingests []*ingest, n int, rate float64, extra []string) (report.Run, error) {
	master, err := b.top.MasterRedis(ctx)
	if err != nil {
		return report.Run{}, err
	}
	pids := []int{master.PID(), hap.PID()}
	var replicas []int
	for _, rd := range b.top.Redis {
		if rd != master {
			replicas = append(replicas, rd.PID())
		}
	}
	pids = append(pids, replicas...)
	for _, in := range ingests {
		pids = append(pids, in.PID())
	}
	before, err := scrapeIngests(ctx, ingests)
	if err != nil {
		return report.Run{}, err
	}
	fsyncBefore, err := aofDelayedFsync(ctx, b.top)
	if err != nil {
		return report.Run{}, err
	}
	if err := resetRedisLatency(ctx, b.top); err != nil {
		return report.Run{}, err
	}
	s := startSampler(pids)
	start := time.Now()
	l, loadgenCPU, err := b.loadgenRunWith(ctx, hap.Addr, n, rate, extra...)
	wall := time.Since(start).Seconds()
	use, machine := s.stop()
	if err != nil {
		return report.Run{}, err
	}
	after, err := scrapeIngests(ctx, ingests)
	if err != nil {
		return report.Run{}, err
	}
	fsyncAfter, err := aofDelayedFsync(ctx, b.top)
	if err != nil {
		return report.Run{}, err
	}
	stalls, worst, err := redisStalls(ctx, b.top)
	if err != nil {
		return report.Run{}, err
	}
	r := report.Run{Load: l, LoadgenCPU: 100 * loadgenCPU / wall, RedisCPU: use[0].CPUPercent, HAProxyCPU: use[1].CPUPercent, MachineCPU: machine,
		Server: breakdown(before, after), AOFDelayedFsync: fsyncAfter - fsyncBefore, RedisStalls: stalls, RedisStallMaxMS: worst}
	for _, u := range use[2 : 2+len(replicas)] {
		r.ReplicasCPU += u.CPUPercent
	}
	for _, u := range use[2+len(replicas):] {
		r.IngestCPU += u.CPUPercent
		r.IngestCPUSeconds += u.CPUSeconds
		r.IngestRSSMiB = max(r.IngestRSSMiB, float64(u.PeakRSS)/(1<<20))
	}
	return r, nil
}

// loadgenRun runs the loadgen binary and parses its JSON result. A run with
// unacked messages is returned with its result and no error: the report
// shows it, and Run fails at the end.
func (b *bench) loadgenRun(ctx context.Context, addr string, n int, rate float64) (loadresult.Result, error) {
	l, _, err := b.loadgenRunWith(ctx, addr, n, rate)
	return l, err
}

// loadgenRunWith also returns the CPU seconds loadgen used; extra flags
// come last (a later -addr wins).
func (b *bench) loadgenRunWith(ctx context.Context, addr string, n int, rate float64, extra ...string) (loadresult.Result, float64, error) {
	args := []string{"-addr", addr, "-n", strconv.Itoa(n), "-size", strconv.Itoa(b.cfg.Size), "-c", strconv.Itoa(b.cfg.Conns),
		"-window", strconv.Itoa(b.cfg.Window), "-timeout", b.cfg.RunTimeout.String(), "-json", "-no-progress"}
	if rate > 0 {
		args = append(args, "-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RunTimeout+30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.loadgen, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var cpu float64
	if cmd.ProcessState != nil {
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	var l loadresult.Result
	if err := json.Unmarshal(stdout.Bytes(), &l); err != nil {
		return l, cpu, fmt.Errorf("loadgen %v: %w (stderr %s; parse: %v)", args, runErr, tailString(stderr.String(), 1000), err)
	}
	if l.Unacked > 0 {
		b.log.Warn("loadgen left messages unacked", "unacked", l.Unacked, "errors", l.Errors)
	}
	return l, cpu, nil
}

// defaultMaxInflight is INGEST_MAX_INFLIGHT_BYTES's default.
const defaultMaxInflight = 16 << 20

// overload pauses the Redis master while loadgen runs at full speed and
// records the ingest's peak RSS; Redis resumes before the retry deadline,
// so every message is acked in the end.
func (b *bench) overload(ctx context.Context, hap *redistest.HAProxy, in *ingest) (*report.Overload, error) {
	master, err := b.top.MasterRedis(ctx)
	if err != nil {
		return nil, err
	}
	o := &report.Overload{Pause: b.cfg.OverloadPause, MaxInflightBytes: defaultMaxInflight}
	for _, kv := range b.cfg.IngestEnv {
		if v, ok := strings.CutPrefix(kv, "INGEST_MAX_INFLIGHT_BYTES="); ok {
			o.MaxInflightBytes, _ = strconv.Atoi(v)
		}
	}
	s := startSampler([]int{in.PID()})
	done := make(chan error, 1)
	go func() {
		l, err := b.loadgenRun(ctx, hap.Addr, b.cfg.Messages, 0)
		o.Load = l
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the stream is running
	if err := master.Pause(); err != nil {
		return nil, err
	}
	select {
	case err = <-done: // loadgen ended while paused: report it below
		master.Resume()
		use, _ := s.stop()
		o.PeakRSSMiB = float64(use[0].PeakRSS) / (1 << 20)
		if err == nil {
			err = errors.New("loadgen finished while Redis was paused: raise BENCH_MESSAGES")
		}
		return o, err
	case <-time.After(b.cfg.OverloadPause):
	}
	if err := master.Resume(); err != nil {
		return nil, err
	}
	err = <-done
	use, _ := s.stop()
	o.PeakRSSMiB = float64(use[0].PeakRSS) / (1 << 20)
	return o, err
}

// profile takes a CPU profile of one ingest during a full-load run and
// returns the top of `go tool pprof -top`.
func (b *bench) profile(ctx context.Context, hap *redistest.HAProxy, in *ingest) (string, error) {
	dir := b.cfg.ProfileDir
	if dir == "" {
		dir = b.tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, "ingest-cpu.pprof")
	b.say("profiling ingest (pprof, 4 s) at full load -> %s", path)
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+in.Admin+"/debug/pprof/profile?seconds=4", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET pprof profile: %s: %s", resp.Status, tailString(string(data), 200))
		}
		got <- result{data, err}
	}()
	time.Sleep(100 * time.Millisecond)
	// Enough messages to keep the ingest busy for the whole profile.
	if _, err := b.loadgenRun(ctx, hap.Addr, b.cfg.Messages, 0); err != nil {
		return "", err
	}
	r := <-got
	if r.err != nil {
		return "", r.err
	}
	if err := os.WriteFile(path, r.data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", b.ingest, path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, out)
	}
	return string(out), nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf(", %.0f GiB RAM", kb/(1<<20))
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = fmt.Sprintf(", load average %s %s %s at start (shared machine)", f[0], f[1], f[2])
		}
	}
	return fmt.Sprintf("%s, %d cores%s%s%s", model, runtime.NumCPU(), mem, kernel, load)
}

func versions(ctx context.Context) string {
	var parts []string
	if out, err := exec.CommandContext(ctx, "redis-server", "--version").Output(); err == nil {
		f := strings.Fields(string(out))
		for _, x := range f {
			if v, ok := strings.CutPrefix(x, "v="); ok {
				parts = append(parts, "redis "+v)
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "haproxy", "-v").Output(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(line); len(f) >= 3 {
			parts = append(parts, "haproxy "+f[2])
		}
	}
	parts = append(parts, runtime.Version())
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ", ")
}
