// Package config loads and validates the backup service configuration from
// BACKUP_* environment variables.
package config

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Prefix is the prefix of every environment variable.
const Prefix = "BACKUP_"

// Config is the whole backup configuration. Each field is one BACKUP_*
// variable; `desc` feeds the `backup -h` table.
type Config struct {
	redisconn.Config
	Key string `env:"KEY" desc:"the queue list whose length goes into each snapshot's metadata"`

	Dir           string        `env:"DIR" envDefault:"/backups" desc:"directory of the snapshots (a volume)"`
	CopyDir       string        `env:"COPY_DIR" desc:"optional second destination (e.g. a network mount): each snapshot is copied there, verified, and retained the same way"`
	Interval      time.Duration `env:"INTERVAL" envDefault:"1h" desc:"time between scheduled snapshots; /ready fails after 2x without a success"`
	KeepLast      int           `env:"KEEP_LAST" envDefault:"24" desc:"retention: always keep the newest N snapshots"`
	KeepDailyDays int           `env:"KEEP_DAILY_DAYS" envDefault:"7" desc:"retention: also keep the newest snapshot of each of the last D days (UTC)"`
	Attempts      int           `env:"ATTEMPTS" envDefault:"5" desc:"tries per snapshot; each looks for a replica again"`
	IdleTimeout   time.Duration `env:"IDLE_TIMEOUT" envDefault:"60s" desc:"fail a transfer that sends nothing for this long"`

	AdminAddr string `env:"ADMIN_ADDR" envDefault:":8087" desc:"HTTP address for /live, /ready, /metrics and POST /backup"`
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error"`
}

// EnvDefaults gives BACKUP_KEY its default (envconfig.Defaulter).
func (Config) EnvDefaults() map[string]string {
	return map[string]string{"KEY": redisconn.DefaultKey}
}

// Load reads the configuration through getenv, reads the password files
// and validates the result; the error names every bad setting, whether it
// did not parse or is not valid.
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
	if c.Key == "" {
		p.Addf("KEY", "must not be empty")
	}
	if c.Dir == "" {
		p.Addf("DIR", "must not be empty")
	}
	if c.CopyDir != "" && filepath.Clean(c.CopyDir) == filepath.Clean(c.Dir) {
		p.Addf("COPY_DIR", "%q is BACKUP_DIR itself", c.CopyDir)
	}
	if c.Interval < time.Second {
		p.Addf("INTERVAL", "%s is below 1s", c.Interval)
	}
	if c.KeepLast < 1 {
		p.Addf("KEEP_LAST", "%d must be at least 1 (the newest snapshot is always kept)", c.KeepLast)
	}
	if c.KeepDailyDays < 0 {
		p.Addf("KEEP_DAILY_DAYS", "%d is negative", c.KeepDailyDays)
	}
	if c.Attempts < 1 {
		p.Addf("ATTEMPTS", "%d must be at least 1", c.Attempts)
	}
	if c.IdleTimeout <= 0 {
		p.Addf("IDLE_TIMEOUT", "%s must be positive", c.IdleTimeout)
	}
	p.HostPort("ADMIN_ADDR", c.AdminAddr, false)
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
