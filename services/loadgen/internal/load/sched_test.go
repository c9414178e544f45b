package load

import (
	"math"
	"runtime/metrics"
	"testing"
	"time"
)

func TestSchedQuantile(t *testing.T) {
	buckets := []float64{0, 1e-6, 1e-3, 1e-2, math.Inf(1)}
	before := &metrics.Float64Histogram{Counts: []uint64{5, 5, 5, 5}, Buckets: buckets}
	// 100 new waits: 90 under 1 µs, 9 under 1 ms, 1 under 10 ms.
	after := &metrics.Float64Histogram{Counts: []uint64{95, 14, 6, 5}, Buckets: buckets}
	tests := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"p50", 0.5, time.Microsecond},
		{"p95", 0.95, time.Millisecond},
		{"p99", 0.99, time.Millisecond},
		{"p99.5", 0.995, 10 * time.Millisecond},
		{"max", 1, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := schedQuantile(before, after, tc.q); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := schedQuantile(nil, after, 0.5); got != 0 {
		t.Fatalf("without a first reading: %v", got)
	}
	if readSched() == nil {
		t.Fatalf("runtime has no %s", schedLatency)
	}
}
