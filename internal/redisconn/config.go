// Package redisconn is how every sluice binary reaches Redis: the
// connection settings a service embeds in its configuration (one node, or
// the Sentinels and the master name they monitor, with users and passwords)
// and their validation; go-redis clients built from them with the options
// every part needs (maintenance notifications off, retries as the caller
// asks, an optional ROLE check on each new connection); the Sentinel and
// ROLE lookups; and go-redis's own log lines routed into slog.
package redisconn

import (
	"errors"

	"github.com/sluice-ingest/sluice/internal/envconfig"
)

// DefaultKey is the Redis list the messages go to: ingest pushes to it,
// consumers take from it, backup and status read its length. Compose and
// Terraform set the same name (tests compare them).
const DefaultKey = "data_queue"

// Config is the connection to Redis as each service's configuration embeds
// it: its variables take the service's prefix (INGEST_REDIS_ADDR,
// BACKUP_SENTINEL_ADDRS, ...). Set RedisAddr (one node) or SentinelAddrs
// (Sentinel mode: the master is asked for), not both.
type Config struct {
	RedisAddr            string   `env:"REDIS_ADDR" desc:"single-node mode: Redis host:port (exclusive with the SENTINEL_ADDRS variable)"`
	SentinelAddrs        []string `env:"SENTINEL_ADDRS" envSeparator:"," desc:"Sentinel mode: comma-separated Sentinel host:port list"`
	SentinelMaster       string   `env:"SENTINEL_MASTER" envDefault:"sluice" desc:"master name monitored by the Sentinels"`
	RedisUsername        string   `env:"REDIS_USERNAME" desc:"Redis ACL user (the shipped stack: the service's own); empty means the default user"`
	RedisPassword        string   `env:"REDIS_PASSWORD" desc:"Redis AUTH password (setting it and the _FILE variant is an error)"`
	RedisPasswordFile    string   `env:"REDIS_PASSWORD_FILE" desc:"file holding the Redis password (trailing newline stripped)"`
	SentinelUsername     string   `env:"SENTINEL_USERNAME" desc:"Sentinel ACL user; empty means the default user (the shipped Sentinels have a password only)"`
	SentinelPassword     string   `env:"SENTINEL_PASSWORD" desc:"Sentinel AUTH password; empty means no Sentinel auth (not the Redis password)"`
	SentinelPasswordFile string   `env:"SENTINEL_PASSWORD_FILE" desc:"file holding the Sentinel password"`
}

// Sentinel reports whether the configuration is in Sentinel mode.
func (c Config) Sentinel() bool { return len(c.SentinelAddrs) > 0 }

// Normalize trims the spaces around each Sentinel address and drops empty
// ones ("s1:26379, s2:26379").
func (c *Config) Normalize() { c.SentinelAddrs = envconfig.TrimList(c.SentinelAddrs) }

// Validate reports every invalid setting, each naming its variable with
// the service's prefix ("INGEST_REDIS_ADDR: ..."). Call it before
// ReadSecrets: it reports a password set both ways.
func (c Config) Validate(prefix string) error {
	p := envconfig.Problems{Prefix: prefix}
	switch {
	case c.RedisAddr == "" && len(c.SentinelAddrs) == 0:
		p.Addf("SENTINEL_ADDRS", "set it (or %sREDIS_ADDR for a single node)", prefix)
	case c.RedisAddr != "" && len(c.SentinelAddrs) > 0:
		p.Addf("REDIS_ADDR", "set it or %sSENTINEL_ADDRS, not both", prefix)
	case c.RedisAddr != "":
		p.HostPort("REDIS_ADDR", c.RedisAddr, true)
	default:
		c.validateSentinels(&p)
	}
	c.validateSecrets(&p)
	return p.Err()
}

// ValidateSentinel is Validate for a tool that needs the Sentinels (it
// reads their view): single-node mode is a problem.
func (c Config) ValidateSentinel(prefix string) error {
	p := envconfig.Problems{Prefix: prefix}
	if c.RedisAddr != "" {
		p.Addf("REDIS_ADDR", "must not be set: set %sSENTINEL_ADDRS", prefix)
	}
	if len(c.SentinelAddrs) == 0 {
		p.Addf("SENTINEL_ADDRS", "must not be empty")
	}
	c.validateSentinels(&p)
	c.validateSecrets(&p)
	return p.Err()
}

func (c Config) validateSentinels(p *envconfig.Problems) {
	for _, a := range c.SentinelAddrs {
		p.HostPort("SENTINEL_ADDRS", a, true)
	}
	if c.SentinelMaster == "" {
		p.Addf("SENTINEL_MASTER", "must not be empty in Sentinel mode")
	}
}

func (c Config) validateSecrets(p *envconfig.Problems) {
	if c.RedisPassword != "" && c.RedisPasswordFile != "" {
		p.Addf("REDIS_PASSWORD", "set it or %sREDIS_PASSWORD_FILE, not both", p.Prefix)
	}
	if c.SentinelPassword != "" && c.SentinelPasswordFile != "" {
		p.Addf("SENTINEL_PASSWORD", "set it or %sSENTINEL_PASSWORD_FILE, not both", p.Prefix)
	}
}

// ReadSecrets fills the passwords from their _FILE variables; each error
// names its variable with the service's prefix.
func (c *Config) ReadSecrets(prefix string) error {
	return errors.Join(
		envconfig.ReadSecret(&c.RedisPassword, c.RedisPasswordFile, prefix+"REDIS_PASSWORD_FILE"),
		envconfig.ReadSecret(&c.SentinelPassword, c.SentinelPasswordFile, prefix+"SENTINEL_PASSWORD_FILE"))
}

// Redacted is c with the passwords replaced, for logs.
func (c Config) Redacted() Config {
	if c.RedisPassword != "" {
		c.RedisPassword = "REDACTED"
	}
	if c.SentinelPassword != "" {
		c.SentinelPassword = "REDACTED"
	}
	return c
}
