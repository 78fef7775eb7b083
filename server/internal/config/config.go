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

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/shared/envconf"
)

// Bounds of TASK_HISTORY_LIMIT.
const (
	DefaultTaskHistoryLimit = 2000
	MaxTaskHistoryLimit     = 100000
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
	// AnonymousSessions hands out anonymous identities at GET /api/v1/session
	// and accepts their tokens (ANONYMOUS_SESSIONS, default true). Production
	// sets it false: only the app's JWTs, API keys and viewer tokens are
	// accepted, and GET /api/v1/session answers 404.
	AnonymousSessions bool
	// JWTSecret verifies the app's HS256/384/512 JWTs (TASKWIRE_JWT_SECRET, at
	// least 32 bytes).
	JWTSecret []byte
	// JWKSURL is the app's JWKS endpoint, whose keys verify its RS/PS/ES/EdDSA
	// JWTs (TASKWIRE_JWKS_URL, http:// or https://).
	JWKSURL string
	// JWTIssuer and JWTAudience, when set, must be the "iss" and one "aud" of
	// the app's JWTs (TASKWIRE_JWT_ISSUER, TASKWIRE_JWT_AUDIENCE).
	JWTIssuer, JWTAudience string
	// JWTLeeway is the clock skew allowed on "exp" and "nbf"
	// (TASKWIRE_JWT_LEEWAY, default 30s, 1s to 5m).
	JWTLeeway time.Duration
	// APIKeys are the backends' keys (TASKWIRE_API_KEYS: comma-separated
	// name:sha256hex, the SHA-256 of each key; two entries for a rotation).
	APIKeys []auth.APIKey
	// TokenExpiryGrace is how long a socket whose token expired stays
	// connected, after task:token_expired, for the client to send a fresh one
	// (TOKEN_EXPIRY_GRACE, default 10s, 1s to 10m).
	TokenExpiryGrace time.Duration
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
	// MaxConnections bounds the authenticated Socket.IO connections of this
	// server (MAX_CONNECTIONS; default 0, no bound). Handshakes beyond it get 503
	// with Retry-After, so clients retry, through a balancer on another replica.
	// Sessions that have not authenticated yet do not count: they have
	// MaxUnauthenticated.
	MaxConnections int
	// MaxUnauthenticated bounds the engine.io sessions that have no
	// authenticated socket yet (MAX_UNAUTHENTICATED_CONNECTIONS; default 1000,
	// 0 = no bound). Each lasts at most ConnectTimeout.
	MaxUnauthenticated int
	// ConnectTimeout closes a session that has not connected an authenticated
	// socket within it (SOCKETIO_CONNECT_TIMEOUT; default 3s, 100ms to 45s).
	ConnectTimeout time.Duration
	// MaxConnectionsPerIP bounds the sessions of one client address
	// (MAX_CONNECTIONS_PER_IP; default 0, no bound). With TrustProxy the address
	// is the last one of X-Forwarded-For (the one the proxy saw).
	MaxConnectionsPerIP int
	// MaxSocketsPerIdentity bounds the authenticated sockets of one identity on
	// this server (MAX_SOCKETS_PER_IDENTITY; default 0, no bound).
	MaxSocketsPerIdentity int
	// EventsInFlight and EventsQueued bound the events of one socket handled at
	// once and waiting (SOCKETIO_EVENTS_IN_FLIGHT, default 8;
	// SOCKETIO_EVENTS_QUEUED, default 128); one more closes its connection.
	EventsInFlight int
	EventsQueued   int
	// EventWorkers bounds the socket events of the whole server handled against
	// Redis at once (SOCKETIO_EVENT_WORKERS, default 64).
	EventWorkers int
	// BodyReadTimeout bounds the time to read an HTTP request's body (API
	// requests and polling POSTs; BODY_READ_TIMEOUT, default 30s). Long-polling
	// GETs and websockets have no body and are not cut.
	BodyReadTimeout time.Duration
	// GoMemLimit is GOMEMLIMIT, the Go runtime's soft memory limit (read by
	// the runtime; here only to be logged).
	GoMemLimit string
	// TaskCreateRate and TaskCreateBurst limit how fast one identity starts tasks,
	// across all replicas (TASK_CREATE_RATE per second, default 10, 0 = no limit;
	// TASK_CREATE_BURST at once, default 20). Beyond: 429 with Retry-After.
	TaskCreateRate  float64
	TaskCreateBurst int
	// MaxActiveTasks bounds the queued and running tasks of one identity, across
	// all replicas (MAX_ACTIVE_TASKS, default 20, 0 = no bound). Beyond: 429
	// too_many_active_tasks.
	MaxActiveTasks int
	// TrustProxy believes the X-Forwarded-Proto and X-Forwarded-For headers of
	// requests (TRUST_PROXY, default false): set it behind a TLS-terminating
	// proxy, so that session cookies are marked Secure and
	// MAX_CONNECTIONS_PER_IP counts the clients' addresses, not the proxy's.
	TrustProxy bool
	// StaticDir, when set, serves the web app from this directory instead of the
	// copy built into the binary (STATIC_DIR).
	StaticDir string
	// AdminToken, when set, is the operator credential (ADMIN_TOKEN, at least 32
	// bytes): it opens the operator dashboard (/admin/), its API
	// (/api/v1/admin/) and the Socket.IO Admin UI namespace. Unset, all of them
	// are off. No user token, API key or viewer token ever opens them.
	AdminToken []byte
	// AdminUIReadOnly makes the Socket.IO Admin UI namespace read-only
	// (ADMIN_UI_READONLY, default false): no disconnecting sockets, no making
	// them leave task rooms.
	AdminUIReadOnly bool
	// AdminUIEvents relays the events every socket sends and receives to the
	// Admin UI while one is connected (ADMIN_UI_EVENTS, default false): at
	// most 50 a second per server, each a Redis publish.
	AdminUIEvents bool
	// TaskHistoryLimit is how many events of each task are kept in its history
	// for resuming clients (TASK_HISTORY_LIMIT, default 2000, 0 keeps none,
	// at most 100000); the history also expires with the task (TASK_TTL).
	TaskHistoryLimit int
	// PprofAddr, when set, serves the Go profiler (net/http/pprof) on this
	// address, on a listener of its own (PPROF_ADDR, default off). Profiles reveal
	// internals: bind it to loopback.
	PprofAddr string
}

// Load reads the configuration through getenv. All problems are reported together.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		HTTPAddr:        or(getenv("HTTP_ADDR"), ":8080"),
		StaticDir:       getenv("STATIC_DIR"),
		PprofAddr:       getenv("PPROF_ADDR"),
		GoMemLimit:      getenv("GOMEMLIMIT"),
		MaxAttempts:     3,
		ShutdownTimeout: 15 * time.Second,
		MaxBodyBytes:    64 << 10,
		ConnectTimeout:  3 * time.Second,
		EventsInFlight:  8,
		EventsQueued:    128,
		EventWorkers:    64,
		BodyReadTimeout: 30 * time.Second,

		MaxUnauthenticated: 1000,
		AnonymousSessions:  true,
		JWTLeeway:          auth.DefaultLeeway,
		TokenExpiryGrace:   10 * time.Second,

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
	// The variables the workers read too: one parser, the same rules.
	var err error
	if c.SocketIOKey, err = envconf.SocketIOKey(getenv("SOCKETIO_KEY")); err != nil {
		bad("SOCKETIO_KEY", "%v", err)
	}
	if c.SocketIOAdapter, err = envconf.SocketIOAdapter(getenv("SOCKETIO_ADAPTER")); err != nil {
		bad("SOCKETIO_ADAPTER", "%v", err)
	}
	if c.Prefix, err = envconf.Prefix(getenv("TASKWIRE_PREFIX")); err != nil {
		bad("TASKWIRE_PREFIX", "%v", err)
	}
	if c.TaskTTL, err = envconf.TaskTTL(getenv("TASK_TTL")); err != nil {
		bad("TASK_TTL", "%v", err)
	}
	if c.LogLevel, err = envconf.LogLevel(getenv("LOG_LEVEL")); err != nil {
		bad("LOG_LEVEL", "%v", err)
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
	if u, opts, err := envconf.RedisURL(getenv("REDIS_URL")); err != nil {
		bad("REDIS_URL", "%v", err)
	} else {
		c.RedisURL, c.Redis = u, opts
	}
	if s := getenv("TASKWIRE_SECRET"); s != "" {
		if len(s) < 32 {
			bad("TASKWIRE_SECRET", "must be at least 32 bytes, got %d", len(s))
		}
		c.Secret = []byte(s)
	} else {
		c.SecretGenerated = true
	}
	if s := getenv("ADMIN_TOKEN"); s != "" {
		if len(s) < 32 {
			bad("ADMIN_TOKEN", "must be at least 32 bytes, got %d", len(s))
		}
		c.AdminToken = []byte(s)
	}
	for _, v := range []struct {
		name string
		dst  *bool
	}{{"ADMIN_UI_READONLY", &c.AdminUIReadOnly}, {"ADMIN_UI_EVENTS", &c.AdminUIEvents}} {
		if s := getenv(v.name); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				bad(v.name, "%q is not true or false", s)
			} else {
				*v.dst = b
			}
		}
	}
	c.TaskHistoryLimit = DefaultTaskHistoryLimit
	if s := getenv("TASK_HISTORY_LIMIT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxTaskHistoryLimit {
			bad("TASK_HISTORY_LIMIT", "%q is not a whole number from 0 to %d", s, MaxTaskHistoryLimit)
		}
		c.TaskHistoryLimit = n
	}
	if s := getenv("ANONYMOUS_SESSIONS"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			bad("ANONYMOUS_SESSIONS", "%q is not true or false", s)
		}
		c.AnonymousSessions = b && err == nil
	}
	if s := getenv("TASKWIRE_JWT_SECRET"); s != "" {
		if len(s) < 32 {
			bad("TASKWIRE_JWT_SECRET", "must be at least 32 bytes, got %d", len(s))
		}
		c.JWTSecret = []byte(s)
	}
	if s := getenv("TASKWIRE_JWKS_URL"); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("TASKWIRE_JWKS_URL", "%s is not an http:// or https:// URL", envconf.MaskURL(s))
		}
		c.JWKSURL = s
	}
	c.JWTIssuer = getenv("TASKWIRE_JWT_ISSUER")
	c.JWTAudience = getenv("TASKWIRE_JWT_AUDIENCE")
	if s := getenv("TASKWIRE_API_KEYS"); s != "" {
		keys, err := auth.ParseAPIKeys(s)
		if err != nil {
			bad("TASKWIRE_API_KEYS", "%v", err)
		}
		c.APIKeys = keys
	}
	if !c.AnonymousSessions && c.JWTSecret == nil && c.JWKSURL == "" && len(c.APIKeys) == 0 {
		bad("ANONYMOUS_SESSIONS", "is false, but no token could be verified: set TASKWIRE_JWT_SECRET, TASKWIRE_JWKS_URL or TASKWIRE_API_KEYS")
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
	duration("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	bounded := func(name string, dst *time.Duration, lo, hi time.Duration) {
		if d, err := envconf.Duration(getenv(name), *dst, lo, hi); err != nil {
			bad(name, "%v", err)
		} else {
			*dst = d
		}
	}
	bounded("SOCKETIO_CONNECT_TIMEOUT", &c.ConnectTimeout, 100*time.Millisecond, 45*time.Second)
	bounded("TOKEN_EXPIRY_GRACE", &c.TokenExpiryGrace, time.Second, 10*time.Minute)
	bounded("TASKWIRE_JWT_LEEWAY", &c.JWTLeeway, time.Second, 5*time.Minute)
	bounded("BODY_READ_TIMEOUT", &c.BodyReadTimeout, 100*time.Millisecond, 10*time.Minute)
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
	intVar("MAX_UNAUTHENTICATED_CONNECTIONS", &c.MaxUnauthenticated, 0, 10_000_000)
	intVar("MAX_CONNECTIONS_PER_IP", &c.MaxConnectionsPerIP, 0, 10_000_000)
	intVar("MAX_SOCKETS_PER_IDENTITY", &c.MaxSocketsPerIdentity, 0, 10_000_000)
	intVar("SOCKETIO_EVENTS_IN_FLIGHT", &c.EventsInFlight, 1, 1024)
	intVar("SOCKETIO_EVENTS_QUEUED", &c.EventsQueued, 0, 100_000)
	intVar("SOCKETIO_EVENT_WORKERS", &c.EventWorkers, 1, 100_000)
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
		slog.String("redisURL", envconf.MaskURL(c.RedisURL)),
		slog.Bool("secretFromEnv", !c.SecretGenerated),
		slog.Bool("anonymousSessions", c.AnonymousSessions),
		slog.Bool("jwtSecretSet", c.JWTSecret != nil),
		slog.String("jwksURL", envconf.MaskURL(c.JWKSURL)),
		slog.String("jwtIssuer", c.JWTIssuer),
		slog.String("jwtAudience", c.JWTAudience),
		slog.String("jwtLeeway", c.JWTLeeway.String()),
		slog.Any("apiKeys", apiKeyNames(c.APIKeys)),
		slog.String("tokenExpiryGrace", c.TokenExpiryGrace.String()),
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
		slog.Int("maxUnauthenticatedConnections", c.MaxUnauthenticated),
		slog.String("socketIOConnectTimeout", c.ConnectTimeout.String()),
		slog.Int("maxConnectionsPerIP", c.MaxConnectionsPerIP),
		slog.Int("maxSocketsPerIdentity", c.MaxSocketsPerIdentity),
		slog.Int("socketIOEventsInFlight", c.EventsInFlight),
		slog.Int("socketIOEventsQueued", c.EventsQueued),
		slog.Int("socketIOEventWorkers", c.EventWorkers),
		slog.String("bodyReadTimeout", c.BodyReadTimeout.String()),
		slog.String("goMemLimit", c.GoMemLimit),
		slog.Float64("taskCreateRate", c.TaskCreateRate),
		slog.Int("taskCreateBurst", c.TaskCreateBurst),
		slog.Int("maxActiveTasks", c.MaxActiveTasks),
		slog.Bool("trustProxy", c.TrustProxy),
		slog.Bool("adminTokenSet", c.AdminToken != nil),
		slog.Bool("adminUIReadOnly", c.AdminUIReadOnly),
		slog.Bool("adminUIEvents", c.AdminUIEvents),
		slog.String("staticDir", c.StaticDir),
		slog.String("pprofAddr", c.PprofAddr),
	)
}

// apiKeyNames lists the names of keys, never their hashes.
func apiKeyNames(keys []auth.APIKey) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return names
}
