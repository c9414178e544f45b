// Package report holds the bench results and renders them as results.md and
// a PNG chart.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/internal/loadresult"
)

// Run is one measured loadgen run with the resource use of the stack.
type Run struct {
	Load loadresult.Result
	// IngestCPU is the summed CPU of the ingest processes, % of one core.
	IngestCPU float64
	// IngestCPUSeconds is their summed CPU time over the run.
	IngestCPUSeconds float64
	// IngestRSSMiB is the largest peak RSS of one ingest process.
	IngestRSSMiB float64
	// RedisCPU (master), ReplicasCPU (sum), HAProxyCPU and LoadgenCPU:
	// % of one core.
	RedisCPU, ReplicasCPU, HAProxyCPU, LoadgenCPU float64
	// MachineCPU is the busy share of the whole machine (all processes,
	// ours and others), % of one core: 200 = both cores busy.
	MachineCPU float64
	// Server is the ingest side of the latency, from its histograms.
	Server Server
	// AOFDelayedFsync is how many times the Redis master's everysec fsync
	// was still running when the next was due during the run.
	AOFDelayedFsync float64
	// RedisStalls is the master's LATENCY LATEST over the run (events of
	// 2 ms or more, longest per event); RedisStallMaxMS the longest.
	RedisStalls     string
	RedisStallMaxMS float64
}

// Server is the latency seen inside ingest during one run (deltas of its
// Prometheus histograms, summed over the ingests; quantiles interpolated
// inside exponential buckets, so they are approximate). Times in µs.
type Server struct {
	// AckP50, AckP99: from reading a message's chunk to handing its ack
	// to the connection's writer (linger, lane queue, flush, WAIT).
	AckP50, AckP99 float64
	// WriteP50, WriteP99: one flush round trip to Redis (RPUSH with its
	// sequence key, plus WAIT when configured).
	WriteP50, WriteP99 float64
	// Flushes is the number of flushes; BatchP50 the median messages per flush.
	Flushes, BatchP50 float64
}

// Mode is one INGEST_MIN_REPLICAS setting at full load and at half of it.
type Mode struct {
	MinReplicas int
	Shipped     bool
	Full, Half  Run
	// Quarter is the same mode at 25% of peak, to show where latency
	// targets are met when the machine has headroom.
	Quarter *Run `json:",omitempty"`
	// HTTP is the same mode at full load over HTTP: POST /v1/messages
	// with bodies of HTTPBatch lines, one request in flight per connection.
	HTTP *Run `json:",omitempty"`
	// AdjacentCeiling is one redis-benchmark run right before this mode:
	// on a shared machine it shows how much the load around moved.
	AdjacentCeiling float64
}

// Overload is a run during which the Redis master was paused (SIGSTOP).
type Overload struct {
	Pause            time.Duration
	PeakRSSMiB       float64           // ingest peak RSS over the run
	MaxInflightBytes int               // INGEST_MAX_INFLIGHT_BYTES of that ingest
	Load             loadresult.Result // the loadgen run (all acked once Redis resumed)
}

// Scale is one ingest count at full load (shipped mode).
type Scale struct {
	Ingests int
	Run     Run
}

// Results of a whole bench run.
type Results struct {
	Date     time.Time
	Commit   string
	Machine  string
	Versions string
	Messages int
	Size     int
	Conns    int
	Window   int
	Ingests  int
	// HTTPBatch is the lines per request of the HTTP runs.
	HTTPBatch int
	Ceiling   float64 // redis-benchmark -t rpush -P 128 -c 50 (default -d 3)
	CeilingD  float64 // same with -d Size
	// CeilingMulti is elements/s of multi-value RPUSH (100 values of Size
	// bytes per command, -P 16 -c 50): the command shape ingest sends.
	CeilingMulti float64
	// CeilingMin and CeilingMax span every ceiling measurement of the run.
	CeilingMin, CeilingMax float64
	Modes                  []Mode
	ScaleMode              int
	Scale                  []Scale
	Profile                string // pprof -top text
	ProfileOf              string // what was profiled
	// Overload: the Redis master paused while loadgen pushes at full speed.
	Overload *Overload
	Duration time.Duration
	Cores    int // CPUs of the machine
}

// Ratio is throughput over the ceiling.
func (r Results) Ratio(msgsPerSec float64) float64 {
	if r.Ceiling <= 0 {
		return 0
	}
	return msgsPerSec / r.Ceiling
}

func ms(us float64) string { return fmt.Sprintf("%.2f", us/1e3) }

func modeName(m Mode) string {
	s := fmt.Sprintf("MIN_REPLICAS=%d", m.MinReplicas)
	if m.Shipped {
		s += " (shipped default)"
	}
	return s
}

// WriteFiles writes results.json, results.md and chart.png into dir.
func WriteFiles(dir string, r Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results.json: %w", err)
	}
	var md strings.Builder
	if err := WriteMarkdown(&md, r); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write results.md: %w", err)
	}
	return WriteChart(filepath.Join(dir, "chart.png"), r)
}

// Render re-renders results.md and chart.png from dir/results.json.
func Render(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("decode %s/results.json: %w", dir, err)
	}
	return WriteFiles(dir, r)
}

// WriteMarkdown renders results.md.
func WriteMarkdown(w io.Writer, r Results) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# sluice benchmark results\n\n")
	p("Generated by `make bench` on %s, commit `%s`, in %s.\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Commit, r.Duration.Round(time.Second))
	p("- Machine: %s\n", r.Machine)
	p("- Software: %s\n", r.Versions)
	p("- Stack: local processes on loopback: redis-server master + 2 replicas (AOF on, `appendfsync everysec`), 3 Sentinels, ")
	p("HAProxy (`mode tcp`, `leastconn`, `send-proxy-v2`, `/ready` checks), %d ingest process(es) in Sentinel mode with `INGEST_PROXY_PROTOCOL=true`.\n", r.Ingests)
	p("- Load: `loadgen` through HAProxy, %d messages of %d B over %d connections, at most %d unacked per connection. ", r.Messages, r.Size, r.Conns, r.Window)
	p("Latency is from the moment a message is due (its slot in the rate schedule; at full load, the moment the sender reaches it, window wait included) to the cumulative ack that covers it.\n")
	p("- 50%% of peak: the same mode rate-limited to half the full-load throughput, %d messages.\n\n", r.Messages/2)

	p("## Ceiling (same Redis master, same run)\n\n")
	p("| command | RPUSH/s |\n| --- | ---: |\n")
	p("| `redis-benchmark -t rpush -P 128 -c 50` | %.0f |\n", r.Ceiling)
	p("| `redis-benchmark -t rpush -P 128 -c 50 -d %d` | %.0f |\n", r.Size, r.CeilingD)
	p("| `redis-benchmark -P 16 -c 50 RPUSH mylist v1..v100` (%d B values; elements/s) | %.0f |\n\n", r.Size, r.CeilingMulti)
	p("Ratios below are against the first line (the command the issue names, best of 3). ")
	p("All ceiling measurements of this run (3 at the start, 1 before each mode) ranged from %.0f to %.0f RPUSH/s", r.CeilingMin, r.CeilingMax)
	if r.CeilingMin > 0 && r.CeilingMax > 1.5*r.CeilingMin {
		p(": **the machine was busy (other work on the same 2 cores), so the ratios are unreliable**; ingest CPU per message (below) does not depend on that")
	}
	p(".\n\n")

	p("## Modes (%d ingest)\n\n", r.Ingests)
	p("### Full load\n\n")
	p("| mode | acked msgs/s | MB/s | ratio vs ceiling | (vs adjacent ceiling) | vs multi-value ceiling | p50 ms | p90 ms | p99 ms | p99.9 ms | ingest RSS MiB (peak) | ingest CPU %% | ingest CPU µs/msg | redis master CPU %% | haproxy CPU %% | loadgen CPU %% | unacked |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, m := range r.Modes {
		rows := []struct {
			name string
			run  Run
		}{{modeName(m) + ", TCP", m.Full}}
		if m.HTTP != nil {
			rows = append(rows, struct {
				name string
				run  Run
			}{fmt.Sprintf("%s, HTTP (%d-line bodies)", modeName(m), r.HTTPBatch), *m.HTTP})
		}
		for _, row := range rows {
			f := row.run
			adj := 0.0
			if m.AdjacentCeiling > 0 {
				adj = 100 * f.Load.MsgsPerSec / m.AdjacentCeiling
			}
			multi := 0.0
			if r.CeilingMulti > 0 {
				multi = 100 * f.Load.MsgsPerSec / r.CeilingMulti
			}
			p("| %s | %.0f | %.1f | **%.0f%%** | %.0f%% of %.0f | %.0f%% | %s | %s | %s | %s | %.1f | %.0f | %s | %.0f | %.0f | %.0f | %d |\n",
				row.name, f.Load.MsgsPerSec, f.Load.MBPerSec, 100*r.Ratio(f.Load.MsgsPerSec), adj, m.AdjacentCeiling, multi,
				ms(f.Load.LatencyP50), ms(f.Load.LatencyP90), ms(f.Load.LatencyP99), ms(f.Load.LatencyP999),
				f.IngestRSSMiB, f.IngestCPU, perMsg(f), f.RedisCPU, f.HAProxyCPU, f.LoadgenCPU, f.Load.Unacked)
		}
	}
	p("\n### 50%% of peak (rate-limited)\n\n")
	p("| mode | target msgs/s | acked msgs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | ingest RSS MiB (peak) | ingest CPU %% | redis master CPU %% | unacked |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, m := range r.Modes {
		h := m.Half
		p("| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %.1f | %.0f | %.0f | %d |\n",
			modeName(m), h.Load.Rate, h.Load.MsgsPerSec, ms(h.Load.LatencyP50), ms(h.Load.LatencyP90), ms(h.Load.LatencyP99),
			ms(h.Load.LatencyP999), ms(h.Load.LatencyMax), h.IngestRSSMiB, h.IngestCPU, h.RedisCPU, h.Load.Unacked)
	}
	if r.hasQuarter() {
		p("\n### 25%% of peak (rate-limited)\n\n")
		p("| mode | target msgs/s | acked msgs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | ingest CPU %% | machine CPU %% | unacked |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, m := range r.Modes {
			if q := m.Quarter; q != nil {
				p("| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %.0f | %.0f | %d |\n",
					modeName(m), q.Load.Rate, q.Load.MsgsPerSec, ms(q.Load.LatencyP50), ms(q.Load.LatencyP90), ms(q.Load.LatencyP99),
					ms(q.Load.LatencyP999), ms(q.Load.LatencyMax), q.IngestCPU, q.MachineCPU, q.Load.Unacked)
			}
		}
	}
	p("\nCPU is %% of one core over the run (the machine has 2 cores, shared by 3 Redis servers, 3 Sentinels, HAProxy, ingest and loadgen, and by other users: see the load average above).\n\n")

	if len(r.Scale) > 0 {
		p("## Scaling: ingest processes behind HAProxy (MIN_REPLICAS=%d)\n\n", r.ScaleMode)
		p("| ingests | acked msgs/s | MB/s | ratio vs ceiling | p50 ms | p99 ms | p99.9 ms | ingest CPU %% (sum) | largest ingest RSS MiB | unacked |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.Scale {
			l := s.Run.Load
			p("| %d | %.0f | %.1f | %.0f%% | %s | %s | %s | %.0f | %.1f | %d |\n", s.Ingests, l.MsgsPerSec, l.MBPerSec, 100*r.Ratio(l.MsgsPerSec),
				ms(l.LatencyP50), ms(l.LatencyP99), ms(l.LatencyP999), s.Run.IngestCPU, s.Run.IngestRSSMiB, l.Unacked)
		}
		p("\nOn 2 cores more ingest processes add scheduling work rather than capacity: the figures show the overhead, not a speed-up.\n\n")
	}

	p("## Targets\n\n")
	for _, m := range r.Modes {
		ratio := r.Ratio(m.Full.Load.MsgsPerSec)
		switch {
		case m.MinReplicas == 0:
			p("- MIN_REPLICAS=0 through HAProxy ≥ 50%% of the ceiling: %.0f%% — %s%s\n", 100*ratio, met(ratio >= 0.5), r.multiNote(m))
		case m.Shipped:
			p("- shipped default (MIN_REPLICAS=%d) ≥ 25%% of the ceiling: %.0f%% — %s%s\n", m.MinReplicas, 100*ratio, met(ratio >= 0.25), r.multiNote(m))
		}
	}
	for _, m := range r.Modes {
		p("- p99 ≤ 5 ms at 50%% of peak, %s: %s ms — %s\n", modeName(m), ms(m.Half.Load.LatencyP99), met(m.Half.Load.LatencyP99 <= 5000))
	}
	for _, m := range r.Modes {
		if q := m.Quarter; q != nil {
			p("- (for reference, not a target) p99 at 25%% of peak, %s: %s ms — %s\n", modeName(m), ms(q.Load.LatencyP99), within(q.Load.LatencyP99 <= 5000))
		}
	}
	rss := 0.0
	for _, m := range r.Modes {
		rss = max(rss, m.Full.IngestRSSMiB, m.Half.IngestRSSMiB)
	}
	p("- ingest RSS ≤ 64 MiB at peak: %.1f MiB — %s\n", rss, met(rss <= 64))
	if o := r.Overload; o != nil {
		limit := float64(o.MaxInflightBytes) / (1 << 20)
		p("- under overload (Redis master paused %s mid-run), ingest RSS %.1f MiB with INGEST_MAX_INFLIGHT_BYTES = %.0f MiB", o.Pause, o.PeakRSSMiB, limit)
		p(" (%.1f MiB above it; %d of %d messages acked after the resume, %d unacked)\n", o.PeakRSSMiB-limit, o.Load.Acked, o.Load.Messages, o.Load.Unacked)
	}
	p("\n")

	r.writeLatency(p)

	p("## Where the time goes\n\n")
	p("CPU during the full-load runs, %% of one core (the machine has %d00%%):\n\n", r.cores())
	p("| mode | ingest | redis master | redis replicas | haproxy | loadgen | sum of the stack | whole machine | other work |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, m := range r.Modes {
		f := m.Full
		sum := f.IngestCPU + f.RedisCPU + f.ReplicasCPU + f.HAProxyCPU + f.LoadgenCPU
		p("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", modeName(m), f.IngestCPU, f.RedisCPU, f.ReplicasCPU,
			f.HAProxyCPU, f.LoadgenCPU, sum, f.MachineCPU, max(f.MachineCPU-sum, 0))
	}
	p("\n\"Other work\" is CPU used by processes outside the stack (Sentinels, the bench itself, other users) while the run lasted.\n\n")
	if r.Profile != "" {
		p("CPU profile of %s (`go tool pprof -top`, first lines):\n\n```\n%s\n```\n\n", r.ProfileOf, strings.TrimSpace(r.Profile))
	}
	p("![throughput and p99 per mode](chart.png)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// multiNote gives the ratio against the multi-value RPUSH ceiling.
func (r Results) multiNote(m Mode) string {
	if r.CeilingMulti <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.0f%% of the multi-value RPUSH ceiling)", 100*m.Full.Load.MsgsPerSec/r.CeilingMulti)
}

// perMsg is the ingest CPU time per acked message, in µs.
func perMsg(r Run) string {
	if r.Load.Acked == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.IngestCPUSeconds*1e6/float64(r.Load.Acked))
}

func (r Results) cores() int {
	if r.Cores > 0 {
		return r.Cores
	}
	return 2
}

func within(ok bool) string {
	if ok {
		return "within 5 ms"
	}
	return "above 5 ms"
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
