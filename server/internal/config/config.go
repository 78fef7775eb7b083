// Package config reads the server's configuration from its environment, in one
// place, with defaults and validation.
package config

import (
	"errors"
	"fmt"
	"log/slog"
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
	// StaticDir, when set, serves the web app from this directory instead of the
	// copy built into the binary (STATIC_DIR).
	StaticDir string
}

// Load reads the configuration through getenv. All problems are reported together.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		HTTPAddr:        or(getenv("HTTP_ADDR"), ":8080"),
		RedisURL:        or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"),
		SocketIOKey:     or(getenv("SOCKETIO_KEY"), "socket.io"),
		Prefix:          or(getenv("TASKWIRE_PREFIX"), "taskwire"),
		StaticDir:       getenv("STATIC_DIR"),
		TaskTTL:         24 * time.Hour,
		MaxAttempts:     3,
		ShutdownTimeout: 15 * time.Second,
		MaxBodyBytes:    64 << 10,
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "%q is not host:port (for example :8080)", c.HTTPAddr)
	}
	if opts, err := redis.ParseURL(c.RedisURL); err != nil {
		bad("REDIS_URL", "%v", err)
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
		slog.String("prefix", c.Prefix),
		slog.String("taskTTL", c.TaskTTL.String()),
		slog.Int("maxAttempts", c.MaxAttempts),
		slog.String("shutdownTimeout", c.ShutdownTimeout.String()),
		slog.Any("allowedOrigins", c.AllowedOrigins),
		slog.Int64("maxBodyBytes", c.MaxBodyBytes),
		slog.String("staticDir", c.StaticDir),
	)
}

// redactURL hides the password of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
