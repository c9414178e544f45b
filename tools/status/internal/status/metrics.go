package status

import (
	"bufio"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text exposition format (what /metrics
// serves). Comments and blank lines are skipped; a malformed sample line is
// an error naming its line number.
func ParseMetrics(text string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ \t"); i < 0 {
		return s, fmt.Errorf("no value in %q", line)
	} else {
		s.Name, rest = line[:i], line[i:]
	}
	if strings.HasPrefix(rest, "{") {
		end, err := parseLabels(rest, s.Labels)
		if err != nil {
			return s, fmt.Errorf("%q: %w", line, err)
		}
		rest = rest[end:]
	}
	fields := strings.Fields(rest) // value [timestamp]
	if len(fields) == 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value in %q: %w", line, err)
	}
	s.Value = v
	return s, nil
}

// parseLabels parses `{k="v",...}` at the start of s into m and returns the
// index after the closing brace.
func parseLabels(s string, m map[string]string) (int, error) {
	i := 1
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return 0, fmt.Errorf("unterminated labels")
		}
		if s[i] == '}' {
			return i + 1, nil
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return 0, fmt.Errorf("bad label at %d", i)
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 2
		var b strings.Builder
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return 0, fmt.Errorf("unterminated label value of %s", key)
		}
		m[key] = b.String()
		i++ // closing quote
	}
}

// Sum adds up every sample of one metric name, over all label values.
// ok is false when no sample has that name.
func Sum(samples []Sample, name string) (total float64, ok bool) {
	for _, s := range samples {
		if s.Name == name {
			total += s.Value
			ok = true
		}
	}
	return total, ok
}

// Buckets sums the cumulative bucket counts of a histogram (name without
// _bucket) by upper bound, over every other label.
func Buckets(samples []Sample, histogram string) map[float64]float64 {
	out := map[float64]float64{}
	for _, s := range samples {
		if s.Name != histogram+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64) // "+Inf" parses as +Inf
		if err != nil {
			continue
		}
		out[le] += s.Value
	}
	return out
}

// Delta subtracts an earlier scrape's buckets from a later one's. A bucket
// that went down (the process restarted between the scrapes) counts from zero.
func Delta(before, after map[float64]float64) map[float64]float64 {
	out := make(map[float64]float64, len(after))
	for le, v := range after {
		d := v - before[le]
		if d < 0 {
			d = v
		}
		out[le] = d
	}
	return out
}

// CounterDelta is after-before, or after when the counter was reset.
func CounterDelta(before, after float64) float64 {
	if after < before {
		return after
	}
	return after - before
}

// Quantile estimates the q-quantile (0..1) of cumulative histogram buckets
// the way Prometheus's histogram_quantile does: linear interpolation inside
// the bucket that holds the rank; a rank in the +Inf bucket yields the
// highest finite bound. ok is false without observations or buckets.
func Quantile(q float64, buckets map[float64]float64) (v float64, ok bool) {
	bounds := make([]float64, 0, len(buckets))
	for le := range buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	if len(bounds) < 2 || !math.IsInf(bounds[len(bounds)-1], 1) {
		return 0, false
	}
	total := buckets[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for i, le := range bounds {
		count := buckets[le]
		if count >= rank {
			if math.IsInf(le, 1) {
				return bounds[i-1], true
			}
			if i == 0 && le <= 0 {
				return le, true
			}
			if count == prevCount {
				return le, true
			}
			return prevBound + (le-prevBound)*(rank-prevCount)/(count-prevCount), true
		}
		prevBound, prevCount = le, count
	}
	return bounds[len(bounds)-2], true
}
