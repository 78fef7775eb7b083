package config

import (
	"strings"
	"testing"
)

func TestLimitDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SocketIOMaxMessageBytes != 1_000_000 || c.MaxConnections != 0 || c.TaskCreateRate != 10 ||
		c.TaskCreateBurst != 20 || c.MaxActiveTasks != 20 || c.TrustProxy || c.MaxBodyBytes != 64<<10 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLimitValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"SOCKETIO_MAX_MESSAGE_BYTES": "2048", "MAX_CONNECTIONS": "500", "TASK_CREATE_RATE": "0.5",
		"TASK_CREATE_BURST": "3", "MAX_ACTIVE_TASKS": "0", "TRUST_PROXY": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SocketIOMaxMessageBytes != 2048 || c.MaxConnections != 500 || c.TaskCreateRate != 0.5 ||
		c.TaskCreateBurst != 3 || c.MaxActiveTasks != 0 || !c.TrustProxy {
		t.Fatalf("values: %+v", c)
	}
	if c, err := Load(env(map[string]string{"TASK_CREATE_RATE": "0"})); err != nil || c.TaskCreateRate != 0 {
		t.Fatalf("rate 0 (off): %v %v", c, err)
	}
}

func TestLimitErrors(t *testing.T) {
	_, err := Load(env(map[string]string{
		"SOCKETIO_MAX_MESSAGE_BYTES": "10", "MAX_CONNECTIONS": "-1", "TASK_CREATE_RATE": "fast",
		"TASK_CREATE_BURST": "0", "MAX_ACTIVE_TASKS": "many", "TRUST_PROXY": "maybe",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"SOCKETIO_MAX_MESSAGE_BYTES", "MAX_CONNECTIONS", "TASK_CREATE_RATE", "TASK_CREATE_BURST", "MAX_ACTIVE_TASKS", "TRUST_PROXY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
	for _, bad := range []string{"NaN", "-1", "Inf"} {
		if _, err := Load(env(map[string]string{"TASK_CREATE_RATE": bad})); err == nil {
			t.Errorf("TASK_CREATE_RATE=%s accepted", bad)
		}
	}
}

// TestRedisURLErrorHidesPassword: a REDIS_URL that does not parse is reported
// without its password (net/url's own errors quote the whole URL).
func TestRedisURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2-secret@host:notaport/0",
		"redis://user:hunter2-secret@host:6379/notadb",
		"rediss://:hunter2-secret@host:6379/0?dial_timeout=never",
		"redis://user:hunter2 secret@host/0",
	} {
		_, err := Load(env(map[string]string{"REDIS_URL": u}))
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
			t.Fatalf("%s: err = %v", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	c, err := Load(env(map[string]string{"REDIS_URL": "redis://user:hunter2-secret@host:6379/0"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "user") {
		t.Fatalf("logged configuration: %s", s)
	}
}
