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
	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Prefix is the prefix of every environment variable.
const Prefix = "CONSUMER_"

// Config is the whole consumer configuration. Each field is one CONSUMER_*
// variable; `desc` feeds the `consumer -h` table.
type Config struct {
	redisconn.Config
	Key  string `env:"KEY" desc:"the queue list"`
	Name string `env:"NAME" desc:"consumer name, unique among live consumers; its processing list is <KEY>:processing:<NAME> (default: the hostname)"`

	Batch        int           `env:"BATCH" envDefault:"100" desc:"messages taken per round (one BLMOVE, then LMOVEs in one pipeline), written, synced and acked together"`
	Block        time.Duration `env:"BLOCK" envDefault:"1s" desc:"how long a round waits for a first message (whole seconds); SIGTERM waits for it too"`
	RetryTimeout time.Duration `env:"RETRY_TIMEOUT" envDefault:"30s" desc:"Redis errors (a failover) are retried for this long, then the consumer exits 1"`
	LogLevel     string        `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error (JSON logs on stderr)"`
}

// EnvDefaults gives CONSUMER_KEY its default (envconfig.Defaulter).
func (Config) EnvDefaults() map[string]string {
	return map[string]string{"KEY": redisconn.DefaultKey}
}

// Load reads the configuration through getenv, fills the name from
// hostname when it is unset, reads the password files and validates the
// result; the error names every bad setting.
func Load(getenv func(string) string, hostname func() (string, error)) (Config, error) {
	var cfg Config
	perr := envconfig.Parse(&cfg, Prefix, getenv)
	cfg.Normalize()
	var herr error
	if cfg.Name == "" {
		if cfg.Name, herr = hostname(); herr != nil {
			herr = &envconfig.VarError{Name: Prefix + "NAME", Err: errors.Join(errors.New("unset and no hostname"), herr)}
		}
	}
	invalid := cfg.Validate() // before the files fill the passwords: it reports setting both
	return cfg, errors.Join(envconfig.Join(perr, invalid), herr, cfg.ReadSecrets(Prefix))
}

// Hostname is os.Hostname, the default of CONSUMER_NAME.
func Hostname() (string, error) { return os.Hostname() }

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	p := envconfig.Problems{Prefix: Prefix}
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
	return errors.Join(c.Config.Validate(Prefix), p.Err())
}

// SlogLevel parses LogLevel.
func (c Config) SlogLevel() (slog.Level, error) { return envconfig.SlogLevel(c.LogLevel) }

// Variables lists every variable in declaration order.
func Variables() []envconfig.Variable { return envconfig.Variables[Config](Prefix) }

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error { return envconfig.PrintTable(w, Variables()) }
