// Package runner runs the sluice benchmark on a local stack of real
// processes: Redis master + replicas + Sentinels, HAProxy, ingest.
package runner

import (
	"io"
	"time"

	"github.com/sluice-ingest/sluice/internal/envconfig"
)

// Config of one bench run; every field is a BENCH_* variable.
type Config struct {
	Messages        int           `env:"MESSAGES" envDefault:"2000000" desc:"messages per full-load run"`
	Size            int           `env:"SIZE" envDefault:"100" desc:"bytes per message"`
	Conns           int           `env:"CONNS" envDefault:"16" desc:"loadgen connections"`
	Window          int           `env:"WINDOW" envDefault:"2000" desc:"unacked messages per loadgen connection"`
	Modes           []int         `env:"MODES" envDefault:"0,1,2" envSeparator:"," desc:"INGEST_MIN_REPLICAS values to measure"`
	ShippedMode     int           `env:"SHIPPED_MODE" envDefault:"2" desc:"INGEST_MIN_REPLICAS shipped by compose (used for the scaling runs)"`
	Ingests         int           `env:"INGESTS" envDefault:"1" desc:"ingest processes behind HAProxy for the mode runs"`
	Scale           []int         `env:"SCALE" envDefault:"1,2,3" envSeparator:"," desc:"ingest counts for the scaling runs; 0 = skip them"`
	CeilingRequests int           `env:"CEILING_REQUESTS" envDefault:"1000000" desc:"redis-benchmark -n (best of 3 runs is the ceiling)"`
	Stack           string        `env:"STACK" envDefault:"local" desc:"local (processes on loopback); docker is not implemented yet"`
	RedisMode       string        `env:"REDIS_MODE" envDefault:"sentinel" desc:"how ingest finds Redis: sentinel (as shipped) or single (INGEST_REDIS_ADDR)"`
	Profile         bool          `env:"PROFILE" envDefault:"true" desc:"take a CPU profile of ingest at full load (MIN_REPLICAS=0)"`
	ProfileDir      string        `env:"PROFILE_DIR" desc:"keep the pprof files here (default: a temp dir, removed)"`
	Out             string        `env:"OUT" envDefault:"bench" desc:"directory for results.md and chart.png"`
	OverloadPause   time.Duration `env:"OVERLOAD_PAUSE" envDefault:"3s" desc:"pause the Redis master this long during a full-load run to measure ingest RSS under overload; 0 = skip"`
	RunTimeout      time.Duration `env:"RUN_TIMEOUT" envDefault:"2m" desc:"bound of one loadgen run"`
	Timeout         time.Duration `env:"TIMEOUT" envDefault:"15m" desc:"bound of the whole bench"`
	IngestEnv       []string      `env:"INGEST_ENV" envSeparator:" " desc:"extra INGEST_*=value settings for every ingest, space-separated"`
}

// Prefix of every variable.
const Prefix = "BENCH_"

// Load reads the BENCH_* variables through getenv and validates them; the
// error names every bad setting, whether it did not parse or is not valid.
func Load(getenv func(string) string) (Config, error) {
	var cfg Config
	perr := envconfig.Parse(&cfg, Prefix, getenv)
	return cfg, envconfig.Join(perr, cfg.Validate())
}

// Validate reports every bad setting, naming its variable.
func (c Config) Validate() error {
	p := envconfig.Problems{Prefix: Prefix}
	if c.Messages < 1000 {
		p.Addf("MESSAGES", "%d is below 1000", c.Messages)
	}
	if c.Size < 24 {
		p.Addf("SIZE", "%d is below 24 bytes (the payload's unique prefix)", c.Size)
	}
	if c.Conns < 1 {
		p.Addf("CONNS", "%d must be at least 1", c.Conns)
	}
	if c.Window < 1 {
		p.Addf("WINDOW", "%d must be at least 1", c.Window)
	}
	if len(c.Modes) == 0 {
		p.Addf("MODES", "must not be empty")
	}
	for _, m := range c.Modes {
		if m < 0 || m > 2 {
			p.Addf("MODES", "%d is not 0, 1 or 2 (the stack has 2 replicas)", m)
		}
	}
	if c.ShippedMode < 0 || c.ShippedMode > 2 {
		p.Addf("SHIPPED_MODE", "%d is not 0, 1 or 2 (the stack has 2 replicas)", c.ShippedMode)
	}
	if c.Ingests < 1 || c.Ingests > 3 {
		p.Addf("INGESTS", "%d is not 1 to 3", c.Ingests)
	}
	for _, n := range c.Scale {
		if len(c.Scale) == 1 && n == 0 {
			continue
		}
		if n < 1 || n > 3 {
			p.Addf("SCALE", "%d is not 1 to 3", n)
		}
	}
	if c.CeilingRequests < 1000 {
		p.Addf("CEILING_REQUESTS", "%d is below 1000", c.CeilingRequests)
	}
	if c.Stack != "local" {
		p.Addf("STACK", "%q is not local (the only stack implemented)", c.Stack)
	}
	if c.RedisMode != "sentinel" && c.RedisMode != "single" {
		p.Addf("REDIS_MODE", "%q is not sentinel or single", c.RedisMode)
	}
	if c.Out == "" {
		p.Addf("OUT", "must not be empty")
	}
	if c.OverloadPause < 0 || c.OverloadPause > 8*time.Second {
		p.Addf("OVERLOAD_PAUSE", "%s is not 0 to 8s (below the Sentinels' down-after of 10s: no failover)", c.OverloadPause)
	}
	if c.RunTimeout <= 0 {
		p.Addf("RUN_TIMEOUT", "%s must be positive", c.RunTimeout)
	}
	if c.Timeout <= 0 {
		p.Addf("TIMEOUT", "%s must be positive", c.Timeout)
	}
	return p.Err()
}

// PrintVariables writes the variable table with defaults.
func PrintVariables(w io.Writer) {
	_ = envconfig.PrintTable(w, envconfig.Variables[Config](Prefix))
}
