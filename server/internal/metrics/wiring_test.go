package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/metrics"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/testwait"
)

// server is the HTTP API and the Socket.IO server wired to one Metrics, as
// taskwire-server wires them, on a test Redis.
type server struct {
	m   *metrics.Metrics
	rt  *realtime.Server
	url string
	rdb *redis.Client
}

func newServer(t *testing.T) *server {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	signer, err := session.NewSigner(bytes.Repeat([]byte("k"), 32))
	verifier, _ := auth.New(context.Background(), auth.Config{Sessions: signer})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(&metrics.Options{NoRuntime: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := realtime.New(ctx, realtime.Config{
		Redis: rdb, Authenticate: func(tok string) (*auth.Principal, error) { return verifier.Verify(context.Background(), tok) }, Observer: m,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Watch(rt.Stats)
	st := store.New(rdb, nil)
	kindtest.RegisterExport(t, st)
	tasks := taskservice.New(taskservice.Config{Store: st, Joiner: rt})
	h := httpapi.NewRouter(httpapi.Deps{
		Signer: signer, Tasks: tasks, Realtime: rt.Handler(),
		Metrics: m.Handler(), Observer: m,
	})
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
		hs.Close()
	})
	return &server{m: m, rt: rt, url: hs.URL, rdb: rdb}
}

func (s *server) do(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestServerWiring drives the real HTTP API and Socket.IO server with a
// websocket client, a polling client that upgrades, a refused client and an
// emitter standing in for a worker, and checks that each metric moved by what
// happened.
func TestServerWiring(t *testing.T) {
	s := newServer(t)
	m := s.m
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	code, body := s.do(t, "GET", "/api/v1/session", "", "")
	var sess struct{ Token string }
	if code != 200 || json.Unmarshal(body, &sess) != nil {
		t.Fatalf("session: %d %s", code, body)
	}

	ws, err := eiotest.DialWebSocket(ctx, s.url+"/socket.io/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sid, err := ws.Connect(ctx, map[string]any{"token": sess.Token})
	if err != nil {
		t.Fatal(err)
	}
	poll, err := eiotest.DialPolling(ctx, s.url+"/socket.io/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer poll.Close()
	if _, err := poll.Connect(ctx, map[string]any{"token": sess.Token}); err != nil {
		t.Fatal(err)
	}
	if err := poll.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	bad, err := eiotest.DialWebSocket(ctx, s.url+"/socket.io/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var ce *eiotest.ConnectError
	if _, err := bad.Connect(ctx, map[string]any{"token": "forged"}); !errors.As(err, &ce) {
		t.Fatalf("a forged token connected: %v", err)
	}

	// A task, followed by the websocket client from its first event.
	code, body = s.do(t, "POST", "/api/v1/tasks", sess.Token, `{"kind":"export","params":{"rows":10},"socketId":"`+sid+`"}`)
	var created struct{ ID string }
	if code != 202 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := s.do(t, "POST", "/api/v1/tasks", sess.Token, `{"kind":"nope"}`); code != 400 {
		t.Fatalf("bad create: %d", code)
	}
	s.do(t, "GET", "/no/such/page", "", "")

	// The worker's event, published 40 ms ago by its clock.
	em := emitter.New(s.rdb, nil)
	emitted := time.Now().Add(-40 * time.Millisecond).UnixMilli()
	if err := em.To(events.TaskRoom(created.ID)).Emit(ctx, events.TaskProgress,
		events.Progress{TaskID: created.ID, Seq: 1, Stage: "started", EmittedAt: emitted}); err != nil {
		t.Fatal(err)
	}
	p, err := ws.NextEvent(ctx)
	if err != nil || p.EventName() != events.TaskProgress {
		t.Fatalf("client got %s, %v", p.Data, err)
	}
	if !strings.Contains(string(p.Data), `"emittedAt":`) {
		t.Errorf("the client's payload lacks emittedAt: %s", p.Data)
	}

	testwait.For(t, 5*time.Second, "the upgrade to be counted", func() bool {
		return value(t, m, "taskwire_socketio_upgrades_total", "transport", "websocket") == 1
	})
	// The refused session closes right after its refusal.
	testwait.For(t, 5*time.Second, "the refused session to close", func() bool {
		return value(t, m, "taskwire_socketio_connections", "transport", "websocket") == 2
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"taskwire_http_requests_total", []string{"method", "POST", "route", "/api/v1/tasks", "status", "202"}, 1},
		{"taskwire_http_requests_total", []string{"method", "POST", "route", "/api/v1/tasks", "status", "400"}, 1},
		{"taskwire_http_requests_total", []string{"method", "GET", "route", "/api/v1/session", "status", "200"}, 1},
		{"taskwire_http_requests_total", []string{"method", "GET", "route", "other", "status", "404"}, 1},
		{"taskwire_tasks_enqueued_total", []string{"kind", "export"}, 1},
		{"taskwire_socketio_sessions_opened_total", []string{"transport", "websocket"}, 2},
		{"taskwire_socketio_sessions_opened_total", []string{"transport", "polling"}, 1},
		{"taskwire_socketio_connects_total", nil, 2},
		{"taskwire_socketio_connect_errors_total", []string{"reason", "unauthorized"}, 1},
		{"taskwire_socketio_sockets", nil, 2},
		{"taskwire_socketio_connections", []string{"transport", "websocket"}, 2},
		{"taskwire_socketio_connections", []string{"transport", "polling"}, 0},
		{"taskwire_socketio_events_sent_total", []string{"event", "task:progress"}, 1},
		{"taskwire_adapter_broadcasts_relayed_total", nil, 1},
		{"taskwire_adapter_decode_errors_total", nil, 0},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	n, sum := histogram(t, m, "taskwire_event_delay_seconds", "event", "task:progress")
	if n != 1 || sum < 0.039 || sum > 5 {
		t.Errorf("event delay: count %d sum %v, want one of at least 40 ms", n, sum)
	}

	// /metrics is served by the router (and counted like any route).
	code, body = s.do(t, "GET", "/metrics", "", "")
	if code != 200 || !bytes.Contains(body, []byte(`taskwire_tasks_enqueued_total{kind="export"} 1`)) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
}

// TestDrainingRefusesNewSessions: once the server drains, handshakes are refused
// and counted by reason.
func TestDrainingRefusesNewSessions(t *testing.T) {
	s := newServer(t)
	if code, _ := s.do(t, "GET", "/socket.io/?EIO=4&transport=polling", "", ""); code != 200 {
		t.Fatalf("handshake before draining: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.do(t, "GET", "/socket.io/?EIO=4&transport=polling", "", ""); code != 503 {
		t.Fatalf("handshake while draining: %d", code)
	}
	if got := value(t, s.m, "taskwire_socketio_sessions_opened_total", "transport", "polling"); got != 1 {
		t.Errorf("sessions opened = %v, want 1", got)
	}
	if got := value(t, s.m, "taskwire_socketio_connect_errors_total", "reason", "shutting_down"); got != 1 {
		t.Errorf("refused while draining = %v, want 1", got)
	}
}
