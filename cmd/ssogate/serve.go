package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz"
	"github.com/ssogate/ssogate/extauthz/wire"
	"github.com/ssogate/ssogate/metrics"
	"github.com/ssogate/ssogate/store/snapshot"
)

// serveCmd runs the gRPC ext_authz listener and the HTTP listener until
// SIGTERM, SIGINT or SIGHUP (which would otherwise end the process without
// writing out the buffered log), then drains in-flight checks and exits 0.
func serveCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "gateway file (ssogate.yaml)")
	statePath := fs.String("state", "", "store snapshot to seed the store with (spec section 4)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	drain := fs.Duration("drain-timeout", 10*time.Second, "longest wait for in-flight checks at shutdown")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "ssogate serve: --config is required")
		return 2
	}
	logger, closeLog, err := newServeLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate serve: %v\n", err)
		return 2
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	tuneGC()
	if err := serve(ctx, *cfgPath, *statePath, *drain, logger); err != nil {
		closeLog()
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// serve runs until ctx is done. It returns configuration and listener
// errors; a clean shutdown returns nil.
func serve(ctx context.Context, cfgPath, statePath string, drain time.Duration, logger *slog.Logger) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if statePath != "" && cfg.Gateway.Store.Backend != config.BackendMemory {
		// Re-seeding a persistent store at every start would undo revocations
		// and role changes made since; import validates and loads once.
		return fmt.Errorf("--state seeds the memory store only; the %s store keeps its state: load a snapshot once with `ssogate import --config %s --state %s`",
			cfg.Gateway.Store.Backend, cfgPath, statePath)
	}
	st, err := openStore(cfg.Gateway.Store, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if statePath != "" {
		// Records go into the store as they are read; nothing of the
		// snapshot stays reachable once Load returns.
		t0 := time.Now()
		n, err := snapshot.Load(ctx, statePath, st)
		if err != nil {
			return err
		}
		// Give the reader's garbage back now rather than serve on a heap
		// sized for the load.
		debug.FreeOSMemory()
		logger.Info("store seeded", "state", statePath, "memberships", n.Memberships, "sessions", n.Sessions, "resources", n.Resources,
			"took", time.Since(t0).Round(time.Millisecond).String())
	}
	decisions, metricsHandler := metrics.New()
	a, err := extauthz.New(ctx, cfg, st, extauthz.Options{Logger: logger, Metrics: decisions})
	if err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	grpcLn, err := net.Listen("tcp", cfg.Gateway.Listen.GRPC)
	if err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.Gateway.Listen.HTTP)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	// wire.Codec decodes CheckRequests without reflection (extauthz.Register).
	gs := grpc.NewServer(grpc.ForceServerCodecV2(wire.Codec{}))
	health := extauthz.Register(gs, a)
	mux := httpMux()
	mux.Handle("GET /metrics", metricsHandler)
	if err := mountLoginFlow(ctx, mux, cfg, st, logger); err != nil {
		return err
	}
	if err := mountAdmin(ctx, mux, cfg, st, logger); err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(grpcLn) }()
	go func() { errc <- hs.Serve(httpLn) }()
	logger.Info("serving", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String(), "orgs", len(cfg.Orgs))

	select {
	case err := <-errc:
		gs.Stop()
		hs.Close()
		return fmt.Errorf("listener stopped: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight checks")
	health.Shutdown()
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("http shutdown", "error", err)
	}
	select {
	case <-done:
	case <-sctx.Done():
		logger.Warn("drain timeout: closing remaining gRPC streams")
		gs.Stop()
	}
	logger.Info("stopped")
	return nil
}

// httpMux serves /healthz and /readyz; the login flow and the admin API
// are mounted on it by mountLoginFlow and mountAdmin.
func httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "text/plain; charset=utf-8")
		io.WriteString(w, "ready\n")
	})
	return mux
}
