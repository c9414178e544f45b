// Package loadresult is the result of one loadgen run, shared by loadgen,
// which prints it as JSON (-json), and the bench, which reads that JSON into
// its report.
package loadresult

// Result is one loadgen run: what loadgen -json prints and the bench report
// reads. Latencies are in microseconds.
type Result struct {
	Addr        string  `json:"addr"`
	Messages    int     `json:"messages"`
	Size        int     `json:"size"`
	Conns       int     `json:"conns"`
	Rate        float64 `json:"rate"`
	Acked       uint64  `json:"acked"`
	Unacked     uint64  `json:"unacked"`
	Resent      uint64  `json:"resent"`
	Reconnects  uint64  `json:"reconnects"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	LatencyP50  float64 `json:"latency_p50_us"`
	LatencyP90  float64 `json:"latency_p90_us"`
	LatencyP99  float64 `json:"latency_p99_us"`
	LatencyP999 float64 `json:"latency_p999_us"`
	LatencyMax  float64 `json:"latency_max_us"`
	LatencyMean float64 `json:"latency_mean_us"`
	// SchedP99 and SchedMax: how long loadgen's own goroutines waited in
	// the Go run queue during the run (p99 and the largest bucket bound),
	// to tell loadgen's scheduling apart from the latency it measures.
	SchedP99 float64 `json:"sched_latency_p99_us"`
	SchedMax float64 `json:"sched_latency_max_us"`
	// Errors are the connections' errors grouped by cause, one entry per
	// cause: "<error> (conns 0-3, 7)".
	Errors []string `json:"errors,omitempty"`
}
