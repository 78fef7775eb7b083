package config

import (
	"strings"
	"testing"
	"time"
)

// TestTaskTTLBoundsAsTheWorker: the server refuses what the worker refuses
// (shared/envconf), a TASK_TTL under a minute first of all.
func TestTaskTTLBoundsAsTheWorker(t *testing.T) {
	for _, bad := range []string{"20s", "59s", "0", "9000h"} {
		_, err := Load(env(map[string]string{"TASK_TTL": bad}))
		if err == nil || !strings.Contains(err.Error(), "TASK_TTL") {
			t.Errorf("TASK_TTL=%s: %v, want a TASK_TTL error", bad, err)
		}
	}
	c, err := Load(env(map[string]string{"TASK_TTL": "1m"}))
	if err != nil || c.TaskTTL != time.Minute {
		t.Fatalf("TASK_TTL=1m: %v %v", c, err)
	}
}

func TestHardeningDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectTimeout != 3*time.Second || c.MaxUnauthenticated != 1000 || c.MaxConnectionsPerIP != 0 ||
		c.MaxSocketsPerIdentity != 0 || c.EventsInFlight != 8 || c.EventsQueued != 128 || c.EventWorkers != 64 ||
		c.BodyReadTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestHardeningValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"SOCKETIO_CONNECT_TIMEOUT": "500ms", "MAX_UNAUTHENTICATED_CONNECTIONS": "50", "MAX_CONNECTIONS_PER_IP": "20",
		"MAX_SOCKETS_PER_IDENTITY": "5", "SOCKETIO_EVENTS_IN_FLIGHT": "4", "SOCKETIO_EVENTS_QUEUED": "0",
		"SOCKETIO_EVENT_WORKERS": "16", "BODY_READ_TIMEOUT": "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectTimeout != 500*time.Millisecond || c.MaxUnauthenticated != 50 || c.MaxConnectionsPerIP != 20 ||
		c.MaxSocketsPerIdentity != 5 || c.EventsInFlight != 4 || c.EventsQueued != 0 || c.EventWorkers != 16 ||
		c.BodyReadTimeout != 2*time.Second {
		t.Fatalf("values: %+v", c)
	}
	_, err = Load(env(map[string]string{
		"SOCKETIO_CONNECT_TIMEOUT": "1m", "MAX_UNAUTHENTICATED_CONNECTIONS": "-1", "MAX_CONNECTIONS_PER_IP": "x",
		"MAX_SOCKETS_PER_IDENTITY": "-2", "SOCKETIO_EVENTS_IN_FLIGHT": "0", "SOCKETIO_EVENTS_QUEUED": "-1",
		"SOCKETIO_EVENT_WORKERS": "0", "BODY_READ_TIMEOUT": "forever",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"SOCKETIO_CONNECT_TIMEOUT", "MAX_UNAUTHENTICATED_CONNECTIONS", "MAX_CONNECTIONS_PER_IP",
		"MAX_SOCKETS_PER_IDENTITY", "SOCKETIO_EVENTS_IN_FLIGHT", "SOCKETIO_EVENTS_QUEUED", "SOCKETIO_EVENT_WORKERS", "BODY_READ_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
}
