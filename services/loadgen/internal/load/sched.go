package load

import (
	"math"
	"runtime/metrics"
	"time"
)

// schedLatency is the Go runtime's histogram of how long goroutines waited
// in the run queue before running (/sched/latencies:seconds).
const schedLatency = "/sched/latencies:seconds"

// readSched returns the current scheduler-latency histogram.
func readSched() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatency}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedQuantile is quantile q of the goroutine run-queue waits between two
// readings of the histogram (the upper bound of the bucket holding it).
func schedQuantile(before, after *metrics.Float64Histogram, q float64) time.Duration {
	if before == nil || after == nil || len(before.Counts) != len(after.Counts) {
		return 0
	}
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(total))), 1)
	var seen uint64
	for i := range after.Counts {
		seen += after.Counts[i] - before.Counts[i]
		if seen >= rank {
			upper := after.Buckets[i+1]
			if upper > 3600 { // +Inf
				upper = after.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}
