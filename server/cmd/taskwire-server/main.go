// Command taskwire-server serves taskwire's HTTP API, its Socket.IO endpoint and the
// web app, on one port.
//
// Configuration is read from the environment (see the README): HTTP_ADDR, REDIS_URL,
// TASKWIRE_SECRET, LOG_LEVEL and more. On SIGTERM or SIGINT it stops accepting work,
// disconnects its clients spread over a short window so their reconnections do not
// arrive all at once, and exits; a second signal exits at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/config"
	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/metrics"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/socketapi"
	"github.com/taskwire/taskwire/server/internal/taskctl"
	"github.com/taskwire/taskwire/server/internal/web"
	"github.com/taskwire/taskwire/shared/store"
)

func main() {
	// taskwire-server apikey new NAME: a new API key and its TASKWIRE_API_KEYS entry.
	if len(os.Args) == 4 && os.Args[1] == "apikey" && os.Args[2] == "new" {
		key, hash := auth.NewAPIKey()
		fmt.Printf("key (give it to the backend; it is not stored anywhere): %s\n", key)
		fmt.Printf("TASKWIRE_API_KEYS entry (append with a comma to rotate): %s:%s\n", os.Args[3], hash)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: taskwire-server            (configured by the environment)\n       taskwire-server apikey new NAME")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, stop, os.Getenv, os.Stdout)
	stop()
	var cfgErr configError
	switch {
	case errors.As(err, &cfgErr):
		fmt.Fprintf(os.Stderr, "taskwire-server: configuration: %v\n", cfgErr.error)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "taskwire-server: %v\n", err)
		os.Exit(1)
	}
}

type configError struct{ error }

// run starts the server and blocks until ctx is done (a signal), then shuts down.
// stop is called once shutdown begins, so that a second signal kills the process.
func run(ctx context.Context, stop func(), getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return configError{err}
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting taskwire-server", "config", cfg)
	if cfg.SecretGenerated {
		cfg.Secret = session.RandomSecret()
		log.Warn("TASKWIRE_SECRET is not set: using a random secret; sessions end when this process stops and are not shared with other replicas")
	}
	signer, err := session.NewSigner(cfg.Secret)
	if err != nil {
		return configError{err}
	}
	acfg := auth.Config{Secret: cfg.Secret, JWTSecret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway, APIKeys: cfg.APIKeys, Logger: log}
	if cfg.AnonymousSessions {
		acfg.Sessions = signer
	} else {
		signer = nil
	}
	verifier, err := auth.New(ctx, acfg)
	if err != nil {
		return configError{err}
	}

	redisLogOnce.Do(func() { redis.SetLogger(redisLog{log.With("component", "go-redis")}) })
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()
	st := store.New(rdb, &store.Options{Prefix: cfg.Prefix, TTL: cfg.TaskTTL})

	mets := metrics.New(nil)
	sockets := &socketapi.Handlers{}
	var resync atomic.Pointer[realtime.Server] // set once rt is built
	rt, err := realtime.New(ctx, realtime.Config{
		Redis:                 rdb,
		Key:                   cfg.SocketIOKey,
		Sharded:               cfg.SocketIOAdapter == "sharded",
		SubscriptionMode:      cfg.SocketIOSubscriptionMode,
		Authenticate:          func(token string) (*auth.Principal, error) { return verifier.Verify(ctx, token) },
		TokenExpiryGrace:      cfg.TokenExpiryGrace,
		CookieName:            session.CookieName,
		AllowedOrigins:        cfg.AllowedOrigins,
		MaxHttpBufferSize:     cfg.SocketIOMaxMessageBytes,
		MaxConnections:        cfg.MaxConnections,
		MaxUnauthenticated:    cfg.MaxUnauthenticated,
		ConnectTimeout:        cfg.ConnectTimeout,
		MaxConnectionsPerIP:   cfg.MaxConnectionsPerIP,
		TrustProxy:            cfg.TrustProxy,
		MaxSocketsPerIdentity: cfg.MaxSocketsPerIdentity,
		OnConnection:          sockets.Register,
		// Events published while the adapter was not subscribed are lost for
		// this server's sockets: send them the current state of their tasks.
		OnResubscribe: func() {
			rt := resync.Load()
			if rt == nil {
				return
			}
			n := sockets.Resync(ctx, rt)
			log.Info("redis subscription restored: task snapshots sent", "tasks", n)
		},
		Logger:   log,
		Observer: mets,
	})
	if err != nil {
		return fmt.Errorf("realtime: %w", err)
	}
	resync.Store(rt)
	mets.Watch(rt.Stats)
	tasks := taskctl.New(taskctl.Config{Store: st, Joiner: rt, Key: cfg.SocketIOKey, Sharded: cfg.SocketIOAdapter == "sharded",
		MaxAttempts: cfg.MaxAttempts, Logger: log,
		CreateRate: cfg.TaskCreateRate, CreateBurst: cfg.TaskCreateBurst, MaxActive: cfg.MaxActiveTasks})
	*sockets = socketapi.Handlers{Tasks: tasks, Logger: log,
		InFlight: cfg.EventsInFlight, Queued: cfg.EventsQueued, Workers: cfg.EventWorkers, OnFlood: mets.Flooded}

	static := web.Handler()
	if cfg.StaticDir != "" {
		static = web.Dir(cfg.StaticDir)
	}
	var draining atomic.Bool
	router := httpapi.NewRouter(httpapi.Deps{
		Signer:   signer,
		Auth:     verifier,
		Tasks:    tasks,
		Realtime: rt.Handler(),
		Static:   static,
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		},
		Metrics:        mets.Handler(),
		Observer:       mets,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		BodyTimeout:    cfg.BodyReadTimeout,
		AllowedOrigins: cfg.AllowedOrigins,
		TrustProxy:     cfg.TrustProxy,
		Logger:         log,
	})

	if cfg.PprofAddr != "" {
		closePprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		defer closePprof()
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+displayAddr(ln.Addr()))

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop()
	// Not ready and refusing new sessions before it says so.
	draining.Store(true)
	rt.Drain()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		log.Warn("closing sockets", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("closing http server", "err", err)
		_ = srv.Close()
	}
	log.Info("stopped")
	return nil
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
}

// redisLogOnce installs redisLog once per process (go-redis's logger is global).
var redisLogOnce sync.Once

// redisLog passes go-redis's own log lines (lost connections, a pub/sub
// connection being replaced) into the server's JSON log, as warnings.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
