package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

// The ACL users of the shipped redis.conf, completed as the entrypoint
// completes them, on real redis-server processes: each user may run what
// its client sends and is refused the rest; replication runs as
// `replication`.
func TestShippedACLUsers(t *testing.T) {
	needBinaries(t, "redis-server")
	conf, err := os.ReadFile("redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return "acl-test-" + user }
	users, err := redistest.ShippedUsers(string(conf), pw)
	if err != nil {
		t.Fatal(err)
	}
	master := redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: pw("admin"), ExtraConfig: users})
	replica := redistest.NewRedis(t, redistest.RedisOptions{
		Username: "admin", Password: pw("admin"), ReplicaOf: master.Addr,
		ExtraConfig: append([]string{"masteruser replication", "masterauth " + pw("replication")}, users...),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	login := func(user string) *redis.Client {
		c := redis.NewClient(&redis.Options{
			Addr: master.Addr, Username: user, Password: pw(user), MaxRetries: -1, Protocol: 2,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		t.Cleanup(func() { c.Close() })
		return c
	}

	// The replica syncs with the replication user (bounded wait).
	rc := replica.Client()
	defer rc.Close()
	for i := 0; ; i++ {
		info, err := rc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		if i == 100 {
			t.Fatalf("replica link not up with masteruser replication: %v %s\n%s", err, info, replica.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}

	type cmd []any
	tests := []struct {
		user    string
		allowed []cmd
		refused []cmd
	}{
		{"ingest",
			[]cmd{{"ping"}, {"role"}, {"client", "info"}, {"rpush", "data_queue", "a"}, {"llen", "data_queue"},
				{"set", "sluice:lane:x", "1", "px", "60000"}, {"get", "sluice:lane:x"}, {"watch", "sluice:lane:x"}, {"unwatch"},
				{"eval", "redis.call('SET', KEYS[2], '2'); return redis.call('RPUSH', KEYS[1], 'b')", "2", "data_queue", "sluice:lane:x"},
				{"wait", "1", "1000"}},
			[]cmd{{"flushall"}, {"config", "set", "maxmemory", "1"}, {"keys", "*"}, {"get", "other"}, {"del", "data_queue"},
				{"eval", "return redis.call('DEL', KEYS[1])", "1", "data_queue"}, {"acl", "list"}, {"shutdown"}}},
		{"backup",
			[]cmd{{"ping"}, {"role"}, {"replconf", "capa", "eof"}},
			[]cmd{{"get", "data_queue"}, {"lrange", "data_queue", "0", "-1"}, {"flushall"}, {"config", "set", "maxmemory", "1"}, {"rpush", "data_queue", "x"}}},
		{"replication",
			[]cmd{{"ping"}, {"replconf", "capa", "eof"}},
			[]cmd{{"get", "data_queue"}, {"flushall"}, {"info"}, {"config", "set", "maxmemory", "1"}}},
		{"sentinel",
			[]cmd{{"ping"}, {"role"}, {"info", "replication"}, {"publish", "__sentinel__:hello", "x"}, {"client", "setname", "sentinel-x"}},
			[]cmd{{"get", "data_queue"}, {"flushall"}, {"config", "set", "maxmemory", "1"}, {"publish", "other", "x"}, {"keys", "*"}}},
		{"consumer",
			[]cmd{{"ping"}, {"blmove", "data_queue", "data_queue:processing:c", "left", "right", "1"},
				{"lmove", "data_queue", "data_queue:processing:c", "left", "right"}, {"llen", "data_queue:processing:c"},
				{"lrem", "data_queue:processing:c", "1", "c1"}, {"lmove", "data_queue:processing:c", "data_queue", "right", "left"}},
			[]cmd{{"flushall"}, {"config", "set", "maxmemory", "1"}, {"keys", "*"}, {"get", "sluice:lane:x"}, {"del", "data_queue"},
				{"lrange", "data_queue", "0", "-1"}, {"rpush", "data_queue", "x"}, {"rpush", "other", "x"}}},
		{"monitoring",
			[]cmd{{"ping"}, {"info", "all"}, {"config", "get", "maxmemory"}, {"slowlog", "len"}, {"latency", "latest"},
				{"client", "setname", "exporter"}, {"type", "data_queue"}, {"llen", "data_queue"}},
			[]cmd{{"lrange", "data_queue", "0", "-1"}, {"rpush", "data_queue", "x"}, {"config", "set", "maxmemory", "1"}, {"flushall"}, {"llen", "other"}}},
		{"status",
			[]cmd{{"ping"}, {"info", "replication"}, {"llen", "data_queue"}},
			[]cmd{{"rpush", "data_queue", "x"}, {"get", "data_queue"}, {"flushall"}, {"config", "set", "maxmemory", "1"}}},
		{"admin",
			[]cmd{{"acl", "list"}, {"config", "get", "maxmemory"}, {"llen", "data_queue"}},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			c := login(tc.user)
			for _, a := range tc.allowed {
				if err := c.Do(ctx, a...).Err(); err != nil && err != redis.Nil {
					t.Errorf("%s %v: %v, want allowed", tc.user, a, err)
				}
			}
			for _, r := range tc.refused {
				err := c.Do(ctx, r...).Err()
				// Redis 7.0 words a refusal inside a script differently.
				if err == nil || !(strings.Contains(err.Error(), "NOPERM") || strings.Contains(err.Error(), "can't run this command")) {
					t.Errorf("%s %v: err = %v, want NOPERM", tc.user, r, err)
				}
			}
		})
	}

	// What services/backup/internal/snapshot sends, on a raw connection:
	// the backup user gets a full RDB over the replication protocol.
	t.Run("backup takes an RDB", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", master.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial redis %s: %v", master.Addr, err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		send := func(args ...string) string {
			var b strings.Builder
			fmt.Fprintf(&b, "*%d\r\n", len(args))
			for _, a := range args {
				fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
			}
			if _, err := conn.Write([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("%v: %v", args, err)
				}
				if line = strings.TrimSpace(line); line != "" { // keepalives
					return line
				}
			}
		}
		for _, c := range [][]string{{"AUTH", "backup", pw("backup")}, {"REPLCONF", "rdb-only", "1"}, {"REPLCONF", "capa", "eof"}} {
			if got := send(c...); got != "+OK" {
				t.Fatalf("%v: %q", c[:2], got)
			}
		}
		if got := send("PSYNC", "?", "-1"); !strings.HasPrefix(got, "+FULLRESYNC ") {
			t.Fatalf("PSYNC as backup: %q", got)
		}
		for { // the RDB bulk header ($EOF:<mark> or $<len>), after "\n" keepalives
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after FULLRESYNC: %v, want the RDB", err)
			}
			if line = strings.TrimSpace(line); line != "" {
				if !strings.HasPrefix(line, "$") {
					t.Fatalf("after FULLRESYNC: %q, want the RDB", line)
				}
				break
			}
		}
	})

	t.Run("default user is off", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: master.Addr, Password: pw("admin"), MaxRetries: -1, Protocol: 2,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
		defer c.Close()
		if err := c.Ping(ctx).Err(); err == nil {
			t.Error("AUTH with a password only (the default user) succeeded")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: master.Addr, Username: "ingest", Password: pw("admin"), MaxRetries: -1, Protocol: 2,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
		defer c.Close()
		if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("ingest with admin's password: %v, want WRONGPASS", err)
		}
	})
}

// A master restarted from its AOF (SIGKILL, then start) keeps what the
// ingest user wrote in MULTI/EXEC transactions and through the lane
// script. Redis 7.0 replays the AOF as the default user: with the default
// user stripped of its permissions it skipped every transaction, and a
// restarted master lost acknowledged data (found by fault scenario 04).
func TestAOFReplayWithShippedUsers(t *testing.T) {
	needBinaries(t, "redis-server")
	conf, err := os.ReadFile("redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return "aof-test-" + user }
	users, err := redistest.ShippedUsers(string(conf), pw)
	if err != nil {
		t.Fatal(err)
	}
	r := redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: pw("admin"), ExtraConfig: users})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ing := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "ingest", Password: pw("ingest"), Protocol: 2})
	defer ing.Close()
	if _, err := ing.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "data_queue", "t1", "t2")
		p.Set(ctx, "sluice:lane:aof", "1", time.Minute)
		return nil
	}); err != nil {
		t.Fatalf("MULTI/EXEC as ingest: %v", err)
	}
	if err := ing.Eval(ctx, "redis.call('SET', KEYS[2], '2') return redis.call('RPUSH', KEYS[1], 's1')", []string{"data_queue", "sluice:lane:aof"}).Err(); err != nil {
		t.Fatalf("script as ingest: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // appendfsync everysec; SIGKILL loses nothing written anyway
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	admin := r.Client()
	defer admin.Close()
	got, err := admin.LRange(ctx, "data_queue", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "t1,t2,s1" {
		t.Fatalf("after the restart data_queue = %q, want t1,t2,s1\n%s", got, r.Logs())
	}
	if strings.Contains(r.Logs(), "NOPERM") {
		t.Errorf("the AOF replay was refused commands:\n%s", r.Logs())
	}
}
