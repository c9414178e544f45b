package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/consumer/queue"
)

// runCLI runs run() with env and args; it returns stdout, stderr and the
// exit status main would give.
func runCLI(ctx context.Context, env map[string]string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	code := cli.Exit("consumer", err, &errOut)
	return out.String(), errOut.String(), code
}

func pushN(t *testing.T, rdb *redis.Client, key string, from, to int) []string {
	t.Helper()
	var vals []any
	var out []string
	for i := from; i < to; i++ {
		m := fmt.Sprintf("msg %05d", i)
		vals = append(vals, m)
		out = append(out, m)
	}
	if err := rdb.RPush(context.Background(), key, vals...).Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s: got %d lines, want %d\n got %.300q\nwant %.300q", what, len(got), len(want), got, want)
	}
}

func llen(t *testing.T, rdb *redis.Client, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCommandLine(t *testing.T) {
	env := map[string]string{"CONSUMER_REDIS_ADDR": "127.0.0.1:1"}
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string
		wantErrOut string
	}{
		{"help", []string{"-h"}, 0, "CONSUMER_SENTINEL_ADDRS", ""},
		{"version", []string{"-version"}, 0, "consumer ", ""},
		{"unknown flag", []string{"-x"}, 2, "", "Usage:"},
		{"argument", []string{"more"}, 2, "", `unexpected arguments ["more"]`},
		{"negative n", []string{"-n", "-1"}, 2, "", "-n -1 is negative"},
		{"bad n", []string{"-n", "many"}, 2, "", "invalid value"},
		{"negative rate", []string{"-rate", "-3"}, 2, "", "-rate -3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(context.Background(), env, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErrOut) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
		})
	}
}

// TestBadConfig: each bad setting is named, and the consumer exits 1
// without touching Redis.
func TestBadConfig(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no redis", map[string]string{}, []string{"CONSUMER_SENTINEL_ADDRS: set it"}},
		{"both modes", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_SENTINEL_ADDRS": "b:2"}, []string{"CONSUMER_REDIS_ADDR: set it or"}},
		{"bad address", map[string]string{"CONSUMER_REDIS_ADDR": "redis"}, []string{"CONSUMER_REDIS_ADDR"}},
		{"bad sentinel", map[string]string{"CONSUMER_SENTINEL_ADDRS": "s:1,nohost"}, []string{"CONSUMER_SENTINEL_ADDRS"}},
		{"password twice", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_REDIS_PASSWORD": "x", "CONSUMER_REDIS_PASSWORD_FILE": pwFile}, []string{"CONSUMER_REDIS_PASSWORD: set it or"}},
		{"missing password file", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_SENTINEL_PASSWORD_FILE": "/nonexistent"}, []string{"CONSUMER_SENTINEL_PASSWORD_FILE"}},
		{"batch", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_BATCH": "0"}, []string{"CONSUMER_BATCH: 0 is not between"}},
		{"batch not a number", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_BATCH": "lots"}, []string{"CONSUMER_BATCH: not a valid int"}},
		{"block below 1s", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_BLOCK": "500ms"}, []string{"CONSUMER_BLOCK"}},
		{"block not whole seconds", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_BLOCK": "1500ms"}, []string{"CONSUMER_BLOCK"}},
		{"retry timeout", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_RETRY_TIMEOUT": "-1s"}, []string{"CONSUMER_RETRY_TIMEOUT"}},
		{"log level", map[string]string{"CONSUMER_REDIS_ADDR": "a:1", "CONSUMER_LOG_LEVEL": "loud"}, []string{"CONSUMER_LOG_LEVEL"}},
		{"all at once", map[string]string{"CONSUMER_BATCH": "x", "CONSUMER_BLOCK": "0s", "CONSUMER_LOG_LEVEL": "loud"},
			[]string{"CONSUMER_SENTINEL_ADDRS", "CONSUMER_BATCH", "CONSUMER_BLOCK", "CONSUMER_LOG_LEVEL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(context.Background(), tc.env, "-n", "1")
			if code != 1 || !strings.Contains(errOut, "consumer: configuration:") {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not name %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestConsumeToFile: -n stops after N messages, -out gets them in queue
// order, and a second run appends the rest; nothing stays pending.
func TestConsumeToFile(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{Password: "pw"})
	rdb := r.Client()
	defer rdb.Close()
	want := pushN(t, rdb, "data_queue", 0, 250)
	out := filepath.Join(t.TempDir(), "out.txt")
	env := map[string]string{"CONSUMER_REDIS_ADDR": r.Addr, "CONSUMER_REDIS_PASSWORD": "pw", "CONSUMER_NAME": "c1", "CONSUMER_BATCH": "32"}
	if _, errOut, code := runCLI(context.Background(), env, "-n", "100", "-out", out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	same(t, "first run", lines(t, out), want[:100])
	if l := llen(t, rdb, "data_queue"); l != 150 {
		t.Fatalf("queue holds %d, want 150", l)
	}
	if _, errOut, code := runCLI(context.Background(), env, "-n", "150", "-out", out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	same(t, "both runs", lines(t, out), want)
	if l := llen(t, rdb, "data_queue") + llen(t, rdb, "data_queue:processing:c1"); l != 0 {
		t.Fatalf("%d messages left in the queue or pending", l)
	}
	// stdout is the default output; a wrong password is exit 1
	pushN(t, rdb, "data_queue", 250, 252)
	stdout, errOut, code := runCLI(context.Background(), env, "-n", "2")
	if code != 0 || stdout != "msg 00250\nmsg 00251\n" {
		t.Fatalf("exit %d, stdout %q\n%s", code, stdout, errOut)
	}
	env["CONSUMER_REDIS_PASSWORD"] = "wrong"
	env["CONSUMER_RETRY_TIMEOUT"] = "0s"
	if _, errOut, code := runCLI(context.Background(), env, "-n", "1"); code != 1 || !strings.Contains(errOut, "WRONGPASS") {
		t.Fatalf("exit %d with a wrong password:\n%s", code, errOut)
	}
}

// TestRestartAfterKill: a consumer that died mid-batch (took messages, never
// acked them) is restarted under the same name: the unacked messages come
// first, in order, then the rest; nothing is lost. -recover moves another
// dead consumer's list back.
func TestRestartAfterKill(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	rdb := r.Client()
	defer rdb.Close()
	ctx := context.Background()
	want := pushN(t, rdb, "q", 0, 40)

	dead, err := queue.Open(ctx, rdb, queue.Options{Key: "q", Name: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	acked, err := dead.NextBatch(ctx, 5)
	if err != nil || dead.Ack(ctx, acked...) != nil {
		t.Fatal(err)
	}
	if inHand, err := dead.NextBatch(ctx, 10); err != nil || len(inHand) != 10 {
		t.Fatalf("in hand %d: %v", len(inHand), err)
	}
	other, err := queue.Open(ctx, rdb, queue.Options{Key: "q", Name: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	if inHand, err := other.NextBatch(ctx, 5); err != nil || len(inHand) != 5 { // msgs 15..19
		t.Fatalf("in hand %d: %v", len(inHand), err)
	}
	// both die here

	out := filepath.Join(t.TempDir(), "out.txt")
	env := map[string]string{"CONSUMER_REDIS_ADDR": r.Addr, "CONSUMER_KEY": "q", "CONSUMER_NAME": "w1", "CONSUMER_BATCH": "4"}
	if _, errOut, code := runCLI(ctx, env, "-n", "12", "-out", out); code != 0 || !strings.Contains(errOut, `"recovered":10`) {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	same(t, "restarted w1", lines(t, out), append(append([]string{}, want[5:15]...), want[20:22]...)) // its 10, then 20 and 21

	stdout, errOut, code := runCLI(ctx, env, "-recover", "w2")
	if code != 0 || stdout != "recovered 5 messages from q:processing:w2 to the head of q\n" {
		t.Fatalf("exit %d, stdout %q:\n%s", code, stdout, errOut)
	}
	if _, errOut, code := runCLI(ctx, env, "-out", out, "-n", "23"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	got := lines(t, out)
	same(t, "after -recover w2", got[12:], append(append([]string{}, want[15:20]...), want[22:]...))
	if l := llen(t, rdb, "q") + llen(t, rdb, "q:processing:w1") + llen(t, rdb, "q:processing:w2"); l != 0 {
		t.Fatalf("%d messages left", l)
	}
}

// TestStop: cancelling the context (SIGTERM in main) while a slow consumer
// (-rate) runs ends it with exit 0; every message it wrote was acked, and
// every message it did not write is still in the queue, in order.
func TestStop(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	rdb := r.Client()
	defer rdb.Close()
	want := pushN(t, rdb, "data_queue", 0, 2000)
	out := filepath.Join(t.TempDir(), "out.txt")
	env := map[string]string{"CONSUMER_REDIS_ADDR": r.Addr, "CONSUMER_NAME": "slow"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		errOut string
		code   int
	}
	done := make(chan result, 1)
	go func() {
		_, errOut, code := runCLI(ctx, env, "-rate", "200", "-out", out)
		done <- result{errOut, code}
	}()
	// wait until some messages were written (bounded: the rate is 200/s)
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(out); bytes.Count(b, []byte("\n")) >= 60 {
			break
		}
		if i == 3000 {
			t.Fatal("nothing written")
		}
		if !pause(context.Background(), 10*time.Millisecond) {
			t.Fatal("pause")
		}
	}
	cancel()
	res := <-done
	if res.code != 0 {
		t.Fatalf("exit %d:\n%s", res.code, res.errOut)
	}
	got := lines(t, out)
	if len(got) >= len(want) {
		t.Fatalf("the slow consumer took all %d messages before the stop", len(got))
	}
	same(t, "written", got, want[:len(got)])
	if p := llen(t, rdb, "data_queue:processing:slow"); p != 0 {
		t.Fatalf("%d messages pending after the stop", p)
	}
	rest, err := rdb.LRange(context.Background(), "data_queue", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	same(t, "left in the queue", rest, want[len(got):])
}

// TestSentinel: the consumer finds the master through the Sentinels.
func TestSentinel(t *testing.T) {
	const pw = "top-secret"
	top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 1, Sentinels: 1, Password: pw})
	rdb := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: pw})
	defer rdb.Close()
	want := pushN(t, rdb, "data_queue", 0, 30)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"CONSUMER_SENTINEL_ADDRS": strings.Join(top.SentinelAddrs(), ","), "CONSUMER_REDIS_PASSWORD_FILE": pwFile,
		"CONSUMER_NAME": "s1", "CONSUMER_BATCH": "7",
	}
	stdout, errOut, code := runCLI(context.Background(), env, "-n", "30")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	same(t, "stdout", strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"), want)
}
