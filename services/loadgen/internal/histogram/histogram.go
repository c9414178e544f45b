// Package histogram is a small log-linear histogram of durations: 64 linear
// sub-buckets per power of two, so a percentile is within about 1.6% of the
// recorded value. Recording allocates nothing. A Histogram is not safe for
// concurrent use: keep one per goroutine and Merge them.
package histogram

import (
	"math/bits"
	"time"
)

const (
	subBits = 6
	sub     = 1 << subBits // linear sub-buckets per power of two
	// buckets covers values up to 2^63 ns.
	buckets = (64 - subBits) * sub
)

// Histogram counts durations in nanoseconds.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	sum    uint64
	min    uint64
	max    uint64
}

// New returns an empty histogram.
func New() *Histogram { return &Histogram{} }

func index(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // >= 1
	return e*sub + int(v>>uint(e))
}

// lowerBound is the smallest value of bucket i; the bucket ends before
// lowerBound(i+1).
func lowerBound(i int) uint64 {
	if i < 2*sub {
		return uint64(i)
	}
	e := i/sub - 1
	m := i - e*sub
	return uint64(m) << uint(e)
}

// Record adds one duration (negative counts as 0).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[index(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every count of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest recorded value (exact).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the exact mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value at quantile q (0..1): the middle of the bucket
// holding the ceil(q*n)-th smallest value, clamped to [Min, Max].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			v := lo + (hi-lo)/2
			v = min(max(v, h.min), h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
