package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Addr != "127.0.0.1:6379" || c.Redis.DB != 0 || c.Concurrency != 2 || c.ShutdownTimeout != 25*time.Second ||
		c.LeaseTimeout != 30*time.Second || c.MaxAttempts != 3 || c.ResultMaxBytes != 128<<20 || c.ProgressMaxRate != 10 ||
		c.LogLevel != slog.LevelInfo || c.SocketIOKey != "socket.io" || c.Prefix != "taskwire" || c.TaskTTL != 24*time.Hour ||
		c.MetricsAddr != ":9091" || c.ExportRowDelay != 0 || c.ReportPageDelay != 0 || c.TrainEpochDelay != 0 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"REDIS_URL":               "rediss://bob:s3cret@redis.example:6380/2",
		"WORKER_CONCURRENCY":      "8",
		"WORKER_SHUTDOWN_TIMEOUT": "5",
		"WORKER_LEASE_TIMEOUT":    "2s",
		"WORKER_MAX_ATTEMPTS":     "5",
		"RESULT_MAX_BYTES":        "10MiB",
		"PROGRESS_MAX_RATE":       "2.5",
		"LOG_LEVEL":               "DEBUG",
		"SOCKETIO_KEY":            "sio",
		"TASKWIRE_PREFIX":         "tw:test",
		"TASK_TTL":                "48h",
		"METRICS_ADDR":            "off",
		"EXPORT_ROW_DELAY":        "1ms",
		"REPORT_PAGE_DELAY":       "0.5",
		"TRAIN_EPOCH_DELAY":       "250ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Username != "bob" || c.Redis.Password != "s3cret" || c.Redis.DB != 2 || c.Redis.TLSConfig == nil ||
		c.Concurrency != 8 || c.ShutdownTimeout != 5*time.Second || c.LeaseTimeout != 2*time.Second || c.MaxAttempts != 5 ||
		c.ResultMaxBytes != 10<<20 || c.ProgressMaxRate != 2.5 || c.LogLevel != slog.LevelDebug || c.SocketIOKey != "sio" ||
		c.Prefix != "tw:test" || c.TaskTTL != 48*time.Hour || c.MetricsAddr != "" || c.ExportRowDelay != time.Millisecond ||
		c.ReportPageDelay != 500*time.Millisecond || c.TrainEpochDelay != 250*time.Millisecond {
		t.Fatalf("values: %+v", c)
	}
	for _, a := range c.LogAttrs() {
		if strings.Contains(a.Value.String(), "s3cret") {
			t.Fatalf("secret logged in %s", a)
		}
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]string{
		"REDIS_URL":               "http://localhost",
		"WORKER_CONCURRENCY":      "zero",
		"WORKER_SHUTDOWN_TIMEOUT": "-1s",
		"WORKER_LEASE_TIMEOUT":    "1ms",
		"WORKER_MAX_ATTEMPTS":     "0",
		"RESULT_MAX_BYTES":        "12 parsecs",
		"PROGRESS_MAX_RATE":       "fast",
		"LOG_LEVEL":               "loud",
		"SOCKETIO_KEY":            "a#b",
		"TASKWIRE_PREFIX":         "a b",
		"TASK_TTL":                "1s",
		"METRICS_ADDR":            "9091",
		"EXPORT_ROW_DELAY":        "1h",
		"REPORT_PAGE_DELAY":       "2s",
		"TRAIN_EPOCH_DELAY":       "-1ms",
	}
	// Each bad value alone is reported, naming its variable.
	for name, value := range cases {
		_, err := Load(env(map[string]string{name: value}))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s=%q: err = %v, want *Error", name, value, err)
		}
		if !strings.Contains(err.Error(), name+": ") || !strings.Contains(err.Error(), value) {
			t.Errorf("%s=%q: error %q does not name the variable and value", name, value, err)
		}
	}
	// All together: every one of them is listed.
	_, err := Load(env(cases))
	for name := range cases {
		if !strings.Contains(err.Error(), name+": ") {
			t.Errorf("combined error misses %s: %v", name, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "10B": 10, "2kb": 2000, "3KiB": 3072, "128MiB": 128 << 20, "1GB": 1e9, " 5 mib ": 5 << 20} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "1TB", "99999999999999999999", "9223372036854775807GiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", in)
		}
	}
}

func TestMaskURL(t *testing.T) {
	if got := MaskURL("redis://user:pw@h:1/0"); got != "redis://user:xxxxx@h:1/0" {
		t.Fatalf("got %s", got)
	}
	if got := MaskURL("redis://h:1/0"); got != "redis://h:1/0" {
		t.Fatalf("got %s", got)
	}
}
