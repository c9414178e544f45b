package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-ingest/sluice/internal/adminhttp"
	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/services/backup/internal/admin"
	"github.com/sluice-ingest/sluice/services/backup/internal/config"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
	"github.com/sluice-ingest/sluice/services/backup/internal/restore"
	"github.com/sluice-ingest/sluice/services/backup/internal/retention"
	"github.com/sluice-ingest/sluice/services/backup/internal/schedule"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

const usage = `Usage:
  backup                              run the service: a snapshot now and every BACKUP_INTERVAL
  backup healthcheck                  exit 0 if GET http://127.0.0.1:<admin port>/ready answers 200
  backup now [-local]                 take a snapshot now through the running service (POST /backup);
                                      -local takes it in this process instead
  backup list                         the snapshots in BACKUP_DIR with their metadata
  backup verify FILE...               full RDB parse (CRC-64) of each FILE, checked against its .sha256
                                      and .json sidecars where they exist (a plain dump.rdb has none)
  backup restore [-confirm] [-replace] FILE
                                      restore FILE into the running topology; without -confirm it only
                                      prints what would be overwritten (see BACKUP.md)
  backup -version                     the version, VCS revision and Go version
  backup -h                           this help and the configuration table

Exit status: 0, 1 on failure, 2 on a bad command line.
`

// badUsage prints the usage to stderr and returns err as a usage error (cli.Usage).
func badUsage(stderr io.Writer, err error) error {
	fmt.Fprint(stderr, usage)
	return cli.Usage(err)
}

// parseFlags parses a (sub)command's flags; Parse's own messages are
// dropped: the error is returned and printed once. help is true for -h.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage, "\nEnvironment:\n")
		_ = config.PrintTable(stdout)
		return true, nil
	}
	if err != nil && fs.Name() != "backup" {
		err = fmt.Errorf("%s: %w", fs.Name(), err) // a subcommand's
	}
	if err != nil {
		return false, badUsage(stderr, err)
	}
	return false, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	version := fs.Bool("version", false, "print the version and exit")
	if help, err := parseFlags(fs, args, stdout, stderr); help || err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdout, "backup", buildinfo.Read())
		return nil
	}
	rest := fs.Args()
	cmd := ""
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "":
		cfg, log, err := load(getenv, stdout)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, log, func(net.Addr) {})
	case "healthcheck": // the image has no curl
		return adminhttp.Healthcheck(ctx, config.Prefix+"ADMIN_ADDR", lookup(getenv, "ADMIN_ADDR"), stdout)
	case "now":
		return now(ctx, rest, getenv, stdout, stderr)
	case "list":
		return list(getenv, stdout)
	case "verify":
		return verify(rest, getenv, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, rest, getenv, stdout, stderr)
	}
	return badUsage(stderr, fmt.Errorf("unknown command %q", cmd))
}

func load(getenv func(string) string, logOut io.Writer) (config.Config, *slog.Logger, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return cfg, nil, fmt.Errorf("configuration:\n%w", err)
	}
	level, _ := cfg.SlogLevel()
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	redisconn.UseLogger(log)
	return cfg, log, nil
}

func newSnapshotter(cfg config.Config, log *slog.Logger) (*snapshot.Snapshotter, error) {
	return snapshot.New(snapshot.Options{
		Dir: cfg.Dir, Key: cfg.Key, Redis: cfg.Config,
		Attempts: cfg.Attempts, IdleTimeout: cfg.IdleTimeout, Logger: log,
	})
}

func newScheduler(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*schedule.Scheduler, error) {
	snap, err := newSnapshotter(cfg, log)
	if err != nil {
		return nil, err
	}
	policy := retention.Policy{KeepLast: cfg.KeepLast, DailyDays: cfg.KeepDailyDays}
	return schedule.New(snap, policy, cfg.Dir, cfg.CopyDir, cfg.Interval, schedule.NewMetrics(reg), log, nil), nil
}

// serve runs the scheduler and the admin server until ctx is cancelled.
// ready is called with the admin address once it is bound.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(admin net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := buildinfo.Register(reg); err != nil {
		return err
	}
	sched, err := newScheduler(cfg, log, reg)
	if err != nil {
		return err
	}
	adm, err := admin.New(cfg.AdminAddr, sched, reg, log)
	if err != nil {
		return err
	}
	mode := "sentinel"
	if cfg.RedisAddr != "" {
		mode = "single"
	}
	log.Info("backup service started", "admin", adm.Addr().String(), "dir", cfg.Dir, "interval", cfg.Interval.String(),
		"redis_mode", mode, "keep_last", cfg.KeepLast, "keep_daily_days", cfg.KeepDailyDays)
	ready(adm.Addr())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return adm.Serve(gctx) })
	err = g.Wait()
	log.Info("backup service stopped", "err", err)
	return err
}

// adminURL is http://127.0.0.1:<port of BACKUP_ADMIN_ADDR><path>.
func adminURL(getenv func(string) string, path string) (string, error) {
	return adminhttp.LocalURL(config.Prefix+"ADMIN_ADDR", lookup(getenv, "ADMIN_ADDR"), path)
}

// lookup is one BACKUP_* setting (name without prefix) or its default.
func lookup(getenv func(string) string, name string) string {
	return envconfig.Lookup[config.Config](config.Prefix, name, getenv)
}

// now takes a snapshot through the running service, or in-process with -local.
func now(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("now", flag.ContinueOnError)
	local := fs.Bool("local", false, "take the snapshot in this process, not through the service's admin port")
	if help, err := parseFlags(fs, args, stdout, stderr); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badUsage(stderr, fmt.Errorf("now: unexpected arguments %q", fs.Args()))
	}
	var m *snapshot.Meta
	if *local {
		cfg, log, err := load(getenv, stderr)
		if err != nil {
			return err
		}
		sched, err := newScheduler(cfg, log, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		if m, err = sched.TakeNow(ctx); err != nil {
			return err
		}
	} else {
		url, err := adminURL(getenv, "/backup")
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("post %s: %w", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("post %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("post %s: %s %s", url, resp.Status, body)
		}
		m = &snapshot.Meta{}
		if err := json.Unmarshal(body, m); err != nil {
			return fmt.Errorf("post %s: decode %q: %w", url, body, err)
		}
	}
	fmt.Fprintf(stdout, "%s\t%d bytes\t%.3fs\t%s=%d elements\tfrom %s\trepl offset %d\n",
		m.File, m.SizeBytes, m.DurationSeconds, m.Key, m.KeyLength, m.Source, m.ReplOffset)
	return nil
}

func list(getenv func(string) string, stdout io.Writer) error {
	dir := lookup(getenv, "DIR")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if snapshot.IsSnapshot(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		var m snapshot.Meta
		b, err := os.ReadFile(filepath.Join(dir, n+".json"))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s\t(no readable metadata: %v)\n", n, err)
			continue
		}
		fmt.Fprintf(stdout, "%s\t%d bytes\t%s=%d elements\trepl offset %d\n", n, m.SizeBytes, m.Key, m.KeyLength, m.ReplOffset)
	}
	return nil
}

// verify checks each file, one line per file on stdout; the error only
// counts the bad ones (their lines say why).
func verify(files []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(files) == 0 {
		return badUsage(stderr, errors.New("verify: name at least one FILE"))
	}
	key := lookup(getenv, "KEY")
	bad := 0
	for _, f := range files {
		a, err := snapshot.VerifyAvailable(f, key, rdb.Options{})
		if err != nil {
			bad++
			fmt.Fprintf(stdout, "%s\tBAD\t%v\n", f, err)
			continue
		}
		fmt.Fprintf(stdout, "%s\tOK\t%s\n", f, verifiedLine(a))
	}
	if bad > 0 {
		return fmt.Errorf("verify: %d of %d files BAD", bad, len(files))
	}
	return nil
}

// verifiedLine is what verify says of a good file, and what it could not
// check for lack of a sidecar.
func verifiedLine(a *snapshot.Available) string {
	line := fmt.Sprintf("RDB v%d, %d keys, crc64 %016x, %s=%d elements", a.Info.Version, a.Info.Keys, a.Info.Checksum, a.Key, a.KeyLength)
	if a.Meta != nil {
		line += fmt.Sprintf(", repl offset %d", a.Meta.ReplOffset)
	}
	var unchecked []string
	if !a.ChecksumFile {
		unchecked = append(unchecked, "sha256 (no .sha256 file)")
	}
	if a.Meta == nil {
		unchecked = append(unchecked, fmt.Sprintf("size, sha256 and %s length against metadata (no .json file)", a.Key))
	}
	if len(unchecked) > 0 {
		line += "; not checked: " + strings.Join(unchecked, ", ")
	}
	return line
}

func restoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	confirm := fs.Bool("confirm", false, "really restore (without it: print the plan and change nothing)")
	replace := fs.Bool("replace", false, "discard what the queue holds now instead of appending it after the backup")
	if help, err := parseFlags(fs, args, stdout, stderr); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return badUsage(stderr, fmt.Errorf("restore: name exactly one FILE, not %d", fs.NArg()))
	}
	cfg, _, err := load(getenv, stderr)
	if err != nil {
		return err
	}
	file := fs.Arg(0)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) && !filepath.IsAbs(file) {
		file = filepath.Join(cfg.Dir, file) // a bare name means a snapshot in BACKUP_DIR
	}
	_, err = restore.Run(ctx, file, restore.Options{
		Redis: cfg.Config, Key: cfg.Key,
		Replace: *replace, Confirm: *confirm, Out: stdout,
	})
	if errors.Is(err, restore.ErrNotConfirmed) {
		return fmt.Errorf("%w; run again with -confirm (make restore BACKUP=%s CONFIRM=yes)", err, filepath.Base(file))
	}
	return err
}
