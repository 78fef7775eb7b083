// Package app wires the worker together: Redis, the task store, the emitter, the
// stream broker under a Machinery worker, the task runner with its handlers, the
// cancel listener and the listener of the probes and metrics; and it shuts them
// down in order.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	machinery "github.com/RichardKnop/machinery/v2"
	"github.com/RichardKnop/machinery/v2/backends/null"
	"github.com/RichardKnop/machinery/v2/locks/eager"
	mlog "github.com/RichardKnop/machinery/v2/log"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/config"
	"github.com/taskwire/taskwire/worker/internal/health"
	"github.com/taskwire/taskwire/worker/internal/metrics"
	"github.com/taskwire/taskwire/worker/internal/progress"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// stopGrace bounds how long cancelled tasks get to hand their entries back after
// the shutdown timeout.
const stopGrace = 10 * time.Second

// Options configure Run.
type Options struct {
	// Config is the worker configuration.
	Config *config.Config
	// Logger receives the log. Machinery and go-redis log through package
	// globals; the first Run of a process points them at its logger.
	Logger *slog.Logger
	// Kinds are the kinds the worker serves: it registers them in the kind
	// registry and reads their queues.
	Kinds []Kind
	// Handlers add or replace task handlers by kind, with default settings
	// (tests use it).
	Handlers map[tasks.Kind]runner.Handler
	// Backoff replaces the wait before retries (tests use it).
	Backoff func(attempt int) time.Duration
	// Started, when set, is called once the worker consumes.
	Started func(Info)
	// Getenv reads the OTEL_* variables of the traces (see package tracing);
	// default os.Getenv.
	Getenv func(string) string
}

// Kind is a kind the worker serves: what it publishes in the registry and how
// the runner runs it.
type Kind struct {
	Info tasks.KindInfo
	Run  runner.Kind
}

// kindRefresh is how often a worker renews its kinds in the registry; its entry
// there lasts three times as long.
const kindRefresh = 2 * time.Second

// Info describes a started worker.
type Info struct {
	// Consumer is the worker's name in the queue's consumer group.
	Consumer string
	// MetricsAddr is the address of the listener of /healthz, /readyz and
	// /metrics ("" when off).
	MetricsAddr string
}

var globalLogs sync.Once

// Run runs the worker until ctx is done, then shuts it down: it stops taking
// tasks, lets running ones finish within the shutdown timeout, cancels the rest and
// hands them back to the queue. It returns nil after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	globalLogs.Do(func() {
		setMachineryLog(log.With("component", "machinery"))
		redis.SetLogger(redisLog{log.With("component", "go-redis")})
	})

	consumer := broker.ConsumerName()
	ropts := *cfg.Redis
	if ropts.ClientName == "" {
		ropts.ClientName = "taskwire-worker"
	}
	traces, err := setupTracing(ctx, opts.Getenv, log)
	if err != nil {
		return err
	}
	defer flushTraces(traces, log)
	rdb := redis.NewClient(&ropts)
	defer rdb.Close()

	st := store.New(rdb, &store.Options{Prefix: cfg.Prefix, TTL: cfg.TaskTTL})
	kinds := append([]Kind(nil), opts.Kinds...)
	for name, h := range opts.Handlers {
		i := slices.IndexFunc(kinds, func(k Kind) bool { return k.Info.Name == string(name) })
		if i >= 0 {
			kinds[i].Run.Handler = h
			continue
		}
		info := tasks.KindInfo{Name: string(name), ParamsSchema: json.RawMessage(`{"type":"object"}`)}
		info.SchemaHash = info.Hash()
		kinds = append(kinds, Kind{Info: info, Run: runner.Kind{Handler: h}})
	}
	if len(kinds) == 0 {
		return errors.New("app: the worker serves no kind (register at least one)")
	}
	names := make([]tasks.Kind, len(kinds))
	infos := make([]tasks.KindInfo, len(kinds))
	for i, k := range kinds {
		names[i], infos[i] = tasks.Kind(k.Info.Name), k.Info
	}
	em := emitter.New(rdb, &emitter.Options{Key: cfg.SocketIOKey, Sharded: cfg.SocketIOAdapter == "sharded"})
	reg := taskctx.NewRegistry()
	pub := progress.NewPublisher(st, em, &progress.Options{MaxRate: cfg.ProgressMaxRate, Logger: log, OnEmit: emitHook(traces)})
	b := broker.New(rdb, broker.Options{
		Keys:   st.Keys(),
		Lease:  cfg.LeaseTimeout,
		Logger: log.With("component", "broker"),
		Reject: func(ctx context.Context, id string, info tasks.ErrorInfo) error {
			if id == "" {
				return nil
			}
			return pub.Fail(ctx, id, info)
		},
		LeaseLost: func(id string) { reg.Cancel(id, taskctx.ErrLeaseLost) },
		Kinds:     names,
	})
	mets := metrics.New(names, nil)
	mets.WatchBroker(b.Stats)
	mets.WatchRedis(rdb)
	mets.WatchQueue(rdb, st.Keys(), b.Streams(), nil)
	r := runner.New(runner.Options{
		Store: st, Publisher: pub, Registry: reg, Broker: b,
		MaxAttempts: cfg.MaxAttempts, Backoff: opts.Backoff, Logger: log, Observer: mets,
		ResultMaxBytes: cfg.ResultMaxBytes, Tracer: attemptTracer(traces),
	})
	for _, k := range kinds {
		r.HandleKind(tasks.Kind(k.Info.Name), k.Run)
	}

	srv := machinery.NewServer(b.GetConfig(), b, null.New(), eager.New())
	if err := r.Register(srv); err != nil {
		return err
	}
	w := srv.NewWorker(consumer, cfg.Concurrency)
	w.SetErrorHandler(func(err error) { log.Error("machinery", "err", err) })

	// Probes.
	metricsAddr := ""
	var httpSrv *http.Server
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("app: metrics listener: %w", err)
		}
		metricsAddr = ln.Addr().String()
		probes := health.New(func(ctx context.Context) error {
			if !b.Consuming() {
				return errors.New("not taking tasks (starting or shutting down)")
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		})
		probes.Handle("GET /metrics", mets.Handler())
		httpSrv = &http.Server{Handler: probes, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
	}

	// The kind registry: servers learn from it which kinds exist.
	rctx, stopRegistry := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRegistry()
	registryDone := make(chan struct{})
	kindNames := make([]string, len(names))
	for i, n := range names {
		kindNames[i] = string(n)
	}
	beat := newHeartbeat(st, em, reg, consumer, kindNames, cfg.Concurrency, kindRefresh)
	register := func(c context.Context) error {
		if err := st.RegisterKinds(c, consumer, infos, 3*kindRefresh); err != nil {
			return err
		}
		return beat.beat(c)
	}
	if err := register(ctx); err != nil {
		log.Warn("cannot register the kinds yet; retrying in the background", "err", err)
	} else {
		warnConflicts(ctx, st, infos, log)
	}
	go func() {
		defer close(registryDone)
		t := time.NewTicker(kindRefresh)
		defer t.Stop()
		health := outage{log: log, what: "registering the kinds"}
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			c, cancel := context.WithTimeout(rctx, 5*time.Second)
			err := register(c)
			cancel()
			if err != nil {
				health.fail(err)
			} else {
				health.ok()
			}
		}
	}()

	// Cancel requests.
	lctx, stopListen := context.WithCancel(context.WithoutCancel(ctx))
	defer stopListen()
	subscribed := make(chan struct{})
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		taskctx.Listen(lctx, rdb, st.Keys().CancelChannel(), reg, log, subscribed)
	}()
	select {
	case <-subscribed:
	case <-time.After(2 * time.Second):
		log.Warn("the cancel channel is not subscribed yet; going on (records are checked too)")
	case <-ctx.Done():
	}

	errCh := make(chan error, 1)
	w.LaunchAsync(errCh)
	log.Info("worker started", "consumer", consumer, "concurrency", cfg.Concurrency, "metricsAddr", metricsAddr,
		"kinds", names, "queues", b.Streams())
	if opts.Started != nil {
		opts.Started(Info{Consumer: consumer, MetricsAddr: metricsAddr})
	}

	var runErr error
	select {
	case err := <-errCh:
		runErr = fmt.Errorf("app: the worker stopped on its own: %v", err)
		log.Error("worker stopped unexpectedly", "err", err)
	case <-ctx.Done():
		shutdown(w, reg, cfg.ShutdownTimeout, errCh, log)
	}

	stopListen()
	<-listenDone
	stopRegistry()
	<-registryDone
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := st.UnregisterKinds(uctx, consumer, infos); err != nil {
		log.Warn("could not unregister the kinds; their entries end with their lease", "err", err)
	}
	if err := beat.stop(uctx); err != nil {
		log.Warn("could not remove the heartbeat; it ends with its lease", "err", err)
	}
	ucancel()
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = httpSrv.Shutdown(sctx)
		cancel()
	}
	if runErr == nil {
		log.Info("worker stopped")
	}
	return runErr
}

// warnConflicts logs the kinds of which live workers run another version.
func warnConflicts(ctx context.Context, st *store.Store, infos []tasks.KindInfo, log *slog.Logger) {
	for _, k := range infos {
		ks, err := st.Kind(ctx, k.Name)
		if err != nil || !ks.Conflict() {
			continue
		}
		var others []string
		for _, v := range ks.Versions {
			if v.Workers > 0 && v.Info.SchemaHash != k.SchemaHash {
				others = append(others, fmt.Sprintf("%s (%d workers)", v.Info.SchemaHash, v.Workers))
			}
		}
		log.Warn("other workers serve another version of this kind; tasks are validated against the version of most workers",
			"kind", k.Name, "version", k.SchemaHash, "others", others)
	}
}

// outage logs the start and the end of a run of failures once each.
type outage struct {
	log  *slog.Logger
	what string
	down bool
}

func (o *outage) fail(err error) {
	if !o.down {
		o.down = true
		o.log.Warn(o.what+" fails; retrying", "err", err)
	}
}

func (o *outage) ok() {
	if o.down {
		o.log.Info(o.what + " works again")
	}
	o.down = false
}

// shutdown stops taking tasks, waits for the running ones up to timeout, then
// cancels them so they are handed back, and waits a little more for that.
func shutdown(w *machinery.Worker, reg *taskctx.Registry, timeout time.Duration, errCh <-chan error, log *slog.Logger) {
	log.Info("shutting down: no new tasks; waiting for the running ones", "running", reg.Len(), "timeout", timeout.String())
	quit := make(chan struct{})
	go func() {
		w.Quit()
		<-errCh
		close(quit)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-quit:
		return
	case <-t.C:
	}
	n := reg.CancelAll(taskctx.ErrShutdown)
	log.Warn("shutdown timeout: cancelling the running tasks and handing them back to the queue", "tasks", n)
	select {
	case <-quit:
	case <-time.After(stopGrace):
		log.Error("running tasks did not stop in time; exiting anyway (their queue entries come back after the lease)",
			"tasks", reg.Len())
	}
}

// machineryLog passes Machinery's log lines to slog at one level.
type machineryLog struct {
	log   *slog.Logger
	level slog.Level
}

func setMachineryLog(log *slog.Logger) {
	mlog.SetDebug(machineryLog{log, slog.LevelDebug})
	mlog.SetInfo(machineryLog{log, slog.LevelDebug}) // start-up chatter
	mlog.SetWarning(machineryLog{log, slog.LevelWarn})
	mlog.SetError(machineryLog{log, slog.LevelError})
	mlog.SetFatal(machineryLog{log, slog.LevelError})
}

func (l machineryLog) out(msg string) { l.log.Log(context.Background(), l.level, msg) }

func (l machineryLog) Print(v ...any)                 { l.out(fmt.Sprint(v...)) }
func (l machineryLog) Printf(format string, v ...any) { l.out(fmt.Sprintf(format, v...)) }
func (l machineryLog) Println(v ...any)               { l.out(fmt.Sprint(v...)) }
func (l machineryLog) Fatal(v ...any)                 { l.out(fmt.Sprint(v...)) }
func (l machineryLog) Fatalf(format string, v ...any) { l.out(fmt.Sprintf(format, v...)) }
func (l machineryLog) Fatalln(v ...any)               { l.out(fmt.Sprint(v...)) }
func (l machineryLog) Panic(v ...any)                 { s := fmt.Sprint(v...); l.out(s); panic(s) }
func (l machineryLog) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	l.out(s)
	panic(s)
}
func (l machineryLog) Panicln(v ...any) { s := fmt.Sprint(v...); l.out(s); panic(s) }

// redisLog passes go-redis's log lines (connection problems) to slog at debug
// level; the broker reports outages itself.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
