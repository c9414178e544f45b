package e2e

// The loss checker of the fault suite. It is built without the e2e tag so that
// its unit tests run with the ordinary unit tests, without Docker.
//
// Every message carries a unique ID. The Recorder notes for each message how
// often it was sent, whether it was acked, and whether it was on the wire of a
// connection that dropped (indeterminate). After the fault heals, Check
// compares that record with what the master (and each replica) holds:
// lost = acked - read and unexpected = read - attempted must be empty, and
// duplicates are legal only for messages that were sent more than once.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MessageID returns the ID of message seq of worker w in run prefix, padded
// with 'x' to size bytes (never shorter than the ID itself).
func MessageID(prefix string, w, seq, size int) string {
	id := fmt.Sprintf("%s-w%d-%d-", prefix, w, seq)
	if pad := size - len(id); pad > 0 {
		id += strings.Repeat("x", pad)
	}
	return id
}

// ParseID splits an ID made by MessageID into its worker and sequence number.
func ParseID(prefix, id string) (w, seq int, ok bool) {
	rest, found := strings.CutPrefix(id, prefix+"-w")
	if !found {
		return 0, 0, false
	}
	parts := strings.SplitN(rest, "-", 3)
	if len(parts) < 3 {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(parts[0])
	seq, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return w, seq, true
}

type msgState struct {
	sends         int
	acked         bool
	indeterminate bool
	lastSent      time.Time
}

type ackEvent struct {
	at time.Time
	n  int
}

// Recorder is the client-side record of one scenario. It is safe for
// concurrent use by the load workers.
type Recorder struct {
	prefix string

	mu          sync.Mutex
	msgs        map[string]*msgState
	acks        []ackEvent
	start       time.Time
	fault       time.Time
	heal        time.Time
	end         time.Time
	resumeAt    time.Time
	disconnects map[string]int
	violations  []string
}

// NewRecorder starts a record for messages whose IDs begin with prefix.
func NewRecorder(prefix string, now time.Time) *Recorder {
	return &Recorder{
		prefix:      prefix,
		msgs:        make(map[string]*msgState),
		start:       now,
		disconnects: make(map[string]int),
	}
}

// Prefix is the run prefix of this record's message IDs.
func (r *Recorder) Prefix() string { return r.prefix }

// Sent records one transmission (first send or resend) of id.
func (r *Recorder) Sent(id string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.msgs[id]
	if st == nil {
		st = &msgState{}
		r.msgs[id] = st
	}
	st.sends++
	st.lastSent = now
}

// Acked records that the server acknowledged ids.
func (r *Recorder) Acked(ids []string, now time.Time) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		st := r.msgs[id]
		if st == nil {
			r.violations = append(r.violations, "ack for unsent message "+id)
			continue
		}
		st.acked = true
		// "Acks resume": the first ack after the fault of a message whose
		// (re)transmission started after the fault, so acks already in
		// flight when the fault hit do not count.
		if !r.fault.IsZero() && r.resumeAt.IsZero() && st.lastSent.After(r.fault) {
			r.resumeAt = now
		}
	}
	r.acks = append(r.acks, ackEvent{at: now, n: len(ids)})
}

// Dropped records that a connection ended for reason while ids were sent on
// it but not acked: their outcome is unknown until the read-back.
func (r *Recorder) Dropped(ids []string, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disconnects[reason]++
	for _, id := range ids {
		if st := r.msgs[id]; st != nil && !st.acked {
			st.indeterminate = true
		}
	}
}

// Violation records a protocol violation seen by a client (for example an ack
// for more messages than were sent). Any violation fails the scenario.
func (r *Recorder) Violation(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, s)
}

// MarkFault records when the fault was injected.
func (r *Recorder) MarkFault(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = now
}

// MarkHeal records when the fault was healed (or the recovery action done).
func (r *Recorder) MarkHeal(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heal = now
}

// MarkEnd records when the load stopped producing new messages.
func (r *Recorder) MarkEnd(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.end = now
}

// Timing is what the Recorder measured about acks over time.
type Timing struct {
	// AcksResume is the time from the fault to the first ack of a message
	// sent after it; negative when that never happened.
	AcksResume time.Duration
	// AcksAfterHeal is the time from the heal to the first ack after it;
	// negative when none came.
	AcksAfterHeal time.Duration
	// MaxAckGap is the longest time without any ack between the fault and
	// the end of the load.
	MaxAckGap time.Duration
	// Rates are acked messages per second before the fault, between fault
	// and heal, and from heal to the end of the load.
	RateBefore, RateDuring, RateAfter float64
	Disconnects                       map[string]int
}

// Timing summarises ack times. Call it after MarkEnd.
func (r *Recorder) Timing() Timing {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.end
	if end.IsZero() {
		end = time.Now()
	}
	fault, heal := r.fault, r.heal
	if fault.IsZero() {
		fault = end
	}
	if heal.IsZero() || heal.Before(fault) {
		heal = fault
	}
	t := Timing{AcksResume: -1, AcksAfterHeal: -1, Disconnects: make(map[string]int)}
	if !r.resumeAt.IsZero() {
		t.AcksResume = r.resumeAt.Sub(r.fault)
	}
	for k, v := range r.disconnects {
		t.Disconnects[k] = v
	}
	var before, during, after int
	last := fault
	for _, a := range r.acks {
		switch {
		case a.at.Before(fault):
			before += a.n
		case a.at.Before(heal):
			during += a.n
		case !a.at.After(end):
			after += a.n
		}
		// Workers append concurrently, so the slice is only nearly sorted.
		if !r.heal.IsZero() && !a.at.Before(r.heal) {
			if d := a.at.Sub(r.heal); t.AcksAfterHeal < 0 || d < t.AcksAfterHeal {
				t.AcksAfterHeal = d
			}
		}
		if !a.at.Before(fault) && !a.at.After(end) {
			if gap := a.at.Sub(last); gap > t.MaxAckGap {
				t.MaxAckGap = gap
			}
			last = a.at
		}
	}
	if !r.fault.IsZero() {
		if gap := end.Sub(last); gap > t.MaxAckGap {
			t.MaxAckGap = gap
		}
	}
	t.RateBefore = rate(before, fault.Sub(r.start))
	t.RateDuring = rate(during, heal.Sub(fault))
	t.RateAfter = rate(after, end.Sub(heal))
	return t
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Verdict is the outcome of comparing the record with the read-back.
type Verdict struct {
	Attempted     int
	Acked         int
	Indeterminate int
	// Resent counts messages sent more than once.
	Resent int
	// Read counts entries of this run in the master's list.
	Read int
	// Lost are acked messages missing from the master's list.
	Lost []string
	// Unexpected are entries that no client attempted.
	Unexpected []string
	// Foreign counts entries without this run's prefix that were ignored
	// (only when CheckOptions.IgnoreForeign is set).
	Foreign int
	// Recovered counts messages that were never acked but are stored.
	Recovered int
	// Duplicates counts extra copies; IllegalDuplicates lists messages sent
	// once that are stored more than once.
	Duplicates        int
	IllegalDuplicates []string
	// OrderViolations counts messages whose first copy is stored after the
	// first copy of a later message of the same worker.
	OrderViolations int
	// ReplicaMismatch describes each replica whose list differs from the master's.
	ReplicaMismatch []string
	// Violations are protocol violations the clients saw.
	Violations []string
}

// CheckOptions tune Check.
type CheckOptions struct {
	// IgnoreForeign skips entries without the run prefix instead of counting
	// them as unexpected (for the hostile-client scenario, whose random
	// bytes are legitimately stored).
	IgnoreForeign bool
}

// Check compares the record with the master's list and each replica's list.
func (r *Recorder) Check(master []string, replicas map[string][]string, opts CheckOptions) Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v Verdict
	v.Violations = append(v.Violations, r.violations...)
	counts := make(map[string]int, len(master))
	perWorker := make(map[int][]int) // worker -> seqs in order of first copy
	for _, e := range master {
		if !strings.HasPrefix(e, r.prefix+"-") {
			if opts.IgnoreForeign {
				v.Foreign++
				continue
			}
		}
		v.Read++
		counts[e]++
		if counts[e] == 1 {
			if w, seq, ok := ParseID(r.prefix, e); ok {
				perWorker[w] = append(perWorker[w], seq)
			}
		}
	}
	for e, n := range counts {
		st := r.msgs[e]
		if st == nil {
			v.Unexpected = append(v.Unexpected, e)
			continue
		}
		if n > 1 {
			v.Duplicates += n - 1
			if st.sends < 2 {
				v.IllegalDuplicates = append(v.IllegalDuplicates, e)
			}
		}
		if !st.acked {
			v.Recovered++
		}
	}
	for id, st := range r.msgs {
		v.Attempted++
		if st.sends > 1 {
			v.Resent++
		}
		if st.acked {
			v.Acked++
			if counts[id] == 0 {
				v.Lost = append(v.Lost, id)
			}
		} else if st.indeterminate {
			v.Indeterminate++
		}
	}
	for _, seqs := range perWorker {
		maxSeq := -1
		for _, s := range seqs {
			if s < maxSeq {
				v.OrderViolations++
			} else {
				maxSeq = s
			}
		}
	}
	names := make([]string, 0, len(replicas))
	for name := range replicas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := diffLists(master, replicas[name]); d != "" {
			v.ReplicaMismatch = append(v.ReplicaMismatch, name+": "+d)
		}
	}
	sort.Strings(v.Lost)
	sort.Strings(v.Unexpected)
	sort.Strings(v.IllegalDuplicates)
	return v
}

// diffLists describes the first difference between the master's and a
// replica's list, or returns "" when they are equal.
func diffLists(master, replica []string) string {
	n := min(len(master), len(replica))
	for i := 0; i < n; i++ {
		if master[i] != replica[i] {
			return fmt.Sprintf("differs at index %d (master %q, replica %q)", i, short(master[i]), short(replica[i]))
		}
	}
	if len(master) != len(replica) {
		return fmt.Sprintf("length %d, master %d", len(replica), len(master))
	}
	return ""
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Problems lists why the verdict fails; empty means zero acknowledged loss.
func (v Verdict) Problems() []string {
	var p []string
	if len(v.Lost) > 0 {
		p = append(p, fmt.Sprintf("%d acked messages lost (first %s)", len(v.Lost), short(v.Lost[0])))
	}
	if len(v.Unexpected) > 0 {
		p = append(p, fmt.Sprintf("%d unexpected entries (first %q)", len(v.Unexpected), short(v.Unexpected[0])))
	}
	if len(v.IllegalDuplicates) > 0 {
		p = append(p, fmt.Sprintf("%d messages sent once but stored more than once (first %s)", len(v.IllegalDuplicates), short(v.IllegalDuplicates[0])))
	}
	for _, m := range v.ReplicaMismatch {
		p = append(p, "replica "+m)
	}
	for _, m := range v.Violations {
		p = append(p, "protocol violation: "+m)
	}
	if v.Acked == 0 {
		p = append(p, "no message was acked: the load never ran")
	}
	return p
}

// AcksBetween counts messages acked at or after from and before to.
func (r *Recorder) AcksBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.acks {
		if !a.at.Before(from) && a.at.Before(to) {
			n += a.n
		}
	}
	return n
}
