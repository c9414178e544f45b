package redisconn_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// One topology: the clients, the ROLE checks and the Sentinel lookup
// against real servers.
func TestClients(t *testing.T) {
	const password = "pw"
	top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 1, Password: password, SentinelPassword: "spw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	master, replica := top.Redis[0].Addr, top.Redis[1].Addr
	cfg := redisconn.Config{SentinelAddrs: top.SentinelAddrs(), SentinelMaster: redistest.MasterName,
		RedisPassword: password, SentinelPassword: "spw"}
	opts := redisconn.Options{DialTimeout: time.Second, NoRetries: true}

	t.Run("sentinel MasterAddr", func(t *testing.T) {
		for _, sa := range cfg.SentinelAddrs {
			got, err := cfg.MasterAddr(ctx, sa, opts)
			if err != nil || got != master {
				t.Errorf("MasterAddr(%s) = %q, %v; want %s", sa, got, err, master)
			}
		}
	})

	roles := []struct {
		name                  string
		addr                  string
		masterErr, replicaErr bool
	}{
		{"master", master, false, true},
		{"replica", replica, true, false},
	}
	for _, r := range roles {
		t.Run("ROLE of the "+r.name, func(t *testing.T) {
			c := cfg.Node(r.addr, opts)
			defer c.Close()
			if err := redisconn.CheckMaster(ctx, c); (err != nil) != r.masterErr || (err != nil && !errors.Is(err, redisconn.ErrNotMaster)) {
				t.Errorf("CheckMaster = %v", err)
			}
			if err := redisconn.CheckReplica(ctx, c); (err != nil) != r.replicaErr {
				t.Errorf("CheckReplica = %v", err)
			}
		})
	}

	modes := []struct {
		name     string
		cfg      redisconn.Config
		wantFail bool // every new connection refused: not the master
	}{
		{"sentinel mode", cfg, false},
		{"single node, the master", redisconn.Config{RedisAddr: master, RedisPassword: password}, false},
		{"single node, a replica", redisconn.Config{RedisAddr: replica, RedisPassword: password}, true},
	}
	for _, m := range modes {
		t.Run("NewClient "+m.name, func(t *testing.T) {
			var rejected atomic.Int32
			o := opts
			o.Master = &redisconn.MasterCheck{Rejected: func(role string) { rejected.Add(1) }}
			c := redisconn.NewClient(m.cfg, o)
			defer c.Close()
			err := c.Set(ctx, "redisconn-test", "v", 0).Err()
			if m.wantFail {
				if !errors.Is(err, redisconn.ErrNotMaster) || rejected.Load() == 0 {
					t.Fatalf("SET on a replica: %v (%d rejected), want ErrNotMaster", err, rejected.Load())
				}
				return
			}
			if err != nil || rejected.Load() != 0 {
				t.Fatalf("SET: %v (%d rejected)", err, rejected.Load())
			}
		})
	}
}
