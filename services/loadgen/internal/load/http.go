package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/client"
	"github.com/sluice-ingest/sluice/services/loadgen/internal/histogram"
)

// runHTTP sends n messages of one worker as POST /v1/messages bodies of
// Batch lines, one request in flight, over a kept-alive connection. A
// message's latency runs from its due time to the 200 that covers it. A
// 429 or 503 resends the whole body after its Retry-After (at least once).
func runHTTP(ctx context.Context, o Options, conn, n int, rate float64, start time.Time,
	h *histogram.Histogram, ackedTotal *atomic.Uint64, lastAck *atomic.Int64,
) (client.Status, error) {
	var st client.Status
	if n == 0 {
		return st, nil
	}
	url := "http://" + o.Addr + "/v1/messages"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	var interval float64
	if rate > 0 {
		interval = float64(time.Second) / rate
	}
	due := make([]time.Duration, 0, o.Batch)
	var body bytes.Buffer
	buf := make([]byte, 0, o.Size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	sleep := func(d time.Duration) error {
		timer.Reset(d)
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	for seq := 1; seq <= n; {
		k := min(o.Batch, n-seq+1)
		body.Reset()
		due = due[:0]
		for i := range k {
			d := time.Since(start)
			if interval > 0 {
				d = max(d, time.Duration(float64(seq+i-1)*interval))
			}
			due = append(due, d)
			buf = Payload(buf[:0], o.RunID, conn, seq+i, o.Size)
			body.Write(buf)
			body.WriteByte('\n')
		}
		// A body goes out when its last line is due.
		if wait := due[k-1] - time.Since(start); wait > time.Millisecond {
			if err := sleep(wait); err != nil {
				return st, err
			}
		}
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				st.Resent += uint64(k)
			}
			retry, err := post(ctx, hc, url, body.Bytes())
			if err != nil {
				return st, err
			}
			if retry < 0 {
				break
			}
			if err := sleep(retry); err != nil {
				return st, err
			}
		}
		now := time.Since(start)
		for _, d := range due {
			h.Record(now - d)
		}
		st.Acked += uint64(k)
		ackedTotal.Add(uint64(k))
		for {
			old := lastAck.Load()
			if int64(now) <= old || lastAck.CompareAndSwap(old, int64(now)) {
				break
			}
		}
		seq += k
	}
	st.Connects = 1
	return st, nil
}

// post sends one body. It returns a negative retry after a 200, the wait
// before resending after a 429 or 503, and an error for anything else.
func post(ctx context.Context, hc *http.Client, url string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return -1, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		wait := 100 * time.Millisecond
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return wait, nil
	}
	return 0, fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(answer))
}
