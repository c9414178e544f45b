package runner

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestScrapeAndQuantile(t *testing.T) {
	page := func(c1, c2, c4, inf float64) string {
		b := "# TYPE sluice_ingest_ack_latency_seconds histogram\n"
		for _, x := range []struct {
			le string
			v  float64
		}{{"0.001", c1}, {"0.002", c2}, {"0.004", c4}, {"+Inf", inf}} {
			b += "sluice_ingest_ack_latency_seconds_bucket{le=\"" + x.le + "\"} " + ftoa(x.v) + "\n"
		}
		return b + "sluice_ingest_ack_latency_seconds_sum 1\nsluice_ingest_ack_latency_seconds_count " + ftoa(inf) + "\nother_bucket{le=\"1\"} 5\n"
	}
	srv := func(body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) }))
		t.Cleanup(s.Close)
		return s.URL
	}
	before, after := scrape{}, scrape{}
	if err := before.add(context.Background(), srv(page(10, 10, 10, 10))); err != nil {
		t.Fatal(err)
	}
	// 100 new observations: 50 ≤ 1 ms, 40 in (1, 2] ms, 9 in (2, 4] ms, 1 above.
	if err := after.add(context.Background(), srv(page(60, 100, 109, 110))); err != nil {
		t.Fatal(err)
	}
	d := delta(before, after, ackLatencyMetric)
	if got := d.count(); got != 100 {
		t.Fatalf("count %v, want 100", got)
	}
	tests := []struct {
		q, want float64
	}{
		{0.25, 0.0005},
		{0.5, 0.001},
		{0.7, 0.0015},
		{0.99, 0.004},
		{0.999, 0.004}, // in +Inf: the largest finite bound
	}
	for _, tc := range tests {
		t.Run(ftoa(tc.q), func(t *testing.T) {
			if got := d.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	if _, ok := after["other"]; ok {
		t.Fatal("scraped a histogram the breakdown does not use")
	}
	if got := (hist{}).quantile(0.5); got != 0 {
		t.Fatalf("empty histogram quantile %v", got)
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
