package redislog

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
	Use(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { Use(slog.New(slog.DiscardHandler)) })

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
