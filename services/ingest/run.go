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

	"github.com/sluice-ingest/sluice/internal/adminhttp"
	"github.com/sluice-ingest/sluice/internal/buildinfo"
	"github.com/sluice-ingest/sluice/internal/cli"
	"github.com/sluice-ingest/sluice/internal/envconfig"
	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/services/ingest/internal/admin"
	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/internal/config"
	"github.com/sluice-ingest/sluice/services/ingest/internal/httpserver"
	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
	"github.com/sluice-ingest/sluice/services/ingest/internal/tcpserver"
)

const usage = `Usage:
  ingest              run the service (configured by the environment)
  ingest healthcheck  exit 0 if GET http://127.0.0.1:<admin port>/ready answers 200
  ingest -version     the version, VCS revision and Go version
  ingest -h           this help and the configuration table

Producers send newline-delimited messages over TCP and get cumulative acks
("OK <n>") once their messages are stored in Redis, or POST them to
/v1/messages and get 200 {"accepted": n} once all are stored, or send them
to the no-ack TCP port when they never read. See PROTOCOL.md.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	version := fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(io.Discard) // Parse's own messages: the error is returned and printed once
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage, "\nEnvironment:\n")
		return config.PrintTable(stdout)
	case err != nil:
		fmt.Fprint(stderr, usage)
		return cli.Usage(err)
	case *version:
		fmt.Fprintln(stdout, "ingest", buildinfo.Read())
		return nil
	}
	switch fs.Arg(0) {
	case "":
	case "healthcheck": // the image has no curl
		addr := envconfig.Lookup[config.Config](config.Prefix, "ADMIN_ADDR", getenv)
		return adminhttp.Healthcheck(ctx, config.Prefix+"ADMIN_ADDR", addr, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return cli.Usage(fmt.Errorf("unknown command %q", fs.Arg(0)))
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	level, _ := cfg.SlogLevel()
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))
	redisconn.UseLogger(log)
	return serve(ctx, cfg, log, nil)
}

// frontend is a data front end (TCP, HTTP) feeding the batcher.
type frontend interface {
	Serve(ctx context.Context) error
	Ready() error
}

// bound holds the service's listening addresses; noack and http are nil
// when those front ends are off.
type bound struct{ data, noack, http, admin net.Addr }

func addrString(a net.Addr) string {
	if a == nil {
		return config.Off
	}
	return a.String()
}

// serve runs the service until ctx is cancelled and the drain finished.
// onBound, if not nil, gets the addresses once the listeners are bound.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, onBound func(bound)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := buildinfo.Register(reg); err != nil {
		return err
	}

	// One gauge for the whole service: every front end drains together.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_ingest_draining",
		Help: "1 while the service drains after SIGTERM.",
	}, func() float64 {
		if ctx.Err() != nil {
			return 1
		}
		return 0
	}))

	storeMetrics := store.NewMetrics(reg)
	mode := "single"
	if len(cfg.SentinelAddrs) > 0 {
		mode = "sentinel"
	}
	rdb := store.NewClient(store.ClientOptions{
		Redis:       cfg.Config,
		Timeout:     cfg.RedisTimeout,
		WaitTimeout: cfg.WaitTimeout,
		PoolSize:    cfg.Writers + 4,
	}, storeMetrics, log)
	defer rdb.Close()
	writer := store.NewWriter(rdb, store.WriterOptions{
		Key:         cfg.RedisKey,
		MaxQueueLen: cfg.MaxQueueLen,
		MinReplicas: cfg.MinReplicas,
		WaitTimeout: cfg.WaitTimeout,
		// lane keys (idempotent flushes) outlive every retry of a flush
		RetryTimeout: cfg.RedisRetryTimeout,
		Logger:       log,
		Metrics:      storeMetrics,
	})
	b, err := batcher.New(batcher.Options{
		Lanes:            cfg.Writers,
		BatchMax:         cfg.BatchMax,
		BatchLinger:      cfg.BatchLinger,
		MaxInflightBytes: cfg.MaxInflightBytes,
		RetryTimeout:     cfg.RedisRetryTimeout,
	}, func() batcher.Pusher { return writer.NewFlusher() }, log, reg)
	if err != nil {
		return err
	}
	tcpOpts := tcpserver.Options{
		ListenAddr:      cfg.ListenAddr,
		ProxyProtocol:   cfg.ProxyProtocol,
		MaxFrameBytes:   cfg.MaxFrameBytes,
		MaxConns:        cfg.MaxConns,
		IdleTimeout:     cfg.IdleTimeout,
		FrameTimeout:    cfg.FrameTimeout,
		Buffers:         tcpserver.NewBuffers(cfg.MaxBufferBytes, reg),
		WriteTimeout:    cfg.WriteTimeout,
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}
	tcp, err := tcpserver.New(tcpOpts, b, log, reg)
	if err != nil {
		return err
	}
	frontends := []frontend{tcp}
	addrs := bound{data: tcp.Addr()}
	if cfg.NoAckEnabled() {
		tcpOpts.ListenAddr, tcpOpts.NoAck = cfg.NoAckAddr, true
		noack, err := tcpserver.New(tcpOpts, b, log, reg)
		if err != nil {
			return err
		}
		frontends = append(frontends, noack)
		addrs.noack = noack.Addr()
	}
	var web *httpserver.Server
	if cfg.HTTPEnabled() {
		web, err = httpserver.New(httpserver.Options{
			ListenAddr:      cfg.HTTPAddr,
			MaxFrameBytes:   cfg.MaxFrameBytes,
			MaxBodyBytes:    cfg.HTTPMaxBodyBytes,
			BudgetWait:      cfg.HTTPBudgetWait,
			MaxConns:        cfg.MaxConns,
			IdleTimeout:     cfg.IdleTimeout,
			WriteTimeout:    cfg.WriteTimeout,
			DrainDelay:      cfg.DrainDelay,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}, b, log, reg)
		if err != nil {
			return err
		}
		frontends = append(frontends, web)
	}
	adm, err := admin.New(admin.Options{
		Addr:          cfg.AdminAddr,
		Pprof:         cfg.Pprof,
		ReadyInterval: cfg.ReadyInterval,
		ReadyTimeout:  cfg.ReadyTimeout,
	}, admin.Checks{
		Redis: func(ctx context.Context) error { return redisconn.CheckMaster(ctx, rdb) },
		Server: func() error {
			var errs []error
			for _, f := range frontends {
				errs = append(errs, f.Ready())
			}
			return errors.Join(errs...)
		},
	}, reg, log)
	if err != nil {
		return err
	}
	addrs.admin = adm.Addr()
	if web != nil {
		addrs.http = web.Addr()
	}
	log.Info("ingest listening", "data", tcp.Addr().String(), "noack", addrString(addrs.noack), "http", addrString(addrs.http), "admin", adm.Addr().String(), "redis_mode", mode,
		"min_replicas", cfg.MinReplicas, "writers", cfg.Writers, "batch_max", cfg.BatchMax, "proxy_protocol", cfg.ProxyProtocol)
	if onBound != nil {
		onBound(addrs)
	}

	// The admin server outlives the drain so HAProxy sees /ready turn 503.
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	adminDone := make(chan error, 1)
	go func() { adminDone <- adm.Serve(adminCtx) }()
	serves := make([]func(context.Context) error, len(frontends))
	for i, f := range frontends {
		serves[i] = f.Serve
	}
	err = b.Serve(ctx, cfg.ShutdownTimeout, serves...)
	stopAdmin()
	err = errors.Join(err, <-adminDone)
	log.Info("ingest stopped", "err", err)
	return err
}
