// Package app wires taskwire-server together: the configuration, Redis and the
// task store, authentication, the Socket.IO server with its Redis adapter, the
// task service, the HTTP router and the listener; and it shuts them down in
// order. The command (cmd/taskwire-server) only turns signals into a context and
// errors into exit codes.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/admin"
	"github.com/taskwire/taskwire/server/internal/adminui"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/config"
	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/metrics"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/relaytrace"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/socketapi"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/server/internal/web"
	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tracing"
)

// ConfigError is a configuration the server cannot start with: a variable with a
// bad value, or a combination that makes no sense. A command exits with code 2
// on it (1 on other errors).
type ConfigError struct {
	// Err says what is wrong, naming the variables.
	Err error
}

// Error says what is wrong with the configuration.
func (e *ConfigError) Error() string { return "configuration: " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Run reads the configuration through getenv, logs JSON lines to stdout, serves
// the HTTP API, the Socket.IO endpoint and the web app on HTTP_ADDR, and blocks
// until ctx is done; then it shuts down (not ready at once, clients disconnected
// over a short window, within SHUTDOWN_TIMEOUT) and returns nil. A bad
// configuration is a *ConfigError; a listener that cannot be opened or fails is
// another error.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return &ConfigError{Err: err}
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting taskwire-server", "config", cfg)
	if cfg.SecretGenerated {
		cfg.Secret = session.RandomSecret()
		log.Warn("TASKWIRE_SECRET is not set: using a random secret; sessions end when this process stops and are not shared with other replicas")
	}
	traces, err := tracing.Setup(ctx, getenv, "taskwire-server")
	if err != nil {
		return &ConfigError{Err: err}
	}
	defer flushTraces(traces, cfg.ShutdownTimeout, log)
	signer, err := session.NewSigner(cfg.Secret)
	if err != nil {
		return &ConfigError{Err: err}
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
		return &ConfigError{Err: err}
	}

	redisLogOnce.Do(func() { redis.SetLogger(redisLog{log.With("component", "go-redis")}) })
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()
	st := store.New(rdb, &store.Options{Prefix: cfg.Prefix, TTL: cfg.TaskTTL})

	mets := metrics.New(nil)
	mets.WatchRedis(rdb)
	var onRelay func(*redisadapter.Relayed)
	if traces.Enabled() {
		relay := relaytrace.New(relaytrace.Options{Tracer: traces.Tracer(), Redis: rdb, Keys: st.Keys(), Logger: log})
		rctx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
		go relay.Run(rctx)
		defer func() { stopRelay(); <-relay.Done() }() // before the traces are flushed
		onRelay = relay.Observe
		log.Info("tracing on", "endpoint", traceEndpoint(getenv))
	}
	sockets := &socketapi.Handlers{}
	var keepHeaders []string
	if cfg.AdminToken != nil {
		keepHeaders = adminui.KeptHeaders // what the Admin UI shows of a socket
	}
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
		KeepHeaders:           keepHeaders,
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
		OnRelay:  onRelay,
	})
	if err != nil {
		return fmt.Errorf("realtime: %w", err)
	}
	resync.Store(rt)
	if cfg.AdminToken != nil {
		admin, err := adminui.Install(rt.IO(), adminui.Config{Token: cfg.AdminToken,
			ReadOnly: cfg.AdminUIReadOnly, Events: cfg.AdminUIEvents, Logger: log})
		if err != nil {
			return fmt.Errorf("admin ui: %w", err)
		}
		defer admin.Close()
		log.Info("Socket.IO Admin UI namespace served", "namespace", adminui.Namespace, "serverId", admin.ServerID(),
			"readOnly", cfg.AdminUIReadOnly, "events", cfg.AdminUIEvents)
	}
	mets.Watch(rt.Stats)
	var ops *admin.Service // the operator dashboard; nil when off
	tasks := taskservice.New(taskservice.Config{Store: st, Joiner: rt, Key: cfg.SocketIOKey, Sharded: cfg.SocketIOAdapter == "sharded",
		MaxAttempts: cfg.MaxAttempts, Logger: log,
		CreateRate: cfg.TaskCreateRate, CreateBurst: cfg.TaskCreateBurst, MaxActive: cfg.MaxActiveTasks,
		HistoryLimit: historyLimit(cfg.TaskHistoryLimit), Tracer: traces.Tracer(),
		OnChange: func(c operator.TaskChange) { ops.Notify(c) }, OnDelivered: mets.Delivered})
	ops = admin.New(admin.Config{Token: cfg.AdminToken, Store: st, Tasks: tasks, Realtime: rt, Addr: cfg.HTTPAddr,
		Logger: log.With("component", "admin")})
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go tasks.SweepUndelivered(sweepCtx, taskservice.DefaultSweepInterval, mets.Undelivered)
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
		Admin:    ops,
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
		Tracer:         apiTracer(traces),
	})

	if testHookRouter != nil {
		testHookRouter(router)
	}

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
	opsDone := make(chan struct{})
	opsCtx, stopOps := context.WithCancel(ctx)
	defer stopOps()
	go func() {
		defer close(opsDone)
		ops.Run(opsCtx)
	}()
	if ops.Enabled() {
		log.Info("operator dashboard on", "url", "http://"+displayAddr(ln.Addr())+"/admin/")
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
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
	stopOps()
	<-opsDone
	log.Info("stopped")
	return nil
}

// testHookRouter, when set by a test, is given the router before the server
// listens (to list its routes).
var testHookRouter func(*gin.Engine)

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

// historyLimit turns TASK_HISTORY_LIMIT into taskservice.Config.HistoryLimit,
// where 0 is the default and "none" is negative.
func historyLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
