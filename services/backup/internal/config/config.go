// Package config loads and validates the backup service configuration from
// BACKUP_* environment variables.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
)

// Prefix is the prefix of every environment variable.
const Prefix = "BACKUP_"

// Config is the whole backup configuration. Each field is one BACKUP_*
// variable; `desc` feeds the `backup -h` table.
type Config struct {
	SentinelAddrs        []string `env:"SENTINEL_ADDRS" envSeparator:"," desc:"Sentinel mode: comma-separated Sentinel host:port list; snapshots come from an online replica"`
	SentinelMaster       string   `env:"SENTINEL_MASTER" envDefault:"sluice" desc:"master name monitored by the Sentinels"`
	RedisAddr            string   `env:"REDIS_ADDR" desc:"single-node mode: snapshot this host:port whatever its role (exclusive with BACKUP_SENTINEL_ADDRS)"`
	RedisPassword        string   `env:"REDIS_PASSWORD" desc:"Redis AUTH password (setting it and the _FILE variant is an error)"`
	RedisPasswordFile    string   `env:"REDIS_PASSWORD_FILE" desc:"file holding the Redis password (trailing newline stripped)"`
	SentinelPassword     string   `env:"SENTINEL_PASSWORD" desc:"Sentinel AUTH password; empty means no Sentinel auth"`
	SentinelPasswordFile string   `env:"SENTINEL_PASSWORD_FILE" desc:"file holding the Sentinel password"`
	Key                  string   `env:"KEY" envDefault:"data_queue" desc:"the queue list whose length goes into each snapshot's metadata"`

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

// Load reads the configuration through getenv, reads the password files
// and validates the result.
func Load(getenv func(string) string) (Config, error) {
	var cfg Config
	if err := envconfig.Parse(&cfg, Prefix, getenv); err != nil {
		return cfg, err
	}
	cfg.SentinelAddrs = envconfig.TrimList(cfg.SentinelAddrs)
	invalid := cfg.Validate() // before the files fill the passwords: it reports setting both
	return cfg, errors.Join(invalid,
		envconfig.ReadSecret(&cfg.RedisPassword, cfg.RedisPasswordFile, Prefix+"REDIS_PASSWORD_FILE"),
		envconfig.ReadSecret(&cfg.SentinelPassword, cfg.SentinelPasswordFile, Prefix+"SENTINEL_PASSWORD_FILE"))
}

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf(Prefix+name+": "+format, args...))
	}
	addr := func(name, value string, hostRequired bool) {
		host, _, err := net.SplitHostPort(value)
		if err != nil {
			bad(name, "%q is not host:port: %v", value, err)
		} else if hostRequired && host == "" {
			bad(name, "%q has no host", value)
		}
	}
	switch {
	case c.RedisAddr == "" && len(c.SentinelAddrs) == 0:
		bad("SENTINEL_ADDRS", "set it (or BACKUP_REDIS_ADDR for a single node)")
	case c.RedisAddr != "" && len(c.SentinelAddrs) > 0:
		bad("REDIS_ADDR", "set it or BACKUP_SENTINEL_ADDRS, not both")
	case c.RedisAddr != "":
		addr("REDIS_ADDR", c.RedisAddr, true)
	default:
		for _, a := range c.SentinelAddrs {
			addr("SENTINEL_ADDRS", a, true)
		}
		if c.SentinelMaster == "" {
			bad("SENTINEL_MASTER", "must not be empty in Sentinel mode")
		}
	}
	if c.RedisPassword != "" && c.RedisPasswordFile != "" {
		bad("REDIS_PASSWORD", "set it or BACKUP_REDIS_PASSWORD_FILE, not both")
	}
	if c.SentinelPassword != "" && c.SentinelPasswordFile != "" {
		bad("SENTINEL_PASSWORD", "set it or BACKUP_SENTINEL_PASSWORD_FILE, not both")
	}
	if c.Key == "" {
		bad("KEY", "must not be empty")
	}
	if c.Dir == "" {
		bad("DIR", "must not be empty")
	}
	if c.CopyDir != "" && filepath.Clean(c.CopyDir) == filepath.Clean(c.Dir) {
		bad("COPY_DIR", "%q is BACKUP_DIR itself", c.CopyDir)
	}
	if c.Interval < time.Second {
		bad("INTERVAL", "%s is below 1s", c.Interval)
	}
	if c.KeepLast < 1 {
		bad("KEEP_LAST", "%d must be at least 1 (the newest snapshot is always kept)", c.KeepLast)
	}
	if c.KeepDailyDays < 0 {
		bad("KEEP_DAILY_DAYS", "%d is negative", c.KeepDailyDays)
	}
	if c.Attempts < 1 {
		bad("ATTEMPTS", "%d must be at least 1", c.Attempts)
	}
	if c.IdleTimeout <= 0 {
		bad("IDLE_TIMEOUT", "%s must be positive", c.IdleTimeout)
	}
	addr("ADMIN_ADDR", c.AdminAddr, false)
	if _, err := c.SlogLevel(); err != nil {
		bad("LOG_LEVEL", "%v", err)
	}
	return errors.Join(errs...)
}

// SlogLevel parses LogLevel.
func (c Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// Variables lists every variable in declaration order.
func Variables() []envconfig.Variable { return envconfig.Variables[Config](Prefix) }

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error { return envconfig.PrintTable(w, Variables()) }
