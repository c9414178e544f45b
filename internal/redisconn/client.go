package redisconn

import (
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options tune a client beyond the Config. Zero values keep go-redis's
// defaults.
type Options struct {
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
	DB           int
	// NoRetries turns go-redis's own command retries off (MaxRetries -1):
	// the caller retries with its own backoff and deadline.
	NoRetries bool
	// OneDial makes one dial per attempt instead of go-redis's dial
	// retries. Clients of one node only (not Sentinel mode, which follows
	// the master its own way).
	OneDial bool
	// NoPipelinePool lets pipelines use the main pool's connections (no
	// separate pipeline pool).
	NoPipelinePool bool
	// Minimal is RESP2 without CLIENT SETINFO: a connection sends AUTH and
	// the caller's commands only (a small ACL suffices).
	Minimal bool
	// NoIdentity skips CLIENT SETINFO on connect.
	NoIdentity bool
	// ContextTimeout makes the context's deadline bound each command.
	ContextTimeout bool
	// Master, if set, runs ROLE on every new connection and rejects it
	// unless the server is the master (a stale Sentinel answer, a demoted
	// master behind a proxy): see MasterCheck.
	Master *MasterCheck
}

// NewClient returns a go-redis client for c's Redis: the node itself, or
// the master the Sentinels name, followed across failovers.
func NewClient(c Config, o Options) *redis.Client {
	if c.Sentinel() {
		u := o.universal(c.SentinelAddrs, c.RedisUsername, c.RedisPassword)
		u.MasterName = c.SentinelMaster
		u.SentinelUsername, u.SentinelPassword = c.SentinelUsername, c.SentinelPassword
		u.DialerRetries = 0 // the failover client follows the master its own way
		// The failover client keeps maintenance notifications off itself.
		return redis.NewFailoverClient(u.Failover())
	}
	return NewNodeClient(c.RedisAddr, c.RedisUsername, c.RedisPassword, o)
}

// NewNodeClient returns a client for the server at addr (a replica the
// Sentinels named, a test server), whatever its role.
func NewNodeClient(addr, username, password string, o Options) *redis.Client {
	return redis.NewClient(o.universal([]string{addr}, username, password).Simple())
}

// Node is NewNodeClient with c's Redis user and password.
func (c Config) Node(addr string, o Options) *redis.Client {
	return NewNodeClient(addr, c.RedisUsername, c.RedisPassword, o)
}

// NewSentinel returns a client for the Sentinel at addr with c's Sentinel
// user and password.
func (c Config) NewSentinel(addr string, o Options) *redis.SentinelClient {
	return redis.NewSentinelClient(o.universal([]string{addr}, c.SentinelUsername, c.SentinelPassword).Simple())
}

// universal is o as go-redis options, for one node (Simple) or the
// Sentinels (Failover).
func (o Options) universal(addrs []string, username, password string) *redis.UniversalOptions {
	u := &redis.UniversalOptions{
		Addrs:                 addrs,
		Username:              username,
		Password:              password,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolSize:              o.PoolSize,
		DB:                    o.DB,
		DisableIdentity:       o.Minimal || o.NoIdentity,
		ContextTimeoutEnabled: o.ContextTimeout,
		// Redis 7.0 has no maintenance notifications. go-redis's default
		// "auto" mode tries the handshake on every new connection and, when
		// it fails, rewrites the shared options without a common lock: a
		// data race between connections that dial at once (go test -race).
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if o.NoRetries {
		u.MaxRetries = -1
	}
	if o.OneDial {
		u.DialerRetries = 1
	}
	if o.NoPipelinePool {
		u.PipelinePoolSize = -1
	}
	if o.Minimal {
		u.Protocol = 2
	}
	if o.Master != nil {
		u.OnConnect = o.Master.onConnect
	}
	return u
}
