package config

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(getenv(map[string]string{"INGEST_REDIS_ADDR": "127.0.0.1:6379"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ListenAddr: ":9501", HTTPAddr: ":9502", NoAckAddr: ":9503", AdminAddr: ":8086", Config: redisconn.Config{RedisAddr: "127.0.0.1:6379", SentinelMaster: "sluice"},
		RedisKey: "data_queue", WaitTimeout: time.Second, BatchMax: 1024, BatchLinger: 200 * time.Microsecond,
		Writers: 4, MaxFrameBytes: 1 << 20, MaxInflightBytes: 16 << 20, RedisRetryTimeout: 30 * time.Second,
		RedisTimeout: 5 * time.Second, MaxConns: 10000, IdleTimeout: 5 * time.Minute, WriteTimeout: 10 * time.Second,
		DrainDelay: 5 * time.Second, ShutdownTimeout: 30 * time.Second, ReadyInterval: time.Second,
		ReadyTimeout: 500 * time.Millisecond, LogLevel: "info", HTTPMaxBodyBytes: 4 << 20, HTTPBudgetWait: 5 * time.Second,
		MaxBufferBytes: 32 << 20, FrameTimeout: 30 * time.Second,
	}
	if got := strings.Join(cfg.SentinelAddrs, ","); got != "" {
		t.Fatalf("SentinelAddrs = %q", got)
	}
	cfg.SentinelAddrs = nil
	if !equalConfig(cfg, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", cfg, want)
	}
}

func equalConfig(a, b Config) bool {
	a.SentinelAddrs, b.SentinelAddrs = nil, nil
	return a.String() == b.String()
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // substrings, each must appear
	}{
		{
			name: "sentinel mode",
			env:  map[string]string{"INGEST_SENTINEL_ADDRS": "s1:26379, s2:26379,s3:26379", "INGEST_MIN_REPLICAS": "2", "INGEST_BATCH_LINGER": "1ms"},
			check: func(t *testing.T, c Config) {
				if len(c.SentinelAddrs) != 3 || c.MinReplicas != 2 || c.BatchLinger != time.Millisecond {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name: "password file",
			env:  map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_REDIS_PASSWORD_FILE": "testdata/redis-password"},
			check: func(t *testing.T, c Config) {
				if c.RedisPassword != "s3cret" {
					t.Fatalf("RedisPassword = %q", c.RedisPassword)
				}
			},
		},
		{
			name:    "password file missing",
			env:     map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_SENTINEL_PASSWORD_FILE": "testdata/nope"},
			wantErr: []string{"INGEST_SENTINEL_PASSWORD_FILE: read testdata/nope"},
		},
		{
			name:    "password and file",
			env:     map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_REDIS_PASSWORD": "x", "INGEST_REDIS_PASSWORD_FILE": "testdata/redis-password"},
			wantErr: []string{"INGEST_REDIS_PASSWORD: set it or INGEST_REDIS_PASSWORD_FILE, not both"},
		},
		{
			name:    "no redis",
			env:     map[string]string{},
			wantErr: []string{"INGEST_SENTINEL_ADDRS: set it (or INGEST_REDIS_ADDR for a single node)"},
		},
		{
			name:    "both modes",
			env:     map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_SENTINEL_ADDRS": "s:26379"},
			wantErr: []string{"not both"},
		},
		{
			name: "http and no-ack off",
			env:  map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_HTTP_ADDR": "off", "INGEST_NOACK_ADDR": "off"},
			check: func(t *testing.T, c Config) {
				if c.HTTPEnabled() || c.NoAckEnabled() {
					t.Fatalf("enabled with off: http %v, no-ack %v", c.HTTPEnabled(), c.NoAckEnabled())
				}
			},
		},
		{
			name: "http problems",
			env: map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_HTTP_ADDR": "nohostport", "INGEST_NOACK_ADDR": "x",
				"INGEST_HTTP_MAX_BODY_BYTES": "16777216", "INGEST_HTTP_BUDGET_WAIT": "0s"},
			wantErr: []string{"INGEST_HTTP_ADDR:", "INGEST_NOACK_ADDR:", "INGEST_HTTP_MAX_BODY_BYTES: 16777216 is outside 1..8388608", "INGEST_HTTP_BUDGET_WAIT:"},
		},
		{
			name:    "unparsable number",
			env:     map[string]string{"INGEST_REDIS_ADDR": "r:6379", "INGEST_BATCH_MAX": "many"},
			wantErr: []string{"BATCH_MAX"},
		},
		{
			name: "every problem reported",
			env: map[string]string{
				"INGEST_REDIS_ADDR": "nohostport", "INGEST_LISTEN_ADDR": "bad", "INGEST_REDIS_KEY": "",
				"INGEST_MIN_REPLICAS": "-1", "INGEST_WAIT_TIMEOUT": "0s", "INGEST_BATCH_MAX": "0", "INGEST_WRITERS": "0",
				"INGEST_MAX_FRAME_BYTES": "0", "INGEST_MAX_INFLIGHT_BYTES": "10", "INGEST_REDIS_RETRY_TIMEOUT": "0s",
				"INGEST_MAX_CONNS": "0", "INGEST_DRAIN_DELAY": "10s", "INGEST_SHUTDOWN_TIMEOUT": "5s", "INGEST_LOG_LEVEL": "loud",
				"INGEST_WRITE_TIMEOUT": "0s", "INGEST_IDLE_TIMEOUT": "-1s", "INGEST_BATCH_LINGER": "-1ms",
				"INGEST_MAX_BUFFER_BYTES": "1000", "INGEST_FRAME_TIMEOUT": "0s",
			},
			wantErr: []string{
				"INGEST_REDIS_ADDR:", "INGEST_LISTEN_ADDR:", "INGEST_MIN_REPLICAS:", "INGEST_WAIT_TIMEOUT:",
				"INGEST_BATCH_MAX:", "INGEST_WRITERS:", "INGEST_MAX_FRAME_BYTES:", "INGEST_MAX_INFLIGHT_BYTES:",
				"INGEST_REDIS_RETRY_TIMEOUT:", "INGEST_MAX_CONNS:", "INGEST_SHUTDOWN_TIMEOUT:", "INGEST_LOG_LEVEL:",
				"INGEST_WRITE_TIMEOUT:", "INGEST_IDLE_TIMEOUT:", "INGEST_BATCH_LINGER:",
				"INGEST_MAX_BUFFER_BYTES:", "INGEST_FRAME_TIMEOUT:",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(getenv(tc.env))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("no error for %v", tc.env)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	if err := PrintTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, v := range Variables() {
		if !strings.Contains(out, v.Name) {
			t.Errorf("table lacks %s", v.Name)
		}
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	for _, want := range []string{"INGEST_LISTEN_ADDR", ":9501", "INGEST_REDIS_KEY", "data_queue", "INGEST_SENTINEL_MASTER", "sluice"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
