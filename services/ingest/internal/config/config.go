// Package config loads and validates the ingest service configuration from
// INGEST_* environment variables.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// Prefix is the prefix of every environment variable.
const Prefix = "INGEST_"

// Config is the whole ingest configuration. Each field is one INGEST_*
// variable; `desc` feeds the `ingest -h` table.
type Config struct {
	ListenAddr string `env:"LISTEN_ADDR" envDefault:":9501" desc:"TCP address for client data"`
	HTTPAddr   string `env:"HTTP_ADDR" envDefault:":9502" desc:"HTTP address for POST /v1/messages; off disables it (empty means the default)"`
	NoAckAddr  string `env:"NOACK_ADDR" envDefault:":9503" desc:"TCP address for senders that never read (syslog-ng network(), nc): same framing, the server never writes; off disables it"`
	AdminAddr  string `env:"ADMIN_ADDR" envDefault:":8086" desc:"HTTP address for /live, /ready, /metrics (and pprof)"`

	redisconn.Config
	RedisKey    string `env:"REDIS_KEY" desc:"Redis list that messages are RPUSHed to"`
	MaxQueueLen int64  `env:"MAX_QUEUE_LEN" envDefault:"0" desc:"bound of the list: at this length flushes wait (no reads, no acks) and fail with QUEUE_FULL after INGEST_REDIS_RETRY_TIMEOUT; 0 = none"`

	MinReplicas       int           `env:"MIN_REPLICAS" envDefault:"0" desc:"replicas that must confirm each flush (WAIT) before it is acked; 0 = no WAIT"`
	WaitTimeout       time.Duration `env:"WAIT_TIMEOUT" envDefault:"1s" desc:"timeout of one WAIT; short answers are retried until INGEST_REDIS_RETRY_TIMEOUT"`
	BatchMax          int           `env:"BATCH_MAX" envDefault:"1024" desc:"messages per flush (one multi-value RPUSH)"`
	BatchLinger       time.Duration `env:"BATCH_LINGER" envDefault:"200us" desc:"longest a message waits for its batch to fill; 0 = flush as soon as the lane is free"`
	Writers           int           `env:"WRITERS" envDefault:"4" desc:"flush lanes: parallel Redis connections, one flush in flight each"`
	MaxFrameBytes     int           `env:"MAX_FRAME_BYTES" envDefault:"1048576" desc:"largest frame; bigger ones get FRAME_TOO_LARGE"`
	MaxInflightBytes  int           `env:"MAX_INFLIGHT_BYTES" envDefault:"16777216" desc:"message bytes read but not yet acked; readers stop reading beyond it"`
	MaxBufferBytes    int           `env:"MAX_BUFFER_BYTES" envDefault:"33554432" desc:"TCP read buffers beyond 4 KiB per connection (busy connections, long frames), all connections together; a connection waits for room"`
	RedisRetryTimeout time.Duration `env:"REDIS_RETRY_TIMEOUT" envDefault:"30s" desc:"how long a flush is retried before its connections get UNAVAILABLE"`
	RedisTimeout      time.Duration `env:"REDIS_TIMEOUT" envDefault:"5s" desc:"dial and I/O timeout of one Redis round trip (WAIT time comes on top)"`

	MaxConns        int           `env:"MAX_CONNS" envDefault:"10000" desc:"connection cap; beyond it clients get TOO_MANY_CONNECTIONS"`
	IdleTimeout     time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m" desc:"close a connection that sent nothing and has nothing pending for this long; 0 = never"`
	FrameTimeout    time.Duration `env:"FRAME_TIMEOUT" envDefault:"30s" desc:"a frame must be complete this long after its first byte, or FRAME_TIMEOUT (slow or stuck senders)"`
	WriteTimeout    time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" desc:"deadline for a connection's final lines (OK n, ERR) at drain and close, and for an HTTP answer; acks in between have none"`
	DrainDelay      time.Duration `env:"DRAIN_DELAY" envDefault:"5s" desc:"on SIGTERM: keep serving this long while /ready is 503"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" desc:"on SIGTERM: upper bound for the whole drain"`
	ProxyProtocol   bool          `env:"PROXY_PROTOCOL" envDefault:"false" desc:"expect a PROXY protocol (v1/v2) header on TCP data connections (both TCP ports)"`

	HTTPMaxBodyBytes int           `env:"HTTP_MAX_BODY_BYTES" envDefault:"4194304" desc:"largest HTTP request body (after gzip decoding); at most half of INGEST_MAX_INFLIGHT_BYTES"`
	HTTPBudgetWait   time.Duration `env:"HTTP_BUDGET_WAIT" envDefault:"5s" desc:"how long an HTTP request waits for the in-flight budget before 429"`

	ReadyInterval time.Duration `env:"READY_INTERVAL" envDefault:"1s" desc:"how often the cached /ready Redis check runs"`
	ReadyTimeout  time.Duration `env:"READY_TIMEOUT" envDefault:"500ms" desc:"timeout of one /ready Redis check"`
	LogLevel      string        `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error"`
	Pprof         bool          `env:"PPROF" envDefault:"false" desc:"serve /debug/pprof/ on the admin address"`
}

// EnvDefaults gives INGEST_REDIS_KEY its default (envconfig.Defaulter).
func (Config) EnvDefaults() map[string]string {
	return map[string]string{"REDIS_KEY": redisconn.DefaultKey}
}

// Load reads the configuration through getenv, reads the password files
// and validates the result.
func Load(getenv func(string) string) (Config, error) {
	var cfg Config
	perr := envconfig.Parse(&cfg, Prefix, getenv)
	cfg.Normalize()
	invalid := cfg.Validate() // before the files fill the passwords: it reports setting both
	return cfg, errors.Join(envconfig.Join(perr, invalid), cfg.ReadSecrets(Prefix))
}

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	p := envconfig.Problems{Prefix: Prefix}
	p.HostPort("LISTEN_ADDR", c.ListenAddr, false)
	if c.HTTPEnabled() {
		p.HostPort("HTTP_ADDR", c.HTTPAddr, false)
	}
	if c.NoAckEnabled() {
		p.HostPort("NOACK_ADDR", c.NoAckAddr, false)
	}
	p.HostPort("ADMIN_ADDR", c.AdminAddr, false)
	if c.RedisKey == "" {
		p.Addf("REDIS_KEY", "must not be empty")
	}
	if c.MaxQueueLen < 0 {
		p.Addf("MAX_QUEUE_LEN", "%d is negative", c.MaxQueueLen)
	}
	if c.MinReplicas < 0 {
		p.Addf("MIN_REPLICAS", "%d is negative", c.MinReplicas)
	}
	if c.WaitTimeout < time.Millisecond {
		p.Addf("WAIT_TIMEOUT", "%s is below 1ms (WAIT counts milliseconds; 0 would block forever)", c.WaitTimeout)
	}
	if c.BatchMax < 1 || c.BatchMax > 1<<20 {
		p.Addf("BATCH_MAX", "%d is outside 1..1048576", c.BatchMax)
	}
	if c.BatchLinger < 0 {
		p.Addf("BATCH_LINGER", "%s is negative", c.BatchLinger)
	}
	if c.Writers < 1 || c.Writers > 256 {
		p.Addf("WRITERS", "%d is outside 1..256", c.Writers)
	}
	if c.MaxFrameBytes < 1 || c.MaxFrameBytes > 512<<20 {
		p.Addf("MAX_FRAME_BYTES", "%d is outside 1..536870912 (Redis proto-max-bulk-len)", c.MaxFrameBytes)
	}
	if min := MinInflightBytes(c.MaxFrameBytes); c.MaxInflightBytes < min {
		p.Addf("MAX_INFLIGHT_BYTES", "%d is below %d (twice the read buffer for INGEST_MAX_FRAME_BYTES=%d)", c.MaxInflightBytes, min, c.MaxFrameBytes)
	}
	if min := MinInflightBytes(c.MaxFrameBytes); c.MaxBufferBytes < min {
		p.Addf("MAX_BUFFER_BYTES", "%d is below %d (twice the read buffer for INGEST_MAX_FRAME_BYTES=%d)", c.MaxBufferBytes, min, c.MaxFrameBytes)
	}
	if c.HTTPMaxBodyBytes < 1 || c.HTTPMaxBodyBytes > c.MaxInflightBytes/2 {
		p.Addf("HTTP_MAX_BODY_BYTES", "%d is outside 1..%d (half of INGEST_MAX_INFLIGHT_BYTES)", c.HTTPMaxBodyBytes, c.MaxInflightBytes/2)
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			p.Addf(name, "%s must be positive", d)
		}
	}
	positive("REDIS_RETRY_TIMEOUT", c.RedisRetryTimeout)
	positive("REDIS_TIMEOUT", c.RedisTimeout)
	positive("WRITE_TIMEOUT", c.WriteTimeout)
	positive("READY_INTERVAL", c.ReadyInterval)
	positive("READY_TIMEOUT", c.ReadyTimeout)
	positive("HTTP_BUDGET_WAIT", c.HTTPBudgetWait)
	positive("FRAME_TIMEOUT", c.FrameTimeout)
	if c.MaxConns < 1 {
		p.Addf("MAX_CONNS", "%d must be at least 1", c.MaxConns)
	}
	if c.IdleTimeout < 0 {
		p.Addf("IDLE_TIMEOUT", "%s is negative", c.IdleTimeout)
	}
	if c.DrainDelay < 0 {
		p.Addf("DRAIN_DELAY", "%s is negative", c.DrainDelay)
	}
	if c.ShutdownTimeout <= c.DrainDelay {
		p.Addf("SHUTDOWN_TIMEOUT", "%s must be longer than INGEST_DRAIN_DELAY (%s)", c.ShutdownTimeout, c.DrainDelay)
	}
	if _, err := c.SlogLevel(); err != nil {
		p.Addf("LOG_LEVEL", "%v", err)
	}
	return errors.Join(c.Config.Validate(Prefix), p.Err())
}

// MinInflightBytes is the smallest valid INGEST_MAX_INFLIGHT_BYTES (and
// INGEST_MAX_BUFFER_BYTES) for a frame size limit: two full read buffers,
// so a reader can always make progress.
func MinInflightBytes(maxFrame int) int {
	return 2 * max(maxFrame+2, protocol.LargeBufferSize)
}

// Off is the address value that turns an optional front end off
// (INGEST_HTTP_ADDR, INGEST_NOACK_ADDR): an empty value means the default.
const Off = "off"

// HTTPEnabled reports whether the HTTP front end runs.
func (c Config) HTTPEnabled() bool { return c.HTTPAddr != Off }

// NoAckEnabled reports whether the no-ack TCP front end runs.
func (c Config) NoAckEnabled() bool { return c.NoAckAddr != Off }

// SlogLevel parses LogLevel.
func (c Config) SlogLevel() (slog.Level, error) { return envconfig.SlogLevel(c.LogLevel) }

// Variables lists every variable in declaration order.
func Variables() []envconfig.Variable { return envconfig.Variables[Config](Prefix) }

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error { return envconfig.PrintTable(w, Variables()) }

// String formats the configuration for logs with passwords redacted.
func (c Config) String() string {
	r := c
	r.Config = c.Config.Redacted()
	type plain Config
	return fmt.Sprintf("%+v", plain(r))
}
