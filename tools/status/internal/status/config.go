// Package status collects and renders the one-screen view of a running
// sluice stack that `make status` prints: Redis replication, Sentinel
// agreement, ingest readiness, HAProxy backends, queue length, ack rate and
// latency, and the age of the last backup. It runs inside the stack's
// Docker network (see tools/status), so it reaches every part by its
// service name.
package status

import (
	"errors"
	"io"
	"net/url"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Prefix is the prefix of every environment variable.
const Prefix = "STATUS_"

// Config is the status command's configuration; each field is one STATUS_*
// variable.
type Config struct {
	redisconn.Config
	Key string `env:"KEY" desc:"the queue list (LLEN on the master)"`

	IngestAdmin string `env:"INGEST_ADMIN" envDefault:"ingest:8086" desc:"host:port of the ingest admin servers; each address the host resolves to is one ingest container"`

	StatsURL          string `env:"HAPROXY_STATS_URL" envDefault:"http://haproxy:8404/stats;csv" desc:"HAProxy's stats CSV; off: skip HAProxy"`
	StatsUser         string `env:"HAPROXY_STATS_USER" envDefault:"admin" desc:"stats basic-auth user"`
	StatsPassword     string `env:"HAPROXY_STATS_PASSWORD" desc:"stats basic-auth password"`
	StatsPasswordFile string `env:"HAPROXY_STATS_PASSWORD_FILE" desc:"file holding the stats password"`

	BackupURL    string        `env:"BACKUP_METRICS_URL" envDefault:"http://backup:8087/metrics" desc:"the backup service's /metrics; off: skip the backup"`
	BackupMaxAge time.Duration `env:"BACKUP_MAX_AGE" envDefault:"2h" desc:"a last snapshot older than this is a problem (twice the shipped BACKUP_INTERVAL)"`

	Sample   time.Duration `env:"SAMPLE" envDefault:"1s" desc:"time between the two /metrics scrapes that give the ack rate and p99"`
	Interval time.Duration `env:"INTERVAL" envDefault:"2s" desc:"-watch: time between two screens"`
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"2s" desc:"timeout of each request to a part of the stack"`
}

// Off turns an optional part off (STATUS_HAPROXY_STATS_URL, STATUS_BACKUP_METRICS_URL).
const Off = "off"

// EnvDefaults gives STATUS_KEY its default and STATUS_SENTINEL_ADDRS the
// compose stack's Sentinels (envconfig.Defaulter).
func (Config) EnvDefaults() map[string]string {
	return map[string]string{
		"SENTINEL_ADDRS": "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
		"KEY":            redisconn.DefaultKey,
	}
}

// Load reads the configuration through getenv, reads the password files
// and validates the result.
func Load(getenv func(string) string) (Config, error) {
	var cfg Config
	perr := envconfig.Parse(&cfg, Prefix, getenv)
	cfg.Normalize()
	invalid := cfg.Validate()
	return cfg, errors.Join(envconfig.Join(perr, invalid), cfg.ReadSecrets(Prefix),
		envconfig.ReadSecret(&cfg.StatsPassword, cfg.StatsPasswordFile, Prefix+"HAPROXY_STATS_PASSWORD_FILE"))
}

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	p := envconfig.Problems{Prefix: Prefix}
	if c.StatsPassword != "" && c.StatsPasswordFile != "" {
		p.Addf("HAPROXY_STATS_PASSWORD", "set it or %sHAPROXY_STATS_PASSWORD_FILE, not both", Prefix)
	}
	if c.Key == "" {
		p.Addf("KEY", "must not be empty")
	}
	p.HostPort("INGEST_ADMIN", c.IngestAdmin, true)
	for name, v := range map[string]string{"HAPROXY_STATS_URL": c.StatsURL, "BACKUP_METRICS_URL": c.BackupURL} {
		if v == Off {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Addf(name, "%q is not an http(s) URL (or %s)", v, Off)
		}
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			p.Addf(name, "%s must be positive", d)
		}
	}
	positive("BACKUP_MAX_AGE", c.BackupMaxAge)
	positive("SAMPLE", c.Sample)
	positive("INTERVAL", c.Interval)
	positive("TIMEOUT", c.Timeout)
	return errors.Join(c.Config.ValidateSentinel(Prefix), p.Err())
}

// PrintTable writes the variable table (name, default, description).
func PrintTable(w io.Writer) error {
	return envconfig.PrintTable(w, envconfig.Variables[Config](Prefix))
}
