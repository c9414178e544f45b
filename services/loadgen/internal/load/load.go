// Package load generates ingest load over several client connections and
// measures throughput and ack latency.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-ingest/sluice/internal/loadresult"
	"github.com/sluice-ingest/sluice/services/ingest/client"
	"github.com/sluice-ingest/sluice/services/loadgen/internal/histogram"
)

// Options of one load run.
type Options struct {
	Addr     string
	Messages int           // total messages, split over Conns
	Size     int           // bytes per message (without the newline)
	Conns    int           // parallel connections
	Rate     float64       // total messages per second; 0 = as fast as acks allow
	Window   int           // unacked messages per connection (client MaxUnacked)
	Timeout  time.Duration // bound of the whole run, drain included
	Progress io.Writer     // progress bar destination; nil = none
	RunID    string        // payload prefix that tells runs apart
	// HTTP: POST to http://Addr/v1/messages instead of the TCP protocol,
	// Batch lines per request, one request in flight per connection.
	HTTP  bool
	Batch int
}

// Validate reports every bad option.
func (o Options) Validate() error {
	var errs []error
	if o.Addr == "" {
		errs = append(errs, errors.New("-addr is empty"))
	}
	if o.Messages < 1 {
		errs = append(errs, fmt.Errorf("-n %d: need at least 1 message", o.Messages))
	}
	if o.Conns < 1 {
		errs = append(errs, fmt.Errorf("-c %d: need at least 1 connection", o.Conns))
	}
	if min := MinSize(o.RunID, o.Conns, o.Messages); o.Size < min {
		errs = append(errs, fmt.Errorf("-size %d: need at least %d bytes for the unique prefix", o.Size, min))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("-rate %v: must be >= 0", o.Rate))
	}
	if o.Window < 1 {
		errs = append(errs, fmt.Errorf("-window %d: need at least 1", o.Window))
	}
	if o.HTTP && o.Batch < 1 {
		errs = append(errs, fmt.Errorf("-batch %d: need at least 1 line per request", o.Batch))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: must be > 0", o.Timeout))
	}
	return errors.Join(errs...)
}

// Run sends the messages and waits for their acks. It returns the result
// even when some messages stay unacked (loadresult.Result.Unacked > 0).
func Run(ctx context.Context, o Options) (loadresult.Result, error) {
	if err := o.Validate(); err != nil {
		return loadresult.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var ackedTotal atomic.Uint64
	hists := make([]*histogram.Histogram, o.Conns)
	statuses := make([]client.Status, o.Conns)
	errs := make([]error, o.Conns)
	var lastAck atomic.Int64 // ns since start of the last ack
	schedBefore := readSched()
	start := time.Now()

	var bar *progressbar.ProgressBar
	var barDone chan struct{}
	var barWG sync.WaitGroup
	if o.Progress != nil {
		bar = progressbar.NewOptions64(int64(o.Messages),
			progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("acked"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
		barDone = make(chan struct{})
		barWG.Add(1)
		go func() {
			defer barWG.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					bar.Set64(int64(ackedTotal.Load()))
				case <-barDone:
					bar.Set64(int64(ackedTotal.Load()))
					return
				}
			}
		}()
	}

	var g errgroup.Group
	for conn := range o.Conns {
		n := o.Messages / o.Conns
		if conn < o.Messages%o.Conns {
			n++
		}
		rate := o.Rate / float64(o.Conns)
		g.Go(func() error {
			h := histogram.New()
			hists[conn] = h
			runOne := runConn
			if o.HTTP {
				runOne = runHTTP
			}
			st, err := runOne(ctx, o, conn, n, rate, start, h, &ackedTotal, &lastAck)
			statuses[conn], errs[conn] = st, err
			return nil
		})
	}
	g.Wait()
	schedAfter := readSched()
	if bar != nil {
		close(barDone)
		barWG.Wait()
		bar.Finish() // renders the final state (acked of total) and leaves it on screen
		fmt.Fprintln(o.Progress)
	}

	all := histogram.New()
	for _, h := range hists {
		if h != nil {
			all.Merge(h)
		}
	}
	r := loadresult.Result{Addr: o.Addr, Messages: o.Messages, Size: o.Size, Conns: o.Conns, Rate: o.Rate}
	for _, st := range statuses {
		r.Acked += st.Acked
		r.Resent += st.Resent
		if st.Connects > 0 {
			r.Reconnects += st.Connects - 1
		}
	}
	r.Errors = GroupErrors(errs)
	r.Unacked = uint64(o.Messages) - r.Acked
	r.Seconds = time.Duration(lastAck.Load()).Seconds()
	if r.Seconds > 0 {
		r.MsgsPerSec = float64(r.Acked) / r.Seconds
		r.MBPerSec = float64(r.Acked) * float64(o.Size) / r.Seconds / 1e6
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	r.LatencyP50 = us(all.Quantile(0.50))
	r.LatencyP90 = us(all.Quantile(0.90))
	r.LatencyP99 = us(all.Quantile(0.99))
	r.LatencyP999 = us(all.Quantile(0.999))
	r.LatencyMax = us(all.Max())
	r.LatencyMean = us(all.Mean())
	r.SchedP99 = us(schedQuantile(schedBefore, schedAfter, 0.99))
	r.SchedMax = us(schedQuantile(schedBefore, schedAfter, 1))
	return r, nil
}

// runConn sends n messages over one client. Latency is measured from the
// moment a message is due (its slot in the rate schedule, or the moment the
// sender gets to it when unlimited, waiting for window space included) to
// the ack that covers it.
func runConn(ctx context.Context, o Options, conn, n int, rate float64, start time.Time,
	h *histogram.Histogram, ackedTotal *atomic.Uint64, lastAck *atomic.Int64,
) (client.Status, error) {
	if n == 0 {
		return client.Status{}, nil
	}
	// due[seq % len] holds the due time (ns since start) of message seq.
	// The sender reuses a slot only once onAck has processed the message
	// that used it before (processed); Window bounds the unacked messages,
	// so with 2*Window slots it practically never waits.
	due := make([]atomic.Int64, 2*o.Window+1)
	var processed atomic.Uint64
	var prev uint64
	onAck := func(acked uint64) {
		now := int64(time.Since(start))
		for s := prev + 1; s <= acked; s++ {
			h.Record(time.Duration(now - due[s%uint64(len(due))].Load()))
		}
		ackedTotal.Add(acked - prev)
		prev = acked
		processed.Store(acked)
		for {
			old := lastAck.Load()
			if now <= old || lastAck.CompareAndSwap(old, now) {
				break
			}
		}
	}
	c, err := client.Dial(ctx, client.Config{
		Addr:       o.Addr,
		MaxUnacked: o.Window,
		MaxFrame:   max(o.Size, 1<<20),
		OnAck:      onAck,
	})
	if err != nil {
		return client.Status{}, err
	}
	buf := make([]byte, 0, o.Size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var interval float64
	if rate > 0 {
		interval = float64(time.Second) / rate
	}
	for seq := 1; seq <= n; seq++ {
		now := time.Since(start)
		d := now
		if interval > 0 {
			// Sleep only when more than a timer tick ahead: per-message
			// sleeps of a few µs oversleep and would make the sender lag
			// its own schedule. A message sent early counts from when it
			// was sent.
			sched := time.Duration(float64(seq-1) * interval)
			if wait := sched - now; wait > time.Millisecond {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return c.Close(), ctx.Err()
				}
				now = time.Since(start)
			}
			d = max(sched, now)
		}
		for processed.Load()+uint64(len(due)) <= uint64(seq) {
			if ctx.Err() != nil {
				return c.Close(), ctx.Err()
			}
			time.Sleep(10 * time.Microsecond)
		}
		due[uint64(seq)%uint64(len(due))].Store(int64(d))
		buf = Payload(buf[:0], o.RunID, conn, seq, o.Size)
		if _, err := c.Send(ctx, buf); err != nil {
			return c.Close(), err
		}
	}
	err = c.WaitAcked(ctx)
	return c.Close(), err
}

// GroupErrors groups the errors of the connections (errs[i] is connection
// i's, nil if none) by cause, in order of first appearance: one
// "<error> (conns 0-3, 7)" per cause. The local address of a network error
// is left out of its text, so that the same failure on every connection is
// one cause.
func GroupErrors(errs []error) []string {
	var causes []string
	conns := map[string][]int{}
	for i, err := range errs {
		if err == nil {
			continue
		}
		msg := err.Error()
		var op *net.OpError
		if errors.As(err, &op) && op.Source != nil && op.Addr != nil {
			msg = strings.ReplaceAll(msg, op.Source.String()+"->", "")
		}
		if _, ok := conns[msg]; !ok {
			causes = append(causes, msg)
		}
		conns[msg] = append(conns[msg], i)
	}
	out := make([]string, 0, len(causes))
	for _, c := range causes {
		out = append(out, fmt.Sprintf("%s (%s)", c, connList(conns[c])))
	}
	return out
}

// connList is "conn 3" or "conns 0-3, 5, 7-9" for ascending ids.
func connList(ids []int) string {
	if len(ids) == 1 {
		return "conn " + strconv.Itoa(ids[0])
	}
	var b strings.Builder
	b.WriteString("conns ")
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return b.String()
}

// MinSize is the smallest -size that fits the unique prefix.
func MinSize(runID string, conns, messages int) int {
	return len(runID) + len(strconv.Itoa(conns)) + len(strconv.Itoa(messages)) + 3
}

// Payload appends message seq of connection conn: "<runID>c<conn>-<seq>-"
// followed by filler letters that depend on seq, size bytes in all (or
// longer if the prefix does not fit). Every message of a run is unique and
// CheckPayload can verify it.
func Payload(dst []byte, runID string, conn, seq, size int) []byte {
	start := len(dst)
	dst = append(dst, runID...)
	dst = append(dst, 'c')
	dst = strconv.AppendInt(dst, int64(conn), 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, '-')
	for j := len(dst) - start; j < size; j++ {
		dst = append(dst, byte('a'+(seq+j)%26))
	}
	return dst
}

// CheckPayload parses a payload made by Payload and verifies its filler.
func CheckPayload(b []byte, runID string) (conn, seq int, err error) {
	rest, ok := cutPrefix(b, runID+"c")
	if !ok {
		return 0, 0, fmt.Errorf("payload %.40q: no prefix %q", b, runID+"c")
	}
	conn, rest, err = cutInt(rest)
	if err != nil {
		return 0, 0, fmt.Errorf("payload %.40q: conn: %w", b, err)
	}
	seq, rest, err = cutInt(rest)
	if err != nil {
		return 0, 0, fmt.Errorf("payload %.40q: seq: %w", b, err)
	}
	off := len(b) - len(rest)
	for i, c := range rest {
		if c != byte('a'+(seq+off+i)%26) {
			return 0, 0, fmt.Errorf("payload %.40q: filler byte %d is %q", b, off+i, c)
		}
	}
	return conn, seq, nil
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return nil, false
	}
	return b[len(p):], true
}

func cutInt(b []byte) (int, []byte, error) {
	for i, c := range b {
		if c == '-' {
			n, err := strconv.Atoi(string(b[:i]))
			return n, b[i+1:], err
		}
	}
	return 0, nil, errors.New("no '-'")
}
