package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/ingest/client"
)

// The ingest binary works as the shipped `ingest` ACL user (redis/redis.conf):
// connection setup, the checked first flush (EVALSHA/EVAL), the WATCH-guarded
// MULTI/EXEC flushes after it, and WAIT for the replica.
func TestIngestAsShippedACLUser(t *testing.T) {
	conf, err := os.ReadFile("../../redis/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return "ingest-acl-" + user }
	users, err := redistest.ShippedUsers(string(conf), pw)
	if err != nil {
		t.Fatal(err)
	}
	master := redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: pw("admin"), ExtraConfig: users})
	redistest.NewRedis(t, redistest.RedisOptions{Username: "admin", Password: pw("admin"), ReplicaOf: master.Addr,
		ExtraConfig: append([]string{"masteruser replication", "masterauth " + pw("replication")}, users...)})
	in := ingesttest.Start(t, master.Addr,
		ingesttest.WithEnv("INGEST_REDIS_USERNAME", "ingest"), ingesttest.WithEnv("INGEST_REDIS_PASSWORD", pw("ingest")),
		ingesttest.WithEnv("INGEST_MIN_REPLICAS", "1"), ingesttest.WithEnv("INGEST_BATCH_MAX", "50"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: in.DataAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 500 // at least 10 flushes per lane at INGEST_BATCH_MAX=50
	for i := range n {
		if _, err := c.Send(ctx, []byte(fmt.Sprintf("acl-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		t.Fatalf("acks as user ingest: %v\n%s", err, in.Logs())
	}
	admin := master.Client()
	defer admin.Close()
	if got, err := admin.LLen(ctx, "data_queue").Result(); err != nil || got != n {
		t.Fatalf("LLEN data_queue = %d, %v; want %d", got, err, n)
	}
}
