package runner

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/bench/internal/report"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// Server-side histograms of ingest that split the ack latency.
const (
	ackLatencyMetric = "sluice_ingest_ack_latency_seconds"
	writeMetric      = "sluice_ingest_redis_write_duration_seconds"
	batchMetric      = "sluice_ingest_batch_messages"
)

// hist is a cumulative Prometheus histogram: upper bound -> count.
type hist map[float64]float64

// scrape is the histograms of every ingest at one moment, summed.
type scrape map[string]hist

// scrapeIngests reads /metrics of each ingest and sums the histograms the
// breakdown needs.
func scrapeIngests(ctx context.Context, ingests []*ingest) (scrape, error) {
	s := scrape{}
	for _, in := range ingests {
		if err := s.add(ctx, "http://"+in.Admin+"/metrics"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s scrape) add(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "_bucket{")
		if !ok {
			continue
		}
		switch name {
		case ackLatencyMetric, writeMetric, batchMetric:
		default:
			continue
		}
		i := strings.Index(rest, `le="`)
		if i < 0 {
			continue
		}
		leStr, tail, _ := strings.Cut(rest[i+4:], `"`)
		_, valStr, _ := strings.Cut(tail, "} ")
		le, err1 := strconv.ParseFloat(leStr, 64) // "+Inf" parses as +Inf
		v, err2 := strconv.ParseFloat(strings.TrimSpace(valStr), 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("scrape %s: bad bucket line %q", url, line)
		}
		if s[name] == nil {
			s[name] = hist{}
		}
		s[name][le] += v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	return nil
}

// delta is after minus before for one histogram.
func delta(before, after scrape, name string) hist {
	d := hist{}
	for le, v := range after[name] {
		d[le] = v - before[name][le]
	}
	return d
}

// quantile interpolates linearly inside the bucket that holds q, as
// Prometheus' histogram_quantile does; a quantile in the +Inf bucket is the
// largest finite bound.
func (h hist) quantile(q float64) float64 {
	les := make([]float64, 0, len(h))
	for le := range h {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 || h[les[len(les)-1]] <= 0 {
		return 0
	}
	total := h[les[len(les)-1]]
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range les {
		c := h[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			if c == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(c-below)
		}
		if !math.IsInf(le, 1) {
			lower = le
		}
		below = c
	}
	return lower
}

// count is the number of observations.
func (h hist) count() float64 { return h[math.Inf(1)] }

// breakdown turns two scrapes into the server-side part of a run.
func breakdown(before, after scrape) report.Server {
	ack, write, batch := delta(before, after, ackLatencyMetric), delta(before, after, writeMetric), delta(before, after, batchMetric)
	return report.Server{
		AckP50: 1e6 * ack.quantile(0.5), AckP99: 1e6 * ack.quantile(0.99),
		WriteP50: 1e6 * write.quantile(0.5), WriteP99: 1e6 * write.quantile(0.99),
		Flushes: write.count(), BatchP50: batch.quantile(0.5),
	}
}

// resetRedisLatency clears the latency monitor of the Redis master.
func resetRedisLatency(ctx context.Context, top *redistest.Topology) error {
	m, err := top.MasterRedis(ctx)
	if err != nil {
		return err
	}
	c := m.Client()
	defer c.Close()
	if err := c.Do(ctx, "LATENCY", "RESET").Err(); err != nil {
		return fmt.Errorf("latency reset on %s: %w", m.Addr, err)
	}
	return nil
}

// redisStalls reads LATENCY LATEST of the Redis master: the longest
// event-loop stall per event since the last reset, in ms, as "event max".
func redisStalls(ctx context.Context, top *redistest.Topology) (string, float64, error) {
	m, err := top.MasterRedis(ctx)
	if err != nil {
		return "", 0, err
	}
	c := m.Client()
	defer c.Close()
	v, err := c.Do(ctx, "LATENCY", "LATEST").Slice()
	if err != nil {
		return "", 0, fmt.Errorf("latency latest on %s: %w", m.Addr, err)
	}
	var parts []string
	worst := 0.0
	for _, e := range v {
		row, ok := e.([]any)
		if !ok || len(row) < 4 {
			continue
		}
		name, _ := row[0].(string)
		mx, _ := row[3].(int64)
		parts = append(parts, fmt.Sprintf("%s %d ms", name, mx))
		worst = max(worst, float64(mx))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", "), worst, nil
}

// aofDelayedFsync reads aof_delayed_fsync of the Redis master: how often
// the everysec fsync was still running when the next one was due, which
// makes Redis delay writes of its event loop.
func aofDelayedFsync(ctx context.Context, top *redistest.Topology) (float64, error) {
	m, err := top.MasterRedis(ctx)
	if err != nil {
		return 0, err
	}
	c := m.Client()
	defer c.Close()
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return 0, fmt.Errorf("info persistence on %s: %w", m.Addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "aof_delayed_fsync:"); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}
