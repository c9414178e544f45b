package histogram

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1 << 62} {
		i := index(v)
		if lo, hi := lowerBound(i), lowerBound(i+1); v < lo || v >= hi {
			t.Fatalf("v=%d in bucket %d = [%d,%d)", v, i, lo, hi)
		}
	}
	for i := 0; i < buckets-1; i++ {
		if index(lowerBound(i)) != i {
			t.Fatalf("bucket %d: lower bound %d maps to %d", i, lowerBound(i), index(lowerBound(i)))
		}
	}
}

func TestQuantileAccuracy(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{name: "uniform 0-10ms", gen: func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{name: "exponential 1ms", gen: func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(time.Millisecond)) }},
		{name: "tiny values", gen: func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(200)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			a, b := New(), New()
			var all []time.Duration
			for i := range 100_000 {
				d := tc.gen(r)
				all = append(all, d)
				if i%2 == 0 {
					a.Record(d)
				} else {
					b.Record(d)
				}
			}
			a.Merge(b)
			slices.Sort(all)
			if a.Count() != uint64(len(all)) || a.Min() != all[0] || a.Max() != all[len(all)-1] {
				t.Fatalf("count/min/max = %d/%v/%v, want %d/%v/%v", a.Count(), a.Min(), a.Max(), len(all), all[0], all[len(all)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				exact := all[int(q*float64(len(all)))-1]
				got := a.Quantile(q)
				tol := float64(exact)*0.02 + 1
				if diff := float64(got - exact); diff > tol || diff < -tol {
					t.Errorf("q%v = %v, exact %v (tolerance %.0fns)", q, got, exact, tol)
				}
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	h := New()
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatalf("empty histogram reports values")
	}
}

func BenchmarkRecord(b *testing.B) {
	h := New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i * 997))
	}
}
