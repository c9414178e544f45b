package redisconn

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		c        Config
		sentinel bool     // ValidateSentinel instead of Validate
		want     []string // the error's lines; none: valid
	}{
		{name: "single node", c: Config{RedisAddr: "redis-1:6379"}},
		{name: "sentinel mode", c: Config{SentinelAddrs: []string{"s-1:26379", "s-2:26379"}, SentinelMaster: "sluice"}},
		{name: "neither", want: []string{"T_SENTINEL_ADDRS: set it (or T_REDIS_ADDR for a single node)"}},
		{name: "both", c: Config{RedisAddr: "r:1", SentinelAddrs: []string{"s:2"}},
			want: []string{"T_REDIS_ADDR: set it or T_SENTINEL_ADDRS, not both"}},
		{name: "bad addresses", c: Config{SentinelAddrs: []string{"s:1", "nohost", ":2"}}, want: []string{
			`T_SENTINEL_ADDRS: "nohost" is not host:port: address nohost: missing port in address`,
			`T_SENTINEL_ADDRS: ":2" has no host`,
			"T_SENTINEL_MASTER: must not be empty in Sentinel mode",
		}},
		{name: "bad node address", c: Config{RedisAddr: ":6379"}, want: []string{`T_REDIS_ADDR: ":6379" has no host`}},
		{name: "passwords set twice", c: Config{RedisAddr: "r:1", RedisPassword: "a", RedisPasswordFile: "f",
			SentinelPassword: "b", SentinelPasswordFile: "g"}, want: []string{
			"T_REDIS_PASSWORD: set it or T_REDIS_PASSWORD_FILE, not both",
			"T_SENTINEL_PASSWORD: set it or T_SENTINEL_PASSWORD_FILE, not both",
		}},
		{name: "sentinel tool, sentinels", sentinel: true, c: Config{SentinelAddrs: []string{"s:1"}, SentinelMaster: "m"}},
		{name: "sentinel tool, single node", sentinel: true, c: Config{RedisAddr: "r:1", SentinelMaster: "m"}, want: []string{
			"T_REDIS_ADDR: must not be set: set T_SENTINEL_ADDRS",
			"T_SENTINEL_ADDRS: must not be empty",
		}},
		{name: "sentinel tool, password twice", sentinel: true, c: Config{SentinelAddrs: []string{"s:1"}, SentinelMaster: "m",
			SentinelPassword: "b", SentinelPasswordFile: "g"}, want: []string{
			"T_SENTINEL_PASSWORD: set it or T_SENTINEL_PASSWORD_FILE, not both",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			validate := tc.c.Validate
			if tc.sentinel {
				validate = tc.c.ValidateSentinel
			}
			err := validate("T_")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate lines\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestReadSecrets(t *testing.T) {
	tests := []struct {
		name            string
		c               Config
		redis, sentinel string
		wantErr         string
	}{
		{name: "none"},
		{name: "direct", c: Config{RedisPassword: "r", SentinelPassword: "s"}, redis: "r", sentinel: "s"},
		{name: "files", c: Config{RedisPasswordFile: "testdata/password", SentinelPasswordFile: "testdata/password"},
			redis: "s3cret", sentinel: "s3cret"},
		{name: "missing file named by its variable", c: Config{SentinelPasswordFile: "testdata/nope"},
			wantErr: "T_SENTINEL_PASSWORD_FILE: read testdata/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.ReadSecrets("T_")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadSecrets = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.c.RedisPassword != tc.redis || tc.c.SentinelPassword != tc.sentinel {
				t.Errorf("passwords %q %q, want %q %q", tc.c.RedisPassword, tc.c.SentinelPassword, tc.redis, tc.sentinel)
			}
		})
	}
}

func TestRedactedAndNormalize(t *testing.T) {
	c := Config{SentinelAddrs: []string{" s-1:26379", "", "s-2:26379 "}, RedisPassword: "r", SentinelPassword: "s"}
	c.Normalize()
	if got := strings.Join(c.SentinelAddrs, ","); got != "s-1:26379,s-2:26379" {
		t.Errorf("Normalize: %q", got)
	}
	r := c.Redacted()
	if r.RedisPassword != "REDACTED" || r.SentinelPassword != "REDACTED" || c.RedisPassword != "r" {
		t.Errorf("Redacted = %+v (from %+v)", r, c)
	}
	if empty := (Config{}).Redacted(); empty.RedisPassword != "" || empty.SentinelPassword != "" {
		t.Errorf("Redacted of no passwords = %+v", empty)
	}
}
