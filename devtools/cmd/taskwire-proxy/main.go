// Command taskwire-proxy is a small reverse proxy with sticky sessions, for running
// several taskwire-server replicas on one machine (make run-cluster, the compose
// file). A new client is sent to the next healthy server in turn and gets a cookie
// naming it; afterwards the cookie keeps it on that server, which Socket.IO's HTTP
// long-polling needs. When that server is down (its /readyz fails or it refuses
// connections) the client is moved to a healthy one. WebSocket upgrades pass
// through.
//
// Usage:
//
//	taskwire-proxy -addr 127.0.0.1:8080 -backends http://127.0.0.1:8081,http://127.0.0.1:8082
//
// Flags default to the environment: TASKWIRE_PROXY_ADDR, TASKWIRE_PROXY_BACKENDS.
// Once it accepts connections it prints "ready http://<addr>/" on standard output.
// On SIGINT or SIGTERM it stops accepting, lets requests in flight finish for up
// to -shutdown-timeout, then closes the rest (WebSocket connections at once) and
// exits.
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
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "taskwire-proxy:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx is done, then shuts down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskwire-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", or(getenv("TASKWIRE_PROXY_ADDR"), "127.0.0.1:8080"), "address to listen on (env TASKWIRE_PROXY_ADDR); port 0 picks a free one")
	backends := fs.String("backends", getenv("TASKWIRE_PROXY_BACKENDS"), "comma-separated server base URLs (env TASKWIRE_PROXY_BACKENDS)")
	cookie := fs.String("cookie", DefaultCookieName, "name of the affinity cookie")
	healthPath := fs.String("health-path", DefaultHealthPath, "path asked on every backend; 2xx means it takes clients")
	healthInterval := fs.Duration("health-interval", DefaultHealthInterval, "pause between health checks")
	shutdownTimeout := fs.Duration("shutdown-timeout", 5*time.Second, "how long requests in flight may finish on shutdown")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %q is not one of debug, info, warn, error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	urls, err := ParseBackends(*backends)
	if err != nil {
		return fmt.Errorf("-backends: %w", err)
	}
	p, err := New(Config{
		Backends:       urls,
		CookieName:     *cookie,
		HealthPath:     *healthPath,
		HealthInterval: *healthInterval,
		Logger:         log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// Every request lives under base; cancelling it ends those still running.
	// Upgraded (WebSocket) connections are hijacked, so Shutdown neither waits for
	// nor closes them: they also live under upgrades, cancelled when Shutdown
	// begins.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	upgrades, cancelUpgrades := context.WithCancel(base)
	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			if r.Header.Get("Upgrade") != "" {
				ctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				defer context.AfterFunc(upgrades, cancel)()
				r = r.WithContext(ctx)
			}
			p.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(cancelUpgrades)

	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	p.CheckHealth(healthCtx)
	go p.RunHealthChecks(healthCtx)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "backends", *backends)
	fmt.Fprintf(stdout, "ready http://%s/\n", displayAddr(ln.Addr()))

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", *shutdownTimeout)
	stopHealth()
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight; closing them", "err", err)
	}
	cancelBase()
	_ = srv.Close()
	waitBounded(&inflight, time.Second)
	log.Info("stopped")
	return nil
}

// waitBounded waits for wg, at most d.
func waitBounded(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
