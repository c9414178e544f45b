// Package config loads and validates the consumer CLI's configuration from
// CONSUMER_* environment variables.
package config

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
)

// Prefix is the prefix of every environment variable.
const Prefix = "CONSUMER_"

// Config is the whole consumer configuration. Each field is one CONSUMER_*
// variable; `desc` feeds the `consumer -h` table.
type Config struct {
	SentinelAddrs        []string `env:"SENTINEL_ADDRS" envSeparator:"," desc:"Sentinel mode: comma-separated Sentinel host:port list; the consumer follows the master"`
	SentinelMaster       string   `env:"SENTINEL_MASTER" envDefault:"sluice" desc:"master name monitored by the Sentinels"`
	RedisAddr            string   `env:"REDIS_ADDR" desc:"single-node mode: the Redis master's host:port (exclusive with CONSUMER_SENTINEL_ADDRS)"`
	RedisUsername        string   `env:"REDIS_USERNAME" desc:"Redis ACL user (the shipped stack: consumer); empty means the default user"`
	RedisPassword        string   `env:"REDIS_PASSWORD" desc:"Redis AUTH password (setting it and the _FILE variant is an error)"`
	RedisPasswordFile    string   `env:"REDIS_PASSWORD_FILE" desc:"file holding the Redis password (trailing newline stripped)"`
	SentinelUsername     string   `env:"SENTINEL_USERNAME" desc:"Sentinel ACL user; empty: the Sentinels' default user"`
	SentinelPassword     string   `env:"SENTINEL_PASSWORD" desc:"Sentinel AUTH password; empty means no Sentinel auth"`
	SentinelPasswordFile string   `env:"SENTINEL_PASSWORD_FILE" desc:"file holding the Sentinel password"`
	Key                  string   `env:"KEY" envDefault:"data_queue" desc:"the queue list"`
	Name                 string   `env:"NAME" desc:"consumer name, unique among live consumers; its processing list is <KEY>:processing:<NAME> (default: the hostname)"`

	Batch        int           `env:"BATCH" envDefault:"100" desc:"messages taken per round (one BLMOVE, then LMOVEs in one pipeline), written, synced and acked together"`
	Block        time.Duration `env:"BLOCK" envDefault:"1s" desc:"how long a round waits for a first message (whole seconds); SIGTERM waits for it too"`
	RetryTimeout time.Duration `env:"RETRY_TIMEOUT" envDefault:"30s" desc:"Redis errors (a failover) are retried for this long, then the consumer exits 1"`
	LogLevel     string        `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error (JSON logs on stderr)"`
}

// Load reads the configuration through getenv, fills the name from
// hostname when it is unset, reads the password files and validates the
// result; the error names every bad setting.
func Load(getenv func(string) string, hostname func() (string, error)) (Config, error) {
	var cfg Config
	perr := envconfig.Parse(&cfg, Prefix, getenv)
	cfg.SentinelAddrs = envconfig.TrimList(cfg.SentinelAddrs)
	var herr error
	if cfg.Name == "" {
		if cfg.Name, herr = hostname(); herr != nil {
			herr = &envconfig.VarError{Name: Prefix + "NAME", Err: errors.Join(errors.New("unset and no hostname"), herr)}
		}
	}
	invalid := cfg.Validate() // before the files fill the passwords: it reports setting both
	return cfg, errors.Join(envconfig.Join(perr, invalid), herr,
		envconfig.ReadSecret(&cfg.RedisPassword, cfg.RedisPasswordFile, Prefix+"REDIS_PASSWORD_FILE"),
		envconfig.ReadSecret(&cfg.SentinelPassword, cfg.SentinelPasswordFile, Prefix+"SENTINEL_PASSWORD_FILE"))
}

// Hostname is os.Hostname, the default of CONSUMER_NAME.
func Hostname() (string, error) { return os.Hostname() }

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	p := envconfig.Problems{Prefix: Prefix}
	switch {
	case c.RedisAddr == "" && len(c.SentinelAddrs) == 0:
		p.Addf("SENTINEL_ADDRS", "set it (or CONSUMER_REDIS_ADDR for a single node)")
	case c.RedisAddr != "" && len(c.SentinelAddrs) > 0:
		p.Addf("REDIS_ADDR", "set it or CONSUMER_SENTINEL_ADDRS, not both")
	case c.RedisAddr != "":
		p.HostPort("REDIS_ADDR", c.RedisAddr, true)
	default:
		for _, a := range c.SentinelAddrs {
			p.HostPort("SENTINEL_ADDRS", a, true)
		}
		if c.SentinelMaster == "" {
			p.Addf("SENTINEL_MASTER", "must not be empty in Sentinel mode")
		}
	}
	if c.RedisPassword != "" && c.RedisPasswordFile != "" {
		p.Addf("REDIS_PASSWORD", "set it or CONSUMER_REDIS_PASSWORD_FILE, not both")
	}
	if c.SentinelPassword != "" && c.SentinelPasswordFile != "" {
		p.Addf("SENTINEL_PASSWORD", "set it or CONSUMER_SENTINEL_PASSWORD_FILE, not both")
	}
	if c.Key == "" {
		p.Addf("KEY", "must not be empty")
	}
	if c.Batch < 1 || c.Batch > 100000 {
		p.Addf("BATCH", "%d is not between 1 and 100000", c.Batch)
	}
	if c.Block < time.Second || c.Block%time.Second != 0 {
		p.Addf("BLOCK", "%s is not a whole number of seconds of at least 1s (BLMOVE's timeout)", c.Block)
	}
	if c.RetryTimeout < 0 {
		p.Addf("RETRY_TIMEOUT", "%s is negative", c.RetryTimeout)
	}
	if _, err := c.SlogLevel(); err != nil {
		p.Addf("LOG_LEVEL", "%v", err)
	}
	return p.Err()
}

// SlogLevel parses LogLevel.
func (c Config) SlogLevel() (slog.Level, error) { return envconfig.SlogLevel(c.LogLevel) }

// Variables lists every variable in declaration order.
func Variables() []envconfig.Variable { return envconfig.Variables[Config](Prefix) }

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error { return envconfig.PrintTable(w, Variables()) }
