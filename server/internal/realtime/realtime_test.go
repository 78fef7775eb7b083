package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
)

// tokens maps test tokens to identities.
var tokens = map[string]string{"tok-alice": "alice", "tok-bob": "bob"}

func authenticateID(token string) (string, error) {
	if id, ok := tokens[token]; ok {
		return id, nil
	}
	return "", errors.New("bad token")
}

type replica struct {
	srv    *realtime.Server
	url    string
	client *redis.Client
	http   *httptest.Server
}

func newReplica(t *testing.T, addr string, mutate func(*realtime.Config)) *replica {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	cfg := realtime.Config{
		Redis:        client,
		Authenticate: authenticate,
		CookieName:   "taskwire_session",
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv, err := realtime.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = client.Close()
	})
	return &replica{srv: srv, url: hs.URL + "/socket.io/", client: client, http: hs}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opts *eiotest.Options) *eiotest.Conn {
	t.Helper()
	c, err := eiotest.DialWebSocket(ctxT(t, 5*time.Second), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func connect(t *testing.T, r *replica, token string) (*eiotest.Conn, string) {
	t.Helper()
	c := dial(t, r.url, nil)
	sid, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": token})
	if err != nil {
		t.Fatal(err)
	}
	return c, sid
}

func expectEvent(t *testing.T, c *eiotest.Conn, name string) eiotest.Packet {
	t.Helper()
	p, err := c.NextEvent(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("waiting for %q: %v", name, err)
	}
	if p.EventName() != name {
		t.Fatalf("got %s, want %q", p.Data, name)
	}
	return p
}

func TestAuthentication(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, nil)

	t.Run("token", func(t *testing.T) {
		c, _ := connect(t, r, "tok-alice")
		// The socket is in its user room.
		if err := r.srv.IO().To(socket.Room(events.UserRoom("alice"))).Emit("hi"); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, c, "hi")
	})
	t.Run("cookie", func(t *testing.T) {
		c := dial(t, r.url, &eiotest.Options{Header: http.Header{"Cookie": {"other=1; taskwire_session=tok-bob"}}})
		if _, err := c.Connect(ctxT(t, 5*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.IO().To(socket.Room(events.UserRoom("bob"))).Emit("hi-bob"); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, c, "hi-bob")
	})
	t.Run("token wins over cookie", func(t *testing.T) {
		c := dial(t, r.url, &eiotest.Options{Header: http.Header{"Cookie": {"taskwire_session=tok-bob"}}})
		_, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "forged"})
		var ce *eiotest.ConnectError
		if !errors.As(err, &ce) || ce.Message != "unauthorized" {
			t.Fatalf("want connect_error unauthorized, got %v", err)
		}
	})
	for name, auth := range map[string]any{
		"bad token":      map[string]any{"token": "nope"},
		"no credentials": nil,
		"token not text": map[string]any{"token": 42},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, r.url, nil)
			_, err := c.Connect(ctxT(t, 5*time.Second), auth)
			var ce *eiotest.ConnectError
			if !errors.As(err, &ce) || ce.Message != "unauthorized" {
				t.Fatalf("want connect_error unauthorized, got %v", err)
			}
		})
	}
	t.Run("polling", func(t *testing.T) {
		c, err := eiotest.DialPolling(ctxT(t, 5*time.Second), r.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if _, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOnConnectionSeesFirstEvent(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.OnConnection = func(s *socket.Socket, p *auth.Principal) {
			identity := p.Identity
			_ = s.On("whoami", func(args ...any) {
				if ack, ok := args[len(args)-1].(socket.Ack); ok {
					ack([]any{identity}, nil)
				}
			})
		}
	})
	c, _ := connect(t, r, "tok-alice")
	// Sent right after the connect reply, with no pause.
	if err := c.SendRaw(`421["whoami"]`); err != nil {
		t.Fatal(err)
	}
	p, err := c.Next(ctxT(t, 5*time.Second))
	if err != nil || p.Type != eiotest.TypeAck || string(p.Data) != `["alice"]` {
		t.Fatalf("ack: %+v %v", p, err)
	}
}

// TestCatchAllListenersSeeEventsInOrder: the handlers OnConnection attaches
// as catch-all listeners (as the task events' are) see a client's events in
// the order it sent them.
func TestCatchAllListenersSeeEventsInOrder(t *testing.T) {
	const n = 300
	got := make(chan float64, n)
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.OnConnection = func(s *socket.Socket, _ *auth.Principal) {
			s.OnAny(func(args ...any) {
				if v, ok := args[len(args)-1].(float64); ok {
					got <- v
				}
			})
		}
	})
	c, _ := connect(t, r, "tok-alice")
	for i := range n {
		if err := c.SendRaw(fmt.Sprintf(`42["e",%d]`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case v := <-got:
			if v != float64(i) {
				t.Fatalf("event %d reached the listener as number %d", int(v), i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d events of %d arrived", i, n)
		}
	}
}

func TestJoinTaskAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newReplica(t, rs.Addr, nil), newReplica(t, rs.Addr, nil)
	alice, aliceSid := connect(t, a, "tok-alice")
	bob, bobSid := connect(t, a, "tok-bob")
	em := emitter.New(b.client, nil)
	ctx := ctxT(t, 5*time.Second)

	// The HTTP layer of B joins alice's socket (on A) to her task, then the
	// worker's first event follows at once.
	if err := b.srv.JoinTask(ctx, "alice", aliceSid, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := em.To(events.TaskRoom("t1")).Emit(ctx, "task:progress", map[string]any{"taskId": "t1", "seq": 1}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, alice, "task:progress")

	// Bob's identity cannot pull alice's socket into his task, on either replica.
	for _, r := range []*replica{a, b} {
		if err := r.srv.JoinTask(ctx, "bob", aliceSid, "t2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := em.To(events.TaskRoom("t2")).Emit(ctx, "task:progress", map[string]any{"taskId": "t2"}); err != nil {
		t.Fatal(err)
	}
	// Own socket on the same replica (local path).
	if err := a.srv.JoinTask(ctx, "bob", bobSid, "t3"); err != nil {
		t.Fatal(err)
	}
	if err := em.To(events.TaskRoom("t3")).Emit(ctx, "task:progress", map[string]any{"taskId": "t3"}); err != nil {
		t.Fatal(err)
	}
	p := expectEvent(t, bob, "task:progress")
	if !strings.Contains(string(p.Data), `"t3"`) {
		t.Fatalf("bob got %s", p.Data)
	}
	// Alice's next event is the marker, not t2's progress.
	if err := em.Emit(ctx, "marker"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, alice, "marker")

	if err := a.srv.JoinTask(ctx, "", aliceSid, "t1"); err == nil {
		t.Fatal("JoinTask accepted an empty identity")
	}
}

// TestJoinTaskShardedDynamic: with the sharded adapter's dynamic mode, a worker's
// event right after JoinTask for a socket of this server reaches it, every time
// (the join alone only asks Redis for the room's subscription).
func TestJoinTaskShardedDynamic(t *testing.T) {
	rs := redistest.Start(t)
	a := newReplica(t, rs.Addr, func(c *realtime.Config) { c.Sharded, c.SubscriptionMode = true, "dynamic" })
	alice, sid := connect(t, a, "tok-alice")
	em := emitter.New(a.client, &emitter.Options{Sharded: true, SubscriptionMode: emitter.SubscriptionDynamic})
	ctx := ctxT(t, 20*time.Second)
	for i := range 100 {
		task := fmt.Sprintf("t%d", i)
		if err := a.srv.JoinTask(ctx, "alice", sid, task); err != nil {
			t.Fatal(err)
		}
		if err := em.To(events.TaskRoom(task)).Emit(ctx, "task:progress", map[string]any{"taskId": task, "seq": 1}); err != nil {
			t.Fatal(err)
		}
		if p := expectEvent(t, alice, "task:progress"); !strings.Contains(string(p.Data), `"`+task+`"`) {
			t.Fatalf("round %d: got %s", i, p.Data)
		}
	}
}

func TestOrigins(t *testing.T) {
	rs := redistest.Start(t)
	same := newReplica(t, rs.Addr, nil)
	listed := newReplica(t, rs.Addr, func(c *realtime.Config) { c.AllowedOrigins = []string{"https://app.example"} })
	handshake := func(r *replica, origin string) int {
		req, _ := http.NewRequest(http.MethodGet, r.url+"?EIO=4&transport=polling", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if origin == "https://app.example" && res.StatusCode == 200 && res.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("no CORS header for an allowed origin")
		}
		return res.StatusCode
	}
	for _, tc := range []struct {
		r      *replica
		origin string
		want   int
	}{
		{same, "", 200},
		{same, same.http.URL, 200},
		{same, "https://evil.example", 403},
		{listed, "https://app.example", 200},
		{listed, "https://evil.example", 403},
	} {
		if got := handshake(tc.r, tc.origin); got != tc.want {
			t.Errorf("origin %q: status %d, want %d", tc.origin, got, tc.want)
		}
	}
	if _, err := realtime.New(context.Background(), realtime.Config{Redis: same.client, Authenticate: authenticate, AllowedOrigins: []string{"app.example"}}); err == nil {
		t.Error("New accepted an origin without scheme")
	}
}

func TestShutdown(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, nil)
	c1, _ := connect(t, r, "tok-alice")
	c2, _ := connect(t, r, "tok-bob")
	if st := r.srv.Stats(); st.Sockets != 2 || st.Transports["websocket"] != 2 {
		t.Fatalf("stats before shutdown: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	for _, c := range []*eiotest.Conn{c1, c2} {
		select {
		case <-c.Done():
		case <-ctxT(t, 5*time.Second).Done():
			t.Fatal("client still connected after Shutdown")
		}
	}
	res, err := http.Get(r.url + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after shutdown: %d", res.StatusCode)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := realtime.New(context.Background(), realtime.Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := realtime.New(ctx, realtime.Config{Redis: dead, Authenticate: authenticate}); err == nil {
		t.Fatal("New accepted an unreachable Redis")
	}
}

func authenticate(token string) (*auth.Principal, error) {
	id, err := authenticateID(token)
	if err != nil {
		return nil, err
	}
	return &auth.Principal{Identity: id, Kind: auth.KindUser}, nil
}
