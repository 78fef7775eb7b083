package config

import (
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
	if c.HTTPAddr != ":8080" || c.Redis.Addr != "127.0.0.1:6379" || !c.SecretGenerated || c.TaskTTL != 24*time.Hour || c.MaxAttempts != 3 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"HTTP_ADDR": "127.0.0.1:9000", "REDIS_URL": "rediss://user:pw@redis.internal:6380/2",
		"TASKWIRE_SECRET": strings.Repeat("s", 32), "LOG_LEVEL": "debug", "TASK_TTL": "1h",
		"ALLOWED_ORIGINS": "https://a.example.com, http://localhost:5173/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Username != "user" || c.Redis.Password != "pw" || c.Redis.DB != 2 || c.Redis.TLSConfig == nil {
		t.Fatalf("redis options: %+v", c.Redis)
	}
	if got := strings.Join(c.AllowedOrigins, " "); got != "https://a.example.com http://localhost:5173" {
		t.Fatalf("origins %q", got)
	}
	if s := c.LogValue().String(); strings.Contains(s, "pw") {
		t.Fatalf("password logged: %s", s)
	}
}

func TestErrorsReportedTogether(t *testing.T) {
	_, err := Load(env(map[string]string{
		"HTTP_ADDR": "8080", "REDIS_URL": "http://x", "TASKWIRE_SECRET": "short",
		"LOG_LEVEL": "loud", "TASK_TTL": "-1s", "TASK_MAX_ATTEMPTS": "0", "ALLOWED_ORIGINS": "ftp://x",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"HTTP_ADDR", "REDIS_URL", "TASKWIRE_SECRET", "LOG_LEVEL", "TASK_TTL", "TASK_MAX_ATTEMPTS", "ALLOWED_ORIGINS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
}

func TestPprofAddr(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.PprofAddr != "" {
		t.Fatalf("default: %q, %v (want off)", c.PprofAddr, err)
	}
	c, err = Load(env(map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}))
	if err != nil || c.PprofAddr != "127.0.0.1:6060" {
		t.Fatalf("set: %q, %v", c.PprofAddr, err)
	}
	if _, err := Load(env(map[string]string{"PPROF_ADDR": "6060"})); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
		t.Fatalf("bad value: %v", err)
	}
}

func TestSocketIOAdapter(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.SocketIOAdapter != "classic" || c.SocketIOSubscriptionMode != "" {
		t.Fatalf("default: %q %q %v", c.SocketIOAdapter, c.SocketIOSubscriptionMode, err)
	}
	c, err = Load(env(map[string]string{"SOCKETIO_ADAPTER": "sharded"}))
	if err != nil || c.SocketIOAdapter != "sharded" || c.SocketIOSubscriptionMode != "dynamic" {
		t.Fatalf("sharded: %q %q %v", c.SocketIOAdapter, c.SocketIOSubscriptionMode, err)
	}
	c, err = Load(env(map[string]string{"SOCKETIO_ADAPTER": "sharded", "SOCKETIO_SUBSCRIPTION_MODE": "static"}))
	if err != nil || c.SocketIOSubscriptionMode != "static" {
		t.Fatalf("static: %q %v", c.SocketIOSubscriptionMode, err)
	}
	for _, bad := range []map[string]string{
		{"SOCKETIO_ADAPTER": "streams"},
		{"SOCKETIO_ADAPTER": "sharded", "SOCKETIO_SUBSCRIPTION_MODE": "sometimes"},
		{"SOCKETIO_SUBSCRIPTION_MODE": "static"},
	} {
		if _, err := Load(env(bad)); err == nil || !strings.Contains(err.Error(), "SOCKETIO_") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestAdminUI(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.AdminToken != nil || c.AdminUIReadOnly || c.AdminUIEvents {
		t.Fatalf("default: %v %v %v %v (want off)", c.AdminToken, c.AdminUIReadOnly, c.AdminUIEvents, err)
	}
	token := strings.Repeat("t", 32)
	c, err = Load(env(map[string]string{"ADMIN_TOKEN": token, "ADMIN_UI_READONLY": "true", "ADMIN_UI_EVENTS": "1"}))
	if err != nil || string(c.AdminToken) != token || !c.AdminUIReadOnly || !c.AdminUIEvents {
		t.Fatalf("set: %+v %v", c, err)
	}
	if s := c.LogValue().String(); strings.Contains(s, token) || !strings.Contains(s, "adminTokenSet=true") {
		t.Fatalf("logged: %s", s)
	}
	_, err = Load(env(map[string]string{"ADMIN_UI_READONLY": "sometimes", "ADMIN_UI_EVENTS": "lots"}))
	if err == nil || !strings.Contains(err.Error(), "ADMIN_UI_READONLY") || !strings.Contains(err.Error(), "ADMIN_UI_EVENTS") {
		t.Fatalf("bad values: %v", err)
	}
}
