//go:build e2e

package e2e

// The Stack API before the split into handles, kept for one commit so that
// the call sites move in a separate, mechanical commit.

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
)

// Options shapes one stack (replaced by Option).
type Options struct {
	MinReplicas     int
	DownAfter       time.Duration
	FailoverTimeout time.Duration
	IngestReplicas  int
	IngestEnv       map[string]string
	RedisEnv        map[string]string
}

func StartStack(t *testing.T, o Options) *Stack {
	t.Helper()
	return startStack(t, WithMinReplicas(o.MinReplicas), WithDownAfter(o.DownAfter), WithFailoverTimeout(o.FailoverTimeout),
		WithIngestReplicas(o.IngestReplicas), WithIngestEnv(o.IngestEnv), WithRedisEnv(o.RedisEnv))
}

func (s *Stack) Options() Config                  { return s.Config() }
func (s *Stack) IngestNames() []string            { return s.Ingest.Names() }
func (s *Stack) NetworkName() string              { return s.Containers.Network() }
func (s *Stack) ContainerName(name string) string { return s.Containers.ContainerName(name) }
func (s *Stack) ContainerID(name string) string   { return s.Node(name).ID() }
func (s *Stack) Docker() *client.Client           { return s.Containers.Client() }
func (s *Stack) Image(part string) string         { return s.Containers.Image(part) }
func (s *Stack) HostAddr(ctx context.Context, name, port string) (string, error) {
	return s.Node(name).HostAddr(ctx, port)
}
func (s *Stack) mustHostAddr(name, port string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.HostAddr(ctx, name, port)
	if err != nil {
		s.Containers.t.Errorf("e2e: %v", err)
		return "127.0.0.1:0"
	}
	return addr
}
func (s *Stack) HAProxyAddr() string { return s.mustHostAddr("haproxy", dataPort) }
func (s *Stack) StatsURL() string    { return "http://" + s.mustHostAddr("haproxy", statsPort) + "/stats" }
func (s *Stack) IngestAdminURL(ctx context.Context, name string) (string, error) {
	return s.Ingest.AdminURL(ctx, name)
}
func (s *Stack) IngestDataAddr(ctx context.Context, name string) (string, error) {
	return s.Ingest.DataAddr(ctx, name)
}
func (s *Stack) Redis(name string) *redis.Client            { return s.redis.Client(name) }
func (s *Stack) Sentinel(name string) *redis.SentinelClient { return s.redis.Sentinel(name) }
func (s *Stack) State(ctx context.Context, name string) (container.ContainerState, error) {
	return s.Node(name).State(ctx)
}
func (s *Stack) Kill(ctx context.Context, name string) error { return s.Node(name).Kill(ctx) }
func (s *Stack) Signal(ctx context.Context, name, sig string) error {
	return s.Node(name).Signal(ctx, sig)
}
func (s *Stack) Stop(ctx context.Context, name string, timeout time.Duration) error {
	return s.Node(name).Stop(ctx, timeout)
}
func (s *Stack) Start(ctx context.Context, name string) error   { return s.Node(name).Start(ctx) }
func (s *Stack) Restart(ctx context.Context, name string) error { return s.Node(name).Restart(ctx) }
func (s *Stack) Pause(ctx context.Context, name string) error   { return s.Node(name).Pause(ctx) }
func (s *Stack) Unpause(ctx context.Context, name string) error { return s.Node(name).Unpause(ctx) }
func (s *Stack) IP(ctx context.Context, name string) (string, error) {
	return s.Node(name).IP(ctx)
}
func (s *Stack) Exec(ctx context.Context, name string, cmd ...string) (string, error) {
	return s.Node(name).Exec(ctx, cmd...)
}
func (s *Stack) Logs(ctx context.Context, name string) string { return s.Node(name).Logs(ctx) }
func (s *Stack) WaitIngestReady(ctx context.Context, name string) error {
	return s.Ingest.WaitReady(ctx, name)
}
func (s *Stack) IngestGet(ctx context.Context, name, path string) (int, string, error) {
	return s.Ingest.Get(ctx, name, path)
}
func (s *Stack) IngestMetrics(ctx context.Context, name string) (map[string]float64, error) {
	return s.Ingest.Metrics(ctx, name)
}
func (s *Stack) HAProxyStats(ctx context.Context) ([]StatRow, error) { return s.HAProxy.Stats(ctx) }
func (s *Stack) IngestServers(ctx context.Context) ([]StatRow, error) {
	return s.HAProxy.IngestServers(ctx)
}
func (s *Stack) IngestServer(ctx context.Context, name string) (StatRow, error) {
	return s.HAProxy.IngestServer(ctx, name)
}
func (s *Stack) WaitHAProxyUp(ctx context.Context, n int) error { return s.HAProxy.WaitUp(ctx, n) }
func (s *Stack) WaitServerStatus(ctx context.Context, name, want string) (StatRow, error) {
	return s.HAProxy.WaitServerStatus(ctx, name, want)
}
func (s *Stack) Master(ctx context.Context) (string, error) { return s.redis.Master(ctx) }
func (s *Stack) Replication(ctx context.Context, name string) (Replication, error) {
	return s.redis.Replication(ctx, name)
}
func (s *Stack) WaitConverged(ctx context.Context) error { return s.redis.WaitConverged(ctx) }
func (s *Stack) ReadQueue(ctx context.Context, name string) ([]string, error) {
	return s.redis.ReadQueue(ctx, name)
}
func (s *Stack) ReadAll(ctx context.Context) (string, []string, map[string][]string, error) {
	return s.redis.ReadAll(ctx)
}
