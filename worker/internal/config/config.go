// Package config reads the worker's configuration from its environment, in one
// place, with defaults and validation. Every problem is reported at once, so a
// deployment with several mistakes is fixed in one round.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/envconf"
)

// Defaults of the settings.
const (
	DefaultRedisURL        = envconf.DefaultRedisURL
	DefaultConcurrency     = 2
	DefaultShutdownTimeout = 25 * time.Second
	DefaultLeaseTimeout    = 30 * time.Second
	DefaultMaxAttempts     = 3
	DefaultResultMaxBytes  = 128 << 20
	DefaultProgressMaxRate = 10
	DefaultSocketIOKey     = "socket.io"
	DefaultPrefix          = "taskwire"
	DefaultTaskTTL         = 24 * time.Hour
	DefaultMetricsAddr     = ":9091"
)

// Config is the worker configuration. Each field names the environment variable it
// comes from.
type Config struct {
	// RedisURL is the Redis to use (REDIS_URL): redis:// or rediss://, with user and
	// password when needed, and the database number as the path.
	RedisURL string
	// Redis holds the options parsed from RedisURL.
	Redis *redis.Options
	// Concurrency is how many tasks run at once (WORKER_CONCURRENCY, 1-256). The
	// worker never takes more tasks from the queue than it has free slots.
	Concurrency int
	// ShutdownTimeout is how long running tasks may go on after SIGTERM before they
	// are cancelled and handed back to the queue (WORKER_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// LeaseTimeout is how long a task may go without a heartbeat of its worker
	// before another worker takes it over (WORKER_LEASE_TIMEOUT).
	LeaseTimeout time.Duration
	// MaxAttempts bounds the runs of a task whose record sets no bound of its own
	// (WORKER_MAX_ATTEMPTS, 1-100).
	MaxAttempts int
	// ResultMaxBytes bounds the size of a result, uncompressed (RESULT_MAX_BYTES:
	// bytes, or a number with KB, MB, GB, KiB, MiB or GiB).
	ResultMaxBytes int64
	// ProgressMaxRate is the most progress events per second and task
	// (PROGRESS_MAX_RATE; 0 sends every step). Final events are never held back.
	ProgressMaxRate float64
	// LogLevel is the lowest level logged (LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// GoMemLimit is GOMEMLIMIT, the Go runtime's soft memory limit (read by
	// the runtime; here only to be logged, so a pod's limit shows at start).
	GoMemLimit string
	// SocketIOKey is the prefix of the Socket.IO Redis channels (SOCKETIO_KEY); it
	// must match the servers'.
	SocketIOKey string
	// SocketIOAdapter is the adapter the servers run (SOCKETIO_ADAPTER): "classic"
	// (default; events are PUBLISHed) or "sharded" (Redis 7 SPUBLISH, in the
	// format of Node's createShardedAdapter); it must match the servers'.
	SocketIOAdapter string
	// Prefix starts taskwire's Redis keys (TASKWIRE_PREFIX); it must match the
	// servers'.
	Prefix string
	// TaskTTL is how long task records and results are kept after their last
	// change (TASK_TTL); it should match the servers'.
	TaskTTL time.Duration
	// MetricsAddr is where /healthz, /readyz (and later /metrics) are served
	// (METRICS_ADDR; "off" disables the listener, and is what "" means here).
	MetricsAddr string
	// ExportRowDelay slows the export task down by this much per row
	// (EXPORT_ROW_DELAY, default 0). It exists for tests and demonstrations, so a
	// kill or a cancel can land in the middle of a small export.
	ExportRowDelay time.Duration
	// ReportPageDelay slows the report task down by this much per country
	// aggregated and per page drawn (REPORT_PAGE_DELAY, default 0), so that a
	// demonstration shows its stages go by.
	ReportPageDelay time.Duration
	// TrainEpochDelay slows the train task down by this much per epoch
	// (TRAIN_EPOCH_DELAY, default 0), so that a demonstration shows the loss
	// curve being drawn.
	TrainEpochDelay time.Duration
}

// Load reads the configuration through getenv. The error lists every problem, one
// per line, each naming its variable.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		Concurrency:     DefaultConcurrency,
		ShutdownTimeout: DefaultShutdownTimeout,
		LeaseTimeout:    DefaultLeaseTimeout,
		MaxAttempts:     DefaultMaxAttempts,
		ResultMaxBytes:  DefaultResultMaxBytes,
		ProgressMaxRate: DefaultProgressMaxRate,
		LogLevel:        slog.LevelInfo,
		SocketIOKey:     or(getenv("SOCKETIO_KEY"), DefaultSocketIOKey),
		SocketIOAdapter: or(getenv("SOCKETIO_ADAPTER"), "classic"),
		Prefix:          or(getenv("TASKWIRE_PREFIX"), DefaultPrefix),
		TaskTTL:         DefaultTaskTTL,
		GoMemLimit:      getenv("GOMEMLIMIT"),
		MetricsAddr:     or(getenv("METRICS_ADDR"), DefaultMetricsAddr),
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}

	if u, opts, err := envconf.RedisURL(getenv("REDIS_URL")); err != nil {
		bad("REDIS_URL", "%v", err)
	} else {
		c.RedisURL, c.Redis = u, opts
	}
	intVar(getenv, "WORKER_CONCURRENCY", &c.Concurrency, 1, 256, bad)
	intVar(getenv, "WORKER_MAX_ATTEMPTS", &c.MaxAttempts, 1, 100, bad)
	durationVar(getenv, "WORKER_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, 0, time.Hour, bad)
	durationVar(getenv, "WORKER_LEASE_TIMEOUT", &c.LeaseTimeout, 300*time.Millisecond, time.Hour, bad)
	// The variables the servers read too: one parser (shared/envconf), the
	// same rules and bounds.
	if d, err := envconf.TaskTTL(getenv("TASK_TTL")); err != nil {
		bad("TASK_TTL", "%v", err)
	} else {
		c.TaskTTL = d
	}
	durationVar(getenv, "EXPORT_ROW_DELAY", &c.ExportRowDelay, 0, time.Second, bad)
	durationVar(getenv, "REPORT_PAGE_DELAY", &c.ReportPageDelay, 0, time.Second, bad)
	durationVar(getenv, "TRAIN_EPOCH_DELAY", &c.TrainEpochDelay, 0, time.Second, bad)

	if s := getenv("RESULT_MAX_BYTES"); s != "" {
		n, err := ParseBytes(s)
		if err != nil || n <= 0 {
			bad("RESULT_MAX_BYTES", "%q is not a positive size (for example 134217728 or 128MiB)", s)
		} else {
			c.ResultMaxBytes = n
		}
	}
	if s := getenv("PROGRESS_MAX_RATE"); s != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1000 {
			bad("PROGRESS_MAX_RATE", "%q is not a number of events per second between 0 and 1000 (0 = no limit)", s)
		} else {
			c.ProgressMaxRate = f
		}
	}
	if l, err := envconf.LogLevel(getenv("LOG_LEVEL")); err != nil {
		bad("LOG_LEVEL", "%v", err)
	} else {
		c.LogLevel = l
	}
	if _, err := envconf.SocketIOKey(c.SocketIOKey); err != nil {
		bad("SOCKETIO_KEY", "%v", err)
	}
	if _, err := envconf.SocketIOAdapter(c.SocketIOAdapter); err != nil {
		bad("SOCKETIO_ADAPTER", "%v", err)
	}
	if _, err := envconf.Prefix(c.Prefix); err != nil {
		bad("TASKWIRE_PREFIX", "%v", err)
	}
	switch strings.ToLower(c.MetricsAddr) {
	case "off", "none", "-":
		c.MetricsAddr = ""
	default:
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("METRICS_ADDR", "%q is not host:port (for example :9091), or off", c.MetricsAddr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("METRICS_ADDR", "%q has no valid port", c.MetricsAddr)
		}
	}
	if len(errs) > 0 {
		return nil, &Error{Err: errors.Join(errs...)}
	}
	return c, nil
}

// Error is a configuration problem: the process cannot start with it.
type Error struct {
	// Err lists the problems, joined.
	Err error
}

// Error lists the problems on one line.
func (e *Error) Error() string { return "config: " + strings.ReplaceAll(e.Err.Error(), "\n", "; ") }

// Unwrap returns the joined problems.
func (e *Error) Unwrap() error { return e.Err }

// LogAttrs returns the configuration as log attributes, with secrets masked.
func (c *Config) LogAttrs() []slog.Attr {
	metrics := c.MetricsAddr
	if metrics == "" {
		metrics = "off"
	}
	return []slog.Attr{
		slog.String("redisUrl", MaskURL(c.RedisURL)),
		slog.Int("concurrency", c.Concurrency),
		slog.String("shutdownTimeout", c.ShutdownTimeout.String()),
		slog.String("leaseTimeout", c.LeaseTimeout.String()),
		slog.Int("maxAttempts", c.MaxAttempts),
		slog.Int64("resultMaxBytes", c.ResultMaxBytes),
		slog.Float64("progressMaxRate", c.ProgressMaxRate),
		slog.String("logLevel", c.LogLevel.String()),
		slog.String("goMemLimit", c.GoMemLimit),
		slog.String("socketioKey", c.SocketIOKey),
		slog.String("socketioAdapter", c.SocketIOAdapter),
		slog.String("prefix", c.Prefix),
		slog.String("taskTtl", c.TaskTTL.String()),
		slog.String("metricsAddr", metrics),
		slog.String("exportRowDelay", c.ExportRowDelay.String()),
		slog.String("reportPageDelay", c.ReportPageDelay.String()),
		slog.String("trainEpochDelay", c.TrainEpochDelay.String()),
	}
}

// MaskURL returns u with its password replaced, for logs (envconf.MaskURL).
func MaskURL(u string) string { return envconf.MaskURL(u) }

// ParseBytes reads a size: a whole number of bytes, optionally followed by B, KB,
// MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024); case does not matter.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("config: %q does not start with a number", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("config: %q: %w", s, err)
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("config: %q has an unknown unit", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("config: %q is too large", s)
	}
	return n * mult, nil
}

// ParseDuration reads a Go duration ("25s", "1m30s") or a number of seconds ("25",
// "0.5").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64/float64(time.Second) || f < -math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("config: %q is out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("config: %q is not a duration", s)
	}
	return d, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intVar(getenv func(string) string, name string, dst *int, lo, hi int, bad func(string, string, ...any)) {
	s := getenv(name)
	if s == "" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		bad(name, "%q is not a whole number between %d and %d", s, lo, hi)
		return
	}
	*dst = n
}

func durationVar(getenv func(string) string, name string, dst *time.Duration, lo, hi time.Duration, bad func(string, string, ...any)) {
	s := getenv(name)
	if s == "" {
		return
	}
	d, err := ParseDuration(s)
	if err != nil || d < lo || d > hi {
		bad(name, "%q is not a duration between %v and %v (for example 25s, or a number of seconds)", s, lo, hi)
		return
	}
	*dst = d
}
