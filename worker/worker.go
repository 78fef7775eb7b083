// Package worker turns a Go program into a taskwire worker: it registers task
// kinds of its own with Handle, then Run takes their tasks from the queue in
// Redis, runs them, and pushes what they report (stages, progress, metadata,
// streams, results) to the browsers that follow them, through the taskwire
// servers.
//
//	w, err := worker.New(worker.OptionsFromEnv())
//	if err != nil { ... }
//	worker.Handle(w, "thumbnail", func(ctx context.Context, t *worker.Task, p ThumbParams) (*worker.Result, error) {
//		t.Stage(ctx, "decoding", "Reading the upload")
//		...
//		return worker.JSONResult(map[string]int{"width": 640}), nil
//	})
//	err = w.Run(ctx) // until ctx is done; then it drains
//
// The servers learn the kinds from the workers (name, title, the JSON Schema of
// the parameters derived from P, settings), validate the parameters of every
// new task against that schema, and need no change for a new kind.
//
// Every kind gets the same guarantees, with no code of its author: a task runs
// at least once (a worker that dies loses its lease and another one runs the task
// again), attempts are counted and bounded, errors marked Transient are retried
// with back-off, a cancel by the owner reaches the handler's ctx (context.Cause
// says who cancelled), SIGTERM drains, and a handler that panics fails its task
// with the code internal_error while the worker goes on.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/app"
	"github.com/taskwire/taskwire/worker/internal/config"
)

// Options configure a Worker. Zero values mean the defaults, which are those of
// taskwire-worker's environment variables (named in each field's comment).
type Options struct {
	// RedisURL is the Redis shared with the servers (REDIS_URL): redis:// or
	// rediss://, with user and password when needed and the database as the
	// path. Default redis://127.0.0.1:6379/0.
	RedisURL string
	// Concurrency is how many tasks run at once (WORKER_CONCURRENCY, 1-256).
	// Default 2.
	Concurrency int
	// Logger receives the worker's log. Default: JSON lines on standard output.
	Logger *slog.Logger
	// ShutdownTimeout is how long running tasks may go on once Run's context is
	// done before they are cancelled and handed back to the queue
	// (WORKER_SHUTDOWN_TIMEOUT). Default 25 s.
	ShutdownTimeout time.Duration
	// LeaseTimeout is how long a task may go without a heartbeat of its worker
	// before another worker takes it over (WORKER_LEASE_TIMEOUT). Default 30 s.
	LeaseTimeout time.Duration
	// MaxAttempts bounds the runs of a task whose kind sets no bound
	// (WORKER_MAX_ATTEMPTS, 1-100). Default 3.
	MaxAttempts int
	// ResultMaxBytes bounds a result of a kind without a limit of its own
	// (RESULT_MAX_BYTES). Default 128 MiB.
	ResultMaxBytes int64
	// ProgressMaxRate is the most progress events per second of one task
	// (PROGRESS_MAX_RATE; negative: no limit). Default 10.
	ProgressMaxRate float64
	// Prefix starts taskwire's Redis keys (TASKWIRE_PREFIX); it must match the
	// servers'. Default "taskwire".
	Prefix string
	// SocketIOKey is the prefix of the Socket.IO channels (SOCKETIO_KEY); it
	// must match the servers'. Default "socket.io".
	SocketIOKey string
	// SocketIOAdapter is the servers' adapter (SOCKETIO_ADAPTER): "classic" or
	// "sharded". Default "classic".
	SocketIOAdapter string
	// TaskTTL is how long records and results are kept after their last change
	// (TASK_TTL); it should match the servers'. Default 24 h.
	TaskTTL time.Duration
	// MetricsAddr is where /healthz, /readyz and /metrics are served
	// (METRICS_ADDR). Default: off ("" here; taskwire-worker's default is
	// ":9091").
	MetricsAddr string
	// LogLevel is the lowest level of the default logger (LOG_LEVEL).
	// Default info.
	LogLevel slog.Level

	envErr error // set by OptionsFromEnv
}

// OptionsFromEnv reads the options from the environment variables that
// taskwire-worker reads (see each field of Options); fields set afterwards
// override them. A variable that does not parse makes New fail with a
// *ConfigError that names it.
func OptionsFromEnv() Options {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return Options{envErr: err}
	}
	rate := cfg.ProgressMaxRate
	if rate == 0 {
		rate = -1
	}
	return Options{
		RedisURL: cfg.RedisURL, Concurrency: cfg.Concurrency, ShutdownTimeout: cfg.ShutdownTimeout,
		LeaseTimeout: cfg.LeaseTimeout, MaxAttempts: cfg.MaxAttempts, ResultMaxBytes: cfg.ResultMaxBytes,
		ProgressMaxRate: rate, Prefix: cfg.Prefix, SocketIOKey: cfg.SocketIOKey, SocketIOAdapter: cfg.SocketIOAdapter,
		TaskTTL: cfg.TaskTTL, MetricsAddr: cfg.MetricsAddr, LogLevel: cfg.LogLevel,
	}
}

// ConfigError is the error of options that are not valid; it lists every
// problem, each naming the environment variable of its option.
type ConfigError = config.Error

// Worker runs the tasks of the kinds registered with Handle. Create it with
// New.
type Worker struct {
	cfg *config.Config
	log *slog.Logger

	mu      sync.Mutex
	kinds   []app.Kind
	names   map[string]bool
	errs    []error // problems found by Handle that keep Run from starting
	running bool
	started func(app.Info) // tests

	readOnce sync.Once
	reads    *store.Store // TaskRecord's
}

// New returns a worker with no kinds yet. It fails with a *ConfigError when an
// option is not valid.
func New(opts Options) (*Worker, error) {
	if opts.envErr != nil {
		return nil, opts.envErr
	}
	cfg, err := config.Load(opts.getenv)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	return &Worker{cfg: cfg, log: log, names: map[string]bool{}}, nil
}

// getenv serves the options as the environment variables they stand for, so
// that both ways of configuring a worker share one set of rules and bounds.
func (o Options) getenv(name string) string {
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	switch name {
	case "REDIS_URL":
		return o.RedisURL
	case "WORKER_CONCURRENCY":
		return num(int64(o.Concurrency))
	case "WORKER_SHUTDOWN_TIMEOUT":
		return dur(o.ShutdownTimeout)
	case "WORKER_LEASE_TIMEOUT":
		return dur(o.LeaseTimeout)
	case "WORKER_MAX_ATTEMPTS":
		return num(int64(o.MaxAttempts))
	case "RESULT_MAX_BYTES":
		return num(o.ResultMaxBytes)
	case "PROGRESS_MAX_RATE":
		switch {
		case o.ProgressMaxRate < 0:
			return "0"
		case o.ProgressMaxRate > 0:
			return strconv.FormatFloat(o.ProgressMaxRate, 'f', -1, 64)
		}
	case "TASKWIRE_PREFIX":
		return o.Prefix
	case "SOCKETIO_KEY":
		return o.SocketIOKey
	case "SOCKETIO_ADAPTER":
		return o.SocketIOAdapter
	case "TASK_TTL":
		return dur(o.TaskTTL)
	case "METRICS_ADDR":
		if o.MetricsAddr == "" {
			return "off"
		}
		return o.MetricsAddr
	case "LOG_LEVEL":
		if o.LogLevel != slog.LevelInfo {
			return o.LogLevel.String()
		}
	}
	return ""
}

// KindInfo describes a registered kind as the servers see it: its name, title,
// description, parameters schema and settings.
type KindInfo = tasks.KindInfo

// Kinds returns the kinds registered so far, in the order of Handle.
func (w *Worker) Kinds() []KindInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]KindInfo, len(w.kinds))
	for i, k := range w.kinds {
		out[i] = k.Info
	}
	return out
}

// Logger returns the worker's logger.
func (w *Worker) Logger() *slog.Logger { return w.log }

// Run registers the worker's kinds with the servers, then takes and runs their
// tasks until ctx is done. Then it drains: it takes no new task, lets the
// running ones finish within the shutdown timeout, cancels the rest (their
// context's cause is ErrShutdown) and hands them back to the queue. It returns
// nil after a clean shutdown, and an error at once when no kind was registered
// or a kind's schema does not compile.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("worker: Run was called twice")
	}
	w.running = true
	kinds := append([]app.Kind(nil), w.kinds...)
	errs := errors.Join(w.errs...)
	started := w.started
	w.mu.Unlock()
	if errs != nil {
		return fmt.Errorf("worker: not starting: %w", errs)
	}
	if len(kinds) == 0 {
		return errors.New("worker: not starting: no kind registered (call worker.Handle first)")
	}
	return app.Run(ctx, app.Options{Config: w.cfg, Logger: w.log, Kinds: kinds, Started: started})
}
