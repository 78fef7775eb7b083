// Package envconf parses the environment variables that taskwire-server and
// taskwire-worker share, with one set of rules and bounds, so that a value one
// of them accepts the other accepts too: TASK_TTL, LOG_LEVEL, SOCKETIO_KEY,
// SOCKETIO_ADAPTER, TASKWIRE_PREFIX and REDIS_URL. Each function takes the variable's
// value ("" when unset, which gives the default) and returns an error that
// says what is wanted, without the variable's name (the caller adds it).
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults and bounds of the shared variables.
const (
	// DefaultTaskTTL is how long task records and results are kept.
	DefaultTaskTTL = 24 * time.Hour
	// MinTaskTTL is the shortest TASK_TTL: a record must outlive its task.
	MinTaskTTL = time.Minute
	// MaxTaskTTL is the longest TASK_TTL.
	MaxTaskTTL = 365 * 24 * time.Hour
	// DefaultSocketIOKey is the default prefix of the Socket.IO Redis channels.
	DefaultSocketIOKey = "socket.io"
	// DefaultPrefix is the default prefix of taskwire's Redis keys.
	DefaultPrefix = "taskwire"
)

// TaskTTL parses TASK_TTL: a Go duration between MinTaskTTL and MaxTaskTTL.
func TaskTTL(s string) (time.Duration, error) {
	return Duration(s, DefaultTaskTTL, MinTaskTTL, MaxTaskTTL)
}

// Duration parses a Go duration ("90s", "24h") between lo and hi; "" is def.
func Duration(s string, def, lo, hi time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%q is not a duration between %s and %s (for example 30s)", s, lo, hi)
	}
	return d, nil
}

// LogLevel parses LOG_LEVEL: debug, info, warn (or warning) or error, in any
// case; "" is info.
func LogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// SocketIOKey parses SOCKETIO_KEY, the prefix of the Socket.IO channels: no
// '#', glob characters or white space (they would change the channels it
// names); "" is DefaultSocketIOKey.
func SocketIOKey(s string) (string, error) {
	if s == "" {
		return DefaultSocketIOKey, nil
	}
	if strings.ContainsAny(s, "#*?[] \t\r\n") {
		return "", fmt.Errorf("%q must not contain '#', glob characters or white space", s)
	}
	return s, nil
}

// SocketIOAdapter parses SOCKETIO_ADAPTER: classic or sharded; "" is classic.
func SocketIOAdapter(s string) (string, error) {
	switch s {
	case "":
		return "classic", nil
	case "classic", "sharded":
		return s, nil
	}
	return "", fmt.Errorf("%q is not classic or sharded", s)
}

// Prefix parses TASKWIRE_PREFIX, the prefix of taskwire's Redis keys: no
// braces (Redis Cluster hash tags), glob characters or white space; "" is
// DefaultPrefix.
func Prefix(s string) (string, error) {
	if s == "" {
		return DefaultPrefix, nil
	}
	if strings.ContainsAny(s, "{}*?[] \t\r\n") {
		return "", fmt.Errorf("%q must not contain braces, glob characters or white space", s)
	}
	return s, nil
}

// DefaultRedisURL is the Redis that REDIS_URL names when unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL parses REDIS_URL: redis:// or rediss://, with user and password when
// needed; "" is DefaultRedisURL. It returns the URL used and its options. The
// error shows the URL masked (MaskURL), never its password.
func RedisURL(s string) (string, *redis.Options, error) {
	if s == "" {
		s = DefaultRedisURL
	}
	opts, err := redis.ParseURL(s)
	if err != nil {
		// net/url's errors quote the whole URL, password included: keep only the reason.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return s, nil, fmt.Errorf("%q: %v (want redis://[user:password@]host:port/db or rediss://...)", MaskURL(s), err)
	}
	return s, opts, nil
}

// MaskURL returns u with its password replaced by "xxxxx", in the user
// information and in a password query parameter, for logs and errors.
func MaskURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	if p.User != nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		}
	}
	if q := p.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.String()
}
