// Package config reads the server's configuration from its environment, in one
// place, with defaults and validation.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the server configuration.
type Config struct {
	// HTTPAddr is where the server listens (HTTP_ADDR, default ":8080").
	HTTPAddr string
	// RedisURL is the Redis to use (REDIS_URL, default "redis://127.0.0.1:6379/0");
	// redis:// or rediss://, with user and password when needed.
	RedisURL string
	// Redis holds the options parsed from RedisURL.
	Redis *redis.Options
	// Secret signs session tokens (TASKWIRE_SECRET, at least 32 bytes). When unset
	// a random secret is used and SecretGenerated is true.
	Secret          []byte
	SecretGenerated bool
	// LogLevel is the minimum level logged (LOG_LEVEL: debug, info, warn, error;
	// default info).
	LogLevel slog.Level
	// SocketIOKey is the prefix of the Socket.IO Redis channels (SOCKETIO_KEY,
	// default "socket.io"); it must match the workers' and any other emitter's.
	SocketIOKey string
	// SocketIOAdapter is how server replicas share Socket.IO rooms and events
	// through Redis (SOCKETIO_ADAPTER): "classic" (default: PUBLISH/PSUBSCRIBE, as
	// Node's createAdapter) or "sharded" (Redis 7 SPUBLISH/SSUBSCRIBE, as Node's
	// createShardedAdapter). Workers and other emitters must use the same.
	SocketIOAdapter string
	// SocketIOSubscriptionMode is the subscription mode of the sharded adapter
	// (SOCKETIO_SUBSCRIPTION_MODE: static, dynamic or dynamic-private; default
	// dynamic, as Node's): which room channels a server subscribes to.
	SocketIOSubscriptionMode string
	// Prefix starts taskwire's Redis keys (TASKWIRE_PREFIX, default "taskwire").
	Prefix string
	// TaskTTL is how long task records and results are kept (TASK_TTL, default 24h).
	TaskTTL time.Duration
	// MaxAttempts bounds the runs of a task (TASK_MAX_ATTEMPTS, default 3).
	MaxAttempts int
	// ShutdownTimeout bounds the graceful shutdown (SHUTDOWN_TIMEOUT, default 15s).
	ShutdownTimeout time.Duration
	// AllowedOrigins are the origins allowed for cross-origin API and Socket.IO
	// requests (ALLOWED_ORIGINS, comma-separated; default none: same origin only).
	AllowedOrigins []string
	// MaxBodyBytes bounds HTTP request bodies (MAX_BODY_BYTES, default 65536).
	MaxBodyBytes int64
	// SocketIOMaxMessageBytes bounds one message a client sends over Socket.IO: a
	// websocket message or the body of a polling POST (SOCKETIO_MAX_MESSAGE_BYTES,
	// Socket.IO's maxHttpBufferSize; default 1000000). A larger websocket message
	// closes its connection; a larger POST gets 413 and the client reconnects.
	SocketIOMaxMessageBytes int64
	// MaxConnections bounds the Socket.IO connections of this server
	// (MAX_CONNECTIONS; default 0, no bound). Handshakes beyond it get 503 with
	// Retry-After, so clients retry, through a balancer on another replica.
	MaxConnections int
	// TaskCreateRate and TaskCreateBurst limit how fast one identity starts tasks,
	// across all replicas (TASK_CREATE_RATE per second, default 10, 0 = no limit;
	// TASK_CREATE_BURST at once, default 20). Beyond: 429 with Retry-After.
	TaskCreateRate  float64
	TaskCreateBurst int
	// MaxActiveTasks bounds the queued and running tasks of one identity, across
	// all replicas (MAX_ACTIVE_TASKS, default 20, 0 = no bound). Beyond: 429
	// too_many_active_tasks.
	MaxActiveTasks int
	// TrustProxy believes the X-Forwarded-Proto header of requests (TRUST_PROXY,
	// default false): set it behind a TLS-terminating proxy, so that session
	// cookies are marked Secure.
	TrustProxy bool
	// StaticDir, when set, serves the web app from this directory instead of the
	// copy built into the binary (STATIC_DIR).
	StaticDir string
	// PprofAddr, when set, serves the Go profiler (net/http/pprof) on this
	// address, on a listener of its own (PPROF_ADDR, default off). Profiles reveal
	// internals: bind it to loopback.
	PprofAddr string
}

// Load reads the configuration through getenv. All problems are reported together.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		HTTPAddr:        or(getenv("HTTP_ADDR"), ":8080"),
		RedisURL:        or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"),
		SocketIOKey:     or(getenv("SOCKETIO_KEY"), "socket.io"),
		SocketIOAdapter: or(getenv("SOCKETIO_ADAPTER"), "classic"),
		Prefix:          or(getenv("TASKWIRE_PREFIX"), "taskwire"),
		StaticDir:       getenv("STATIC_DIR"),
		PprofAddr:       getenv("PPROF_ADDR"),
		TaskTTL:         24 * time.Hour,
		MaxAttempts:     3,
		ShutdownTimeout: 15 * time.Second,
		MaxBodyBytes:    64 << 10,

		SocketIOMaxMessageBytes: 1_000_000,
		TaskCreateRate:          10,
		TaskCreateBurst:         20,
		MaxActiveTasks:          20,
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "%q is not host:port (for example :8080)", c.HTTPAddr)
	}
	switch c.SocketIOAdapter {
	case "classic", "sharded":
	default:
		bad("SOCKETIO_ADAPTER", "%q is not classic or sharded", c.SocketIOAdapter)
	}
	if s := getenv("SOCKETIO_SUBSCRIPTION_MODE"); s != "" {
		switch {
		case s != "static" && s != "dynamic" && s != "dynamic-private":
			bad("SOCKETIO_SUBSCRIPTION_MODE", "%q is not static, dynamic or dynamic-private", s)
		case c.SocketIOAdapter != "sharded":
			bad("SOCKETIO_SUBSCRIPTION_MODE", "applies only with SOCKETIO_ADAPTER=sharded")
		}
		c.SocketIOSubscriptionMode = s
	} else if c.SocketIOAdapter == "sharded" {
		c.SocketIOSubscriptionMode = "dynamic"
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			bad("PPROF_ADDR", "%q is not host:port (for example 127.0.0.1:6060)", c.PprofAddr)
		}
	}
	if opts, err := redis.ParseURL(c.RedisURL); err != nil {
		bad("REDIS_URL", "%s: %v (want redis://[user:password@]host:port/db or rediss://...)", redactURL(c.RedisURL), urlError(err))
	} else {
		c.Redis = opts
	}
	if s := getenv("TASKWIRE_SECRET"); s != "" {
		if len(s) < 32 {
			bad("TASKWIRE_SECRET", "must be at least 32 bytes, got %d", len(s))
		}
		c.Secret = []byte(s)
	} else {
		c.SecretGenerated = true
	}
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := c.LogLevel.UnmarshalText([]byte(s)); err != nil {
			bad("LOG_LEVEL", "%q is not one of debug, info, warn, error", s)
		}
	}
	duration := func(name string, dst *time.Duration) {
		if s := getenv(name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				bad(name, "%q is not a positive duration (for example 30s)", s)
				return
			}
			*dst = d
		}
	}
	duration("TASK_TTL", &c.TaskTTL)
	duration("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	if s := getenv("TASK_MAX_ATTEMPTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			bad("TASK_MAX_ATTEMPTS", "%q is not an integer between 1 and 100", s)
		} else {
			c.MaxAttempts = n
		}
	}
	if s := getenv("MAX_BODY_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1024 || n > 64<<20 {
			bad("MAX_BODY_BYTES", "%q is not an integer between 1024 and 67108864", s)
		} else {
			c.MaxBodyBytes = n
		}
	}
	if s := getenv("SOCKETIO_MAX_MESSAGE_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1024 || n > 100<<20 {
			bad("SOCKETIO_MAX_MESSAGE_BYTES", "%q is not an integer between 1024 and 104857600", s)
		} else {
			c.SocketIOMaxMessageBytes = n
		}
	}
	intVar := func(name string, dst *int, lo, hi int) {
		if s := getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < lo || n > hi {
				bad(name, "%q is not an integer between %d and %d", s, lo, hi)
				return
			}
			*dst = n
		}
	}
	intVar("MAX_CONNECTIONS", &c.MaxConnections, 0, 10_000_000)
	intVar("TASK_CREATE_BURST", &c.TaskCreateBurst, 1, 1_000_000)
	intVar("MAX_ACTIVE_TASKS", &c.MaxActiveTasks, 0, 1_000_000)
	if s := getenv("TASK_CREATE_RATE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1_000_000 {
			bad("TASK_CREATE_RATE", "%q is not a number of tasks per second between 0 and 1000000 (0 = no limit)", s)
		} else {
			c.TaskCreateRate = f
		}
	}
	if s := getenv("TRUST_PROXY"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			bad("TRUST_PROXY", "%q is not true or false", s)
		} else {
			c.TrustProxy = b
		}
	}
	if s := getenv("ALLOWED_ORIGINS"); s != "" {
		for _, o := range strings.Split(s, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			if o != "*" {
				u, err := url.Parse(o)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
					bad("ALLOWED_ORIGINS", "%q is not an origin like https://app.example.com", o)
					continue
				}
				o = u.Scheme + "://" + u.Host
			}
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LogValue prints the configuration without secrets.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("httpAddr", c.HTTPAddr),
		slog.String("redisURL", redactURL(c.RedisURL)),
		slog.Bool("secretFromEnv", !c.SecretGenerated),
		slog.String("logLevel", c.LogLevel.String()),
		slog.String("socketIOKey", c.SocketIOKey),
		slog.String("socketIOAdapter", c.SocketIOAdapter),
		slog.String("socketIOSubscriptionMode", c.SocketIOSubscriptionMode),
		slog.String("prefix", c.Prefix),
		slog.String("taskTTL", c.TaskTTL.String()),
		slog.Int("maxAttempts", c.MaxAttempts),
		slog.String("shutdownTimeout", c.ShutdownTimeout.String()),
		slog.Any("allowedOrigins", c.AllowedOrigins),
		slog.Int64("maxBodyBytes", c.MaxBodyBytes),
		slog.Int64("socketIOMaxMessageBytes", c.SocketIOMaxMessageBytes),
		slog.Int("maxConnections", c.MaxConnections),
		slog.Float64("taskCreateRate", c.TaskCreateRate),
		slog.Int("taskCreateBurst", c.TaskCreateBurst),
		slog.Int("maxActiveTasks", c.MaxActiveTasks),
		slog.Bool("trustProxy", c.TrustProxy),
		slog.String("staticDir", c.StaticDir),
		slog.String("pprofAddr", c.PprofAddr),
	)
}

// urlError returns err without the URL that net/url puts in its errors, which
// would print the password.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL hides the password of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
