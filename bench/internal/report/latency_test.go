package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/loadresult"
)

func TestLatencyBreakdown(t *testing.T) {
	half := func(e2e, ack, write, stall, machine float64) Run {
		return Run{Load: loadresult.Result{LatencyP99: e2e}, Server: Server{AckP99: ack, WriteP99: write}, RedisStallMaxMS: stall, MachineCPU: machine}
	}
	tests := []struct {
		name    string
		half    Run
		quarter *Run
		want    []string
	}{
		{"tail in ingest, cpu bound, met at 25%", half(13_000, 12_000, 5_000, 3, 190), &Run{Load: loadresult.Result{LatencyP99: 4_000}},
			[]string{"the tail is inside ingest", "waiting, for the lane's previous flush", "Redis is not stalling", "190% busy", "p99 4.00 ms: ≤ 5 ms is met", "p99 at 25% of peak, MIN_REPLICAS=2 (shipped default): 4.00 ms — within 5 ms"}},
		{"tail outside ingest, redis stalls", half(20_000, 5_000, 4_000, 15, 100), nil,
			[]string{"most of the tail is outside ingest", "The Redis flush (p99 4.00 ms per flush) is most", "stalled up to 15 ms"}},
		{"missed at 25% too", half(13_000, 12_000, 5_000, 3, 190), &Run{Load: loadresult.Result{LatencyP99: 9_000}, MachineCPU: 180},
			[]string{"Even at 25% of peak p99 is 9.00 ms", "— above 5 ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sample()
			r.Modes[1].Half = tc.half
			r.Modes[1].Quarter = tc.quarter
			var b bytes.Buffer
			if err := WriteMarkdown(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("results.md lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
