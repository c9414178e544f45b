// Package config loads and validates the backup service configuration from
// BACKUP_* environment variables.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
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
	environ := map[string]string{}
	for _, v := range Variables() {
		if val := getenv(v.Name); val != "" {
			environ[v.Name] = val
		}
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: Prefix, Environment: environ}); err != nil {
		return cfg, namedParseErrors(err)
	}
	cfg.SentinelAddrs = trimAll(cfg.SentinelAddrs)
	errs := []error{cfg.Validate()}
	if err := readSecret(&cfg.RedisPassword, cfg.RedisPasswordFile, Prefix+"REDIS_PASSWORD_FILE"); err != nil {
		errs = append(errs, err)
	}
	if err := readSecret(&cfg.SentinelPassword, cfg.SentinelPasswordFile, Prefix+"SENTINEL_PASSWORD_FILE"); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

func trimAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// namedParseErrors rewrites env's per-field errors so each names its variable.
func namedParseErrors(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("parse environment: %w", err)
	}
	t := reflect.TypeOf(Config{})
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				errs = append(errs, fmt.Errorf("%s%s: not a valid %s: %w", Prefix, name, pe.Type, pe.Err))
				continue
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func readSecret(dst *string, file, name string) error {
	if file == "" || *dst != "" {
		return nil // the conflict is reported by Validate
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", name, file, err)
	}
	*dst = strings.TrimRight(string(b), "\r\n")
	return nil
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

// Variable describes one environment variable.
type Variable struct {
	Name        string
	Default     string
	Description string
}

// Variables lists every variable in declaration order.
func Variables() []Variable {
	t := reflect.TypeOf(Config{})
	out := make([]Variable, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		out = append(out, Variable{Name: Prefix + name, Default: f.Tag.Get("envDefault"), Description: f.Tag.Get("desc")})
	}
	return out
}

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, v.Description)
	}
	return tw.Flush()
}
