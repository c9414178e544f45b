package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMessageID(t *testing.T) {
	tests := []struct {
		prefix   string
		w, seq   int
		size     int
		wantLen  int
		wantW    int
		wantSeq  int
		parsedOK bool
	}{
		{prefix: "s01", w: 3, seq: 17, size: 64, wantLen: 64, wantW: 3, wantSeq: 17, parsedOK: true},
		{prefix: "run-a", w: 0, seq: 0, size: 1, wantLen: len("run-a-w0-0-"), parsedOK: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d-%d", tt.prefix, tt.w, tt.seq), func(t *testing.T) {
			id := MessageID(tt.prefix, tt.w, tt.seq, tt.size)
			if len(id) != tt.wantLen {
				t.Errorf("len(%q) = %d, want %d", id, len(id), tt.wantLen)
			}
			w, seq, ok := ParseID(tt.prefix, id)
			if ok != tt.parsedOK || w != tt.wantW || seq != tt.wantSeq {
				t.Errorf("ParseID(%q) = %d, %d, %v", id, w, seq, ok)
			}
			if _, _, ok := ParseID("other", id); ok {
				t.Errorf("ParseID with a foreign prefix accepted %q", id)
			}
		})
	}
}

// msg is a short message ID for the table tests.
func msg(w, seq int) string { return MessageID("t", w, seq, 0) }

func TestCheck(t *testing.T) {
	type send struct {
		id    string
		times int
		acked bool
		drop  bool
	}
	type want struct {
		lost, unexpected, dups, illegal, recovered, indeterminate, order, foreign int
		mismatch                                                                  int
		problems                                                                  int
	}
	tests := []struct {
		name     string
		sends    []send
		master   []string
		replicas map[string][]string
		opts     CheckOptions
		want     want
	}{
		{
			name:   "all acked and stored once",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 1, true, false}, {msg(1, 0), 1, true, false}},
			master: []string{msg(0, 0), msg(1, 0), msg(0, 1)},
			replicas: map[string][]string{
				"redis-2": {msg(0, 0), msg(1, 0), msg(0, 1)},
			},
		},
		{
			name:   "acked message missing is lost",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 1, true, false}},
			master: []string{msg(0, 0)},
			want:   want{lost: 1, problems: 1},
		},
		{
			name:   "entry nobody sent is unexpected",
			sends:  []send{{msg(0, 0), 1, true, false}},
			master: []string{msg(0, 0), msg(7, 7), "garbage"},
			want:   want{unexpected: 2, order: 0, problems: 1},
		},
		{
			name:   "foreign entries ignored when asked",
			sends:  []send{{msg(0, 0), 1, true, false}},
			master: []string{"random bytes", msg(0, 0), "more"},
			opts:   CheckOptions{IgnoreForeign: true},
			want:   want{foreign: 2},
		},
		{
			name:   "foreign entries with run prefix still unexpected",
			sends:  []send{{msg(0, 0), 1, true, false}},
			master: []string{msg(0, 0), msg(0, 9)},
			opts:   CheckOptions{IgnoreForeign: true},
			want:   want{unexpected: 1, problems: 1},
		},
		{
			name:   "duplicate of a resent message is legal",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 2, true, true}},
			master: []string{msg(0, 0), msg(0, 1), msg(0, 1)},
			want:   want{dups: 1},
		},
		{
			name:   "duplicate of a message sent once is illegal",
			sends:  []send{{msg(0, 0), 1, true, false}},
			master: []string{msg(0, 0), msg(0, 0)},
			want:   want{dups: 1, illegal: 1, problems: 1},
		},
		{
			name:   "unacked but stored is recovered, unacked and missing is fine",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 1, false, true}, {msg(0, 2), 1, false, true}},
			master: []string{msg(0, 0), msg(0, 1)},
			want:   want{recovered: 1, indeterminate: 2},
		},
		{
			name:   "first copies out of order are counted",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 1, true, false}, {msg(0, 2), 1, true, false}},
			master: []string{msg(0, 0), msg(0, 2), msg(0, 1)},
			want:   want{order: 1},
		},
		{
			name:   "replica behind or different is a mismatch",
			sends:  []send{{msg(0, 0), 1, true, false}, {msg(0, 1), 1, true, false}},
			master: []string{msg(0, 0), msg(0, 1)},
			replicas: map[string][]string{
				"redis-2": {msg(0, 0)},
				"redis-3": {msg(0, 1), msg(0, 0)},
				"redis-1": {msg(0, 0), msg(0, 1)},
			},
			want: want{mismatch: 2, problems: 2},
		},
		{
			name:   "nothing acked fails",
			sends:  []send{{msg(0, 0), 1, false, true}},
			master: nil,
			want:   want{indeterminate: 1, problems: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			r := NewRecorder("t", now)
			for _, s := range tt.sends {
				for i := 0; i < s.times; i++ {
					r.Sent(s.id, now)
				}
				if s.drop {
					r.Dropped([]string{s.id}, "EOF")
				}
				if s.acked {
					r.Acked([]string{s.id}, now)
				}
			}
			v := r.Check(tt.master, tt.replicas, tt.opts)
			got := want{
				lost: len(v.Lost), unexpected: len(v.Unexpected), dups: v.Duplicates,
				illegal: len(v.IllegalDuplicates), recovered: v.Recovered, indeterminate: v.Indeterminate,
				order: v.OrderViolations, foreign: v.Foreign, mismatch: len(v.ReplicaMismatch),
				problems: len(v.Problems()),
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v\nproblems: %q", got, tt.want, v.Problems())
			}
			if v.Attempted != len(tt.sends) {
				t.Errorf("attempted = %d, want %d", v.Attempted, len(tt.sends))
			}
		})
	}
}

func TestRecorderViolationFails(t *testing.T) {
	r := NewRecorder("t", time.Now())
	r.Sent(msg(0, 0), time.Now())
	r.Acked([]string{msg(0, 0), msg(0, 1)}, time.Now())
	v := r.Check([]string{msg(0, 0)}, nil, CheckOptions{})
	if len(v.Violations) != 1 || len(v.Problems()) != 1 {
		t.Fatalf("ack of an unsent message not reported: %+v", v)
	}
}

func TestTiming(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := NewRecorder("t", t0)
	// 100 acked per second for 2 s before the fault at 2 s.
	r.Sent("a", at(0))
	r.Acked([]string{"a"}, at(1000))
	r.Sent("b", at(1500))
	r.MarkFault(at(2000))
	// An ack in flight at the fault does not count as "resumed".
	r.Acked([]string{"b"}, at(2010))
	r.Sent("c", at(2100))
	r.MarkHeal(at(3000))
	r.Acked([]string{"c"}, at(4500))
	r.Sent("d", at(4600))
	r.Acked([]string{"d"}, at(4700))
	r.MarkEnd(at(5000))
	got := r.Timing()
	if n := r.AcksBetween(at(2000), at(4500)); n != 1 {
		t.Errorf("AcksBetween(fault, 4.5 s) = %d, want 1", n)
	}
	if got.AcksResume != 2500*time.Millisecond {
		t.Errorf("AcksResume = %v, want 2.5s", got.AcksResume)
	}
	if got.AcksAfterHeal != 1500*time.Millisecond {
		t.Errorf("AcksAfterHeal = %v, want 1.5s", got.AcksAfterHeal)
	}
	if got.MaxAckGap != 2490*time.Millisecond {
		t.Errorf("MaxAckGap = %v, want 2.49s", got.MaxAckGap)
	}
	if got.RateBefore != 0.5 || got.RateDuring != 1 || got.RateAfter != 1 {
		t.Errorf("rates = %v / %v / %v, want 0.5 / 1 / 1", got.RateBefore, got.RateDuring, got.RateAfter)
	}

	never := NewRecorder("t", t0)
	never.Sent("a", at(0))
	never.MarkFault(at(100))
	never.MarkEnd(at(900))
	never.MarkHeal(at(500))
	if got := never.Timing(); got.AcksResume >= 0 || got.AcksAfterHeal >= 0 || got.MaxAckGap != 800*time.Millisecond {
		t.Errorf("without acks after the fault: %+v", got)
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		line    string
		n       int
		code    string
		wantErr bool
	}{
		{line: "OK 12\n", n: 12},
		{line: "OK 3\r\n", n: 3},
		{line: "ERR 7 SHUTTING_DOWN draining\n", n: 7, code: "SHUTTING_DOWN"},
		{line: "ERR 0 FRAME_TOO_LARGE frame exceeds 1048576 bytes\n", code: "FRAME_TOO_LARGE"},
		{line: "ERR 7\n", wantErr: true},
		{line: "OK x\n", wantErr: true},
		{line: "HELLO 1\n", wantErr: true},
		{line: "\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.line), func(t *testing.T) {
			n, code, err := parseReply(tt.line)
			if (err != nil) != tt.wantErr || n != tt.n || code != tt.code {
				t.Errorf("parseReply(%q) = %d, %q, %v", tt.line, n, code, err)
			}
		})
	}
}

// flakyServer speaks the ack protocol on loopback and drops every
// connection after dropAfter frames, acking only part of what it stored, so
// that the workers must reconnect and resend.
type flakyServer struct {
	ln        net.Listener
	dropAfter int
	mu        sync.Mutex
	stored    []string
	conns     int
}

func (s *flakyServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			n := 0
			for sc.Scan() {
				s.mu.Lock()
				s.stored = append(s.stored, sc.Text())
				s.mu.Unlock()
				n++
				if n == s.dropAfter {
					return // stored but never acked: the client must resend
				}
				if n%7 == 0 {
					fmt.Fprintf(c, "OK %d\n", n)
				}
			}
		}()
	}
}

func TestLoadResendsAfterDrop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &flakyServer{ln: ln, dropAfter: 150}
	go srv.serve()

	rec := NewRecorder("load", time.Now())
	l := StartLoad(t.Context(), rec, LoadOptions{
		Addr: func() string { return ln.Addr().String() }, Workers: 3, Rate: 2000, Window: 40, MaxPerWorker: 400,
	})
	time.Sleep(300 * time.Millisecond)
	left := l.Stop(time.Second) // the tail after the last multiple of 7 is never acked
	srv.mu.Lock()
	stored := append([]string(nil), srv.stored...)
	conns := srv.conns
	srv.mu.Unlock()
	v := rec.Check(stored, nil, CheckOptions{})
	t.Logf("conns %d, attempted %d, acked %d, resent %d, dups %d, left %d", conns, v.Attempted, v.Acked, v.Resent, v.Duplicates, left)
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("problems: %q", p)
	}
	if conns < 4 || v.Resent == 0 || v.Duplicates == 0 {
		t.Fatalf("server drops did not force resends: conns %d resent %d dups %d", conns, v.Resent, v.Duplicates)
	}
	if v.Acked+left != v.Attempted {
		t.Fatalf("acked %d + left %d != attempted %d", v.Acked, left, v.Attempted)
	}
}
