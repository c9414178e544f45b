package redisconn

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A dial error inside go-redis's pool must come out as one JSON line.
func TestUseRoutesPoolErrors(t *testing.T) {
	var buf bytes.Buffer
	UseLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { UseLogger(slog.New(slog.DiscardHandler)) })

	// Port 1 on loopback: nothing listens there, the dial fails at once.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping of 127.0.0.1:1 succeeded")
	}
	if buf.Len() == 0 {
		t.Fatal("go-redis logged nothing for a failed dial: the logger is not routed")
	}
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if rec["component"] != "go-redis" || rec["level"] != "WARN" {
			t.Errorf("record %v: want component go-redis at WARN", rec)
		}
	}
}

// Repeats of one kind of line are logged once per interval, the next one
// with the count of those suppressed; other kinds are not held back.
func TestRateLimit(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	a := newAdapter(slog.New(slog.NewJSONHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	ctx := context.Background()
	steps := []struct {
		advance time.Duration
		format  string
		arg     string
		logged  bool
		supp    float64 // the "suppressed" attribute, 0 when absent
	}{
		{0, "dial %s: refused", "a", true, 0},
		{time.Second, "dial %s: refused", "b", false, 0},
		{time.Second, "dial %s: refused", "c", false, 0},
		{time.Second, "sentinel: new master %s", "m", true, 0},
		{10 * time.Second, "dial %s: refused", "d", true, 2},
		{time.Second, "dial %s: refused", "e", false, 0},
		{20 * time.Second, "dial %s: refused", "f", true, 1},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		buf.Reset()
		a.Printf(ctx, s.format, s.arg)
		if got := buf.Len() > 0; got != s.logged {
			t.Fatalf("step %d (%s): logged %v, want %v", i, s.arg, got, s.logged)
		}
		if !s.logged {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		got, _ := rec["suppressed"].(float64)
		if got != s.supp {
			t.Errorf("step %d (%s): suppressed %v, want %v (%v)", i, s.arg, got, s.supp, rec)
		}
	}
}
