package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-ingest/sluice/internal/adminhttp"
	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redislog"
	"github.com/sluice-ingest/sluice/services/ingest/internal/admin"
	"github.com/sluice-ingest/sluice/services/ingest/internal/config"
	"github.com/sluice-ingest/sluice/services/ingest/internal/ingest"
	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
)

const usage = `Usage:
  ingest              run the service (configured by the environment)
  ingest healthcheck  exit 0 if GET http://127.0.0.1:<admin port>/ready answers 200
  ingest -h           this help and the configuration table

Clients send newline-delimited messages over TCP and get cumulative acks
("OK <n>") once their messages are stored in Redis. See PROTOCOL.md.

Environment:
`

// errHelp is returned after -h so the exit status is 0.
var errHelp = flag.ErrHelp

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage)
		_ = config.PrintTable(stdout)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	switch fs.Arg(0) {
	case "":
	case "healthcheck": // the image has no curl
		addr := envconfig.Lookup[config.Config](config.Prefix, "ADMIN_ADDR", getenv)
		return adminhttp.Healthcheck(ctx, config.Prefix+"ADMIN_ADDR", addr, stdout)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	level, _ := cfg.SlogLevel()
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))
	redislog.Use(log)
	return serve(ctx, cfg, log, nil)
}

// serve runs the service until ctx is cancelled and the drain finished.
// bound, if not nil, gets both addresses once the listeners are bound.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, bound func(data, admin net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	storeMetrics := store.NewMetrics(reg)
	mode := "single"
	if len(cfg.SentinelAddrs) > 0 {
		mode = "sentinel"
	}
	rdb := store.NewClient(store.ClientOptions{
		Addr:             cfg.RedisAddr,
		SentinelAddrs:    envconfig.TrimList(cfg.SentinelAddrs),
		MasterName:       cfg.SentinelMaster,
		Password:         cfg.RedisPassword,
		SentinelPassword: cfg.SentinelPassword,
		Timeout:          cfg.RedisTimeout,
		WaitTimeout:      cfg.WaitTimeout,
		PoolSize:         cfg.Writers + 4,
	}, storeMetrics, log)
	defer rdb.Close()
	writer := store.NewWriter(rdb, store.WriterOptions{
		Key:         cfg.RedisKey,
		MinReplicas: cfg.MinReplicas,
		WaitTimeout: cfg.WaitTimeout,
		Timeout:     cfg.RedisTimeout,
		// lane keys (idempotent flushes) outlive every retry of a flush
		RetryTimeout: cfg.RedisRetryTimeout,
		Logger:       log,
		Metrics:      storeMetrics,
	})
	srv, err := ingest.New(ingest.Options{
		ListenAddr:       cfg.ListenAddr,
		ProxyProtocol:    cfg.ProxyProtocol,
		Writers:          cfg.Writers,
		BatchMax:         cfg.BatchMax,
		BatchLinger:      cfg.BatchLinger,
		MaxFrameBytes:    cfg.MaxFrameBytes,
		MaxInflightBytes: cfg.MaxInflightBytes,
		RetryTimeout:     cfg.RedisRetryTimeout,
		MaxConns:         cfg.MaxConns,
		IdleTimeout:      cfg.IdleTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		DrainDelay:       cfg.DrainDelay,
		ShutdownTimeout:  cfg.ShutdownTimeout,
	}, func() ingest.Pusher { return writer.NewLane() }, log, reg)
	if err != nil {
		return err
	}
	adm, err := admin.New(admin.Options{
		Addr:          cfg.AdminAddr,
		Pprof:         cfg.Pprof,
		ReadyInterval: cfg.ReadyInterval,
		ReadyTimeout:  cfg.ReadyTimeout,
	}, admin.Checks{
		Redis:  func(ctx context.Context) error { return store.CheckMaster(ctx, rdb) },
		Server: srv.Ready,
	}, reg, log)
	if err != nil {
		return err
	}
	log.Info("ingest listening", "data", srv.Addr().String(), "admin", adm.Addr().String(), "redis_mode", mode,
		"min_replicas", cfg.MinReplicas, "writers", cfg.Writers, "batch_max", cfg.BatchMax, "proxy_protocol", cfg.ProxyProtocol)
	if bound != nil {
		bound(srv.Addr(), adm.Addr())
	}

	// The admin server outlives the drain so HAProxy sees /ready turn 503.
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer stopAdmin()
		return srv.Serve(gctx)
	})
	g.Go(func() error { return adm.Serve(adminCtx) })
	err = g.Wait()
	log.Info("ingest stopped", "err", err)
	return err
}
