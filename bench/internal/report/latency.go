package report

import "fmt"

func (r Results) hasQuarter() bool {
	for _, m := range r.Modes {
		if m.Quarter != nil {
			return true
		}
	}
	return false
}

// busyMachine is the whole-machine CPU (% of one core per core) above which
// the run queue, not the stack, sets the tail.
const busyMachine = 0.85

// writeLatency renders the latency breakdown at partial load: loadgen's
// end-to-end figures next to ingest's own histograms and the Redis
// master's stalls, and a verdict on what limits p99, derived from them.
func (r Results) writeLatency(p func(string, ...any)) {
	if len(r.Modes) == 0 {
		return
	}
	p("## Latency breakdown at partial load\n\n")
	p("End to end is loadgen's view (due time to ack). *In ingest* is `sluice_ingest_ack_latency_seconds` (from reading a message to handing its ack to the connection) and ")
	p("`sluice_ingest_redis_write_duration_seconds` (one flush: RPUSH + sequence key, plus WAIT), deltas over the run; their quantiles are interpolated in exponential buckets and ")
	p("count one observation per flush (write) and per run of one connection's messages in a flush (ack), not per message, so they are not exactly comparable with loadgen's per-message figures. Stack CPU is ingest + the 3 Redis servers + HAProxy + loadgen. Redis stalls: the master's `LATENCY LATEST` (events ≥ 2 ms) and `aof_delayed_fsync` over the run.\n\n")
	p("| mode | load | end-to-end p50 / p99 ms | in ingest: ack p50 / p99 ms | Redis flush p50 / p99 ms | flushes | msgs/flush p50 | longest Redis stall ms | delayed fsyncs | stack CPU %% | machine CPU %% | loadgen CPU %% | loadgen run-queue wait p99 / max ms | haproxy CPU %% |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(m Mode, load string, x Run) {
		sv := x.Server
		p("| %s | %s | %s / %s | %s / %s | %s / %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s / %s | %.0f |\n", modeName(m), load,
			ms(x.Load.LatencyP50), ms(x.Load.LatencyP99), ms(sv.AckP50), ms(sv.AckP99), ms(sv.WriteP50), ms(sv.WriteP99),
			sv.Flushes, sv.BatchP50, x.RedisStallMaxMS, x.AOFDelayedFsync, x.stackCPU(), x.MachineCPU, x.LoadgenCPU,
			ms(x.Load.SchedP99), ms(x.Load.SchedMax), x.HAProxyCPU)
	}
	for _, m := range r.Modes {
		row(m, "50%", m.Half)
		if m.Quarter != nil {
			row(m, "25%", *m.Quarter)
		}
	}
	p("\n")
	for _, line := range r.latencyVerdict() {
		p("- %s\n", line)
	}
	p("\n")
}

// latencyVerdict states what limits p99 at 50% of peak, from the figures
// of the shipped mode (or the first mode).
func (r Results) latencyVerdict() []string {
	m := r.Modes[0]
	for _, x := range r.Modes {
		if x.Shipped {
			m = x
		}
	}
	h := m.Half
	e2e, ack, write := h.Load.LatencyP99, h.Server.AckP99, h.Server.WriteP99
	var out []string
	if e2e <= 0 || ack <= 0 {
		return []string{"no server-side histograms for this run: no breakdown"}
	}
	name := modeName(m)
	if ack >= 0.6*e2e {
		out = append(out, fmt.Sprintf("At 50%% of peak (%s) the tail is inside ingest, not in loadgen or HAProxy: ingest's own ack p99 is %s ms, end to end %s ms.",
			name, ms(ack), ms(e2e)))
	} else {
		out = append(out, fmt.Sprintf("At 50%% of peak (%s) ingest's own ack p99 is %s ms of the %s ms end to end: most of the tail is outside ingest (loadgen's pacing and scheduling, HAProxy, the network stack).",
			name, ms(ack), ms(e2e)))
	}
	if h.Load.SchedMax > 0 {
		out = append(out, fmt.Sprintf("loadgen's own goroutines waited at most %s ms in its Go run queue (p99 %s ms): its pacing and ack handling are not the tail.",
			ms(h.Load.SchedMax), ms(h.Load.SchedP99)))
	}
	if write < 0.5*ack {
		out = append(out, fmt.Sprintf("The Redis flush itself is short (p99 %s ms per flush): the rest of ingest's %s ms is waiting, for the lane's previous flush and for a CPU to run the reader, lane and ack goroutines.",
			ms(write), ms(ack)))
	} else {
		out = append(out, fmt.Sprintf("The Redis flush (p99 %s ms per flush) is most of ingest's %s ms.", ms(write), ms(ack)))
	}
	if h.RedisStallMaxMS*1e3 < 0.5*e2e && h.AOFDelayedFsync == 0 {
		out = append(out, fmt.Sprintf("Redis is not stalling: the master's longest event-loop stall was %.0f ms and no everysec fsync was delayed, so AOF fsync does not make the tail.", h.RedisStallMaxMS))
	} else {
		out = append(out, fmt.Sprintf("The Redis master stalled up to %.0f ms (%.0f delayed everysec fsyncs): part of the tail is Redis.", h.RedisStallMaxMS, h.AOFDelayedFsync))
	}
	cores := float64(r.cores())
	if h.MachineCPU >= busyMachine*100*cores {
		out = append(out, fmt.Sprintf("The machine was %.0f%% busy (of %.0f%%) at half load: %.0f%% the stack itself (%.0f%% at full load), %.0f%% other processes (Sentinels, the bench, other users). %d cores run 3 Redis servers, 3 Sentinels, HAProxy, ingest and loadgen. At a lower rate each flush and each TCP read carries fewer messages (median %.0f per flush here, %.0f at full load), so the CPU per message rises and the machine stays near saturation; every hop (loadgen, HAProxy twice, ingest, Redis, the replicas for WAIT) then waits in the kernel's run queue, and the p99 is that wait, not the work.",
			h.MachineCPU, 100*cores, h.stackCPU(), m.Full.stackCPU(), max(h.MachineCPU-h.stackCPU(), 0), r.cores(), h.Server.BatchP50, m.Full.Server.BatchP50))
	}
	if q := m.Quarter; q != nil {
		if q.Load.LatencyP99 <= 5000 {
			out = append(out, fmt.Sprintf("At 25%% of peak the same mode has p99 %s ms: ≤ 5 ms is met once the machine has headroom.", ms(q.Load.LatencyP99)))
		} else {
			out = append(out, fmt.Sprintf("Even at 25%% of peak p99 is %s ms (machine %.0f%% busy): on this shared 2-core machine the tail is set by CPU contention at every load point measured.",
				ms(q.Load.LatencyP99), q.MachineCPU))
		}
	}
	return out
}

// stackCPU is the CPU of the measured stack, % of one core.
func (x Run) stackCPU() float64 {
	return x.IngestCPU + x.RedisCPU + x.ReplicasCPU + x.HAProxyCPU + x.LoadgenCPU
}
