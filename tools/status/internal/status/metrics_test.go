package status

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func metricsFixture(t *testing.T, name string) []Sample {
	t.Helper()
	s, err := ParseMetrics(readFixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []Sample
		wantErr bool
	}{
		{"plain", "# HELP x y\n# TYPE x counter\nx 3\n", []Sample{{Name: "x", Labels: map[string]string{}, Value: 3}}, false},
		{"labels and timestamp", `a{b="c",le="+Inf"} 1.5e+06 1700000000` + "\n",
			[]Sample{{Name: "a", Labels: map[string]string{"b": "c", "le": "+Inf"}, Value: 1.5e6}}, false},
		{"escaped label value", `a{path="x\"y,z}",n="1"} 2`,
			[]Sample{{Name: "a", Labels: map[string]string{"path": `x"y,z}`, "n": "1"}, Value: 2}}, false},
		{"no value", "a{b=\"c\"}\n", nil, true},
		{"bad value", "a x\n", nil, true},
		{"unterminated labels", `a{b="c" 1`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMetrics(tc.text)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d samples %+v, want %+v", len(got), got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Name != w.Name || g.Value != w.Value || len(g.Labels) != len(w.Labels) {
					t.Errorf("sample %d = %+v, want %+v", i, g, w)
				}
				for k, v := range w.Labels {
					if g.Labels[k] != v {
						t.Errorf("sample %d label %s = %q, want %q", i, k, g.Labels[k], v)
					}
				}
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name    string
		q       float64
		buckets map[float64]float64
		want    float64
		ok      bool
	}{
		{"no observations", 0.99, map[float64]float64{0.1: 0, inf: 0}, 0, false},
		{"no buckets", 0.99, map[float64]float64{}, 0, false},
		{"no +Inf bucket", 0.99, map[float64]float64{0.1: 3, 0.2: 4}, 0, false},
		// 100 observations, all in (0.1, 0.2]: rank 99 is 99% into that bucket.
		{"interpolates inside a bucket", 0.99, map[float64]float64{0.1: 0, 0.2: 100, inf: 100}, 0.199, true},
		// The first bucket starts at 0.
		{"first bucket from zero", 0.5, map[float64]float64{0.1: 10, 0.2: 10, inf: 10}, 0.05, true},
		// Rank beyond the highest finite bound: that bound (as Prometheus does).
		{"rank in +Inf bucket", 0.99, map[float64]float64{0.1: 50, 0.2: 90, inf: 100}, 0.2, true},
		{"median", 0.5, map[float64]float64{0.001: 0, 0.002: 40, 0.004: 80, inf: 80}, 0.002, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Quantile(tc.q, tc.buckets)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Quantile(%v) = %v, %v; want %v, %v", tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Two ingests (a, b) scraped twice, one second apart, during a loadgen run
// against the compose stack (testdata/ingest_{a,b}{1,2}.txt).
func TestRateFromScrapes(t *testing.T) {
	a1, a2 := metricsFixture(t, "ingest_a1.txt"), metricsFixture(t, "ingest_a2.txt")
	b1, b2 := metricsFixture(t, "ingest_b1.txt"), metricsFixture(t, "ingest_b2.txt")
	sec := time.Second
	tests := []struct {
		name          string
		first, second [][]Sample
		took          []time.Duration
		errs          []error
		wantInst      int
		wantAcked     float64
		wantP99       float64
		wantP99OK     bool
		wantErr       bool
	}{
		{
			// acked: (2775000-2315285) + (1825000-1535961) = 748754 over 1 s.
			// Bucket deltas summed over transports and both ingests: 841
			// acks, 826 at or below 0.2048 s, all 841 at or below 0.4096 s:
			// p99 = 0.2048 + 0.2048*(0.99*841-826)/(841-826).
			name: "two ingests", first: [][]Sample{a1, b1}, second: [][]Sample{a2, b2},
			took: []time.Duration{sec, sec}, errs: []error{nil, nil},
			wantInst: 2, wantAcked: 748754, wantP99: 0.2048 + 0.2048*(0.99*841-826)/15, wantP99OK: true,
		},
		{
			// 459715 acks over a 2 s window.
			name: "one ingest, longer window", first: [][]Sample{a1}, second: [][]Sample{a2},
			took: []time.Duration{2 * sec}, errs: []error{nil},
			wantInst: 1, wantAcked: 459715.0 / 2, wantP99OK: true, wantP99: -1,
		},
		{
			name: "idle: no acks between the scrapes", first: [][]Sample{a2}, second: [][]Sample{a2},
			took: []time.Duration{sec}, errs: []error{nil},
			wantInst: 1, wantAcked: 0, wantP99OK: false,
		},
		{
			// The process restarted between the scrapes: its counters restart from 0.
			name: "counter reset", first: [][]Sample{a2}, second: [][]Sample{a1},
			took: []time.Duration{sec}, errs: []error{nil},
			wantInst: 1, wantAcked: 2315285, wantP99OK: true, wantP99: -1,
		},
		{
			name: "one scrape failed", first: [][]Sample{a1, nil}, second: [][]Sample{a2, nil},
			took: []time.Duration{sec, 0}, errs: []error{nil, errors.New("connection refused")},
			wantInst: 1, wantAcked: 459715, wantP99OK: true, wantP99: -1, wantErr: true,
		},
		{
			name: "all failed", first: [][]Sample{nil}, second: [][]Sample{nil},
			took: []time.Duration{0}, errs: []error{errors.New("connection refused")},
			wantInst: 0, wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := RateFrom(tc.first, tc.second, tc.took, tc.errs)
			if r.Instances != tc.wantInst {
				t.Errorf("Instances = %d, want %d", r.Instances, tc.wantInst)
			}
			if math.Abs(r.Acked-tc.wantAcked) > 1e-6 {
				t.Errorf("Acked = %v/s, want %v/s", r.Acked, tc.wantAcked)
			}
			if r.HaveP99 != tc.wantP99OK {
				t.Errorf("HaveP99 = %v, want %v", r.HaveP99, tc.wantP99OK)
			}
			if tc.wantP99 >= 0 && tc.wantP99OK && math.Abs(r.P99-tc.wantP99) > 1e-9 {
				t.Errorf("P99 = %v, want %v", r.P99, tc.wantP99)
			}
			if (r.Err != nil) != tc.wantErr {
				t.Errorf("Err = %v, wantErr %v", r.Err, tc.wantErr)
			}
		})
	}
}

func TestBackupFrom(t *testing.T) {
	v := BackupFrom(metricsFixture(t, "backup.txt"))
	if v.Err != nil {
		t.Fatal(v.Err)
	}
	// sluice_backup_last_success_timestamp_seconds 1.7961964986774013e+09
	if got, want := v.LastSuccess.Unix(), int64(1796196498); got != want {
		t.Errorf("LastSuccess = %v (%d), want unix %d", v.LastSuccess, got, want)
	}
	if v.SizeBytes != 173 || v.Snapshots != 1 || v.Failures != 0 {
		t.Errorf("size %v snapshots %v failures %v, want 173, 1, 0", v.SizeBytes, v.Snapshots, v.Failures)
	}
	if v := BackupFrom(metricsFixture(t, "ingest_a1.txt")); v.Err == nil {
		t.Error("ingest metrics read as backup metrics without an error")
	}
	if v := BackupFrom([]Sample{{Name: BackupLastOK, Value: 0}}); v.Err != nil || !v.LastSuccess.IsZero() {
		t.Errorf("timestamp 0 = %+v, want no snapshot yet and no error", v)
	}
}
