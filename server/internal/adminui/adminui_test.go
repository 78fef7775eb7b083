package adminui_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/adminui"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/testwait"
)

const token = "operator-token-operator-token-0123456789"

// userTokens are the user tokens of the tests.
var userTokens = map[string]string{"tok-alice": "alice"}

func authenticate(tok string) (*auth.Principal, error) {
	if id, ok := userTokens[tok]; ok {
		return &auth.Principal{Identity: id, Kind: auth.KindUser}, nil
	}
	return nil, errors.New("bad token")
}

type replica struct {
	rt    *realtime.Server
	admin *adminui.Admin
	url   string
}

// newReplica starts a Socket.IO server of taskwire on redis at addr, with the
// Admin UI namespace when cfg is not nil.
func newReplica(t *testing.T, addr string, cfg *adminui.Config) *replica {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := realtime.New(ctx, realtime.Config{Redis: client, Authenticate: authenticate,
		KeepHeaders: adminui.KeptHeaders, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{rt: rt}
	if cfg != nil {
		cfg.Logger = log
		if r.admin, err = adminui.Install(rt.IO(), *cfg); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", rt.Handler())
	hs := httptest.NewServer(mux)
	r.url = hs.URL + "/socket.io/"
	t.Cleanup(func() {
		if r.admin != nil {
			r.admin.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
		hs.Close()
		_ = client.Close()
	})
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a websocket session at url with the headers of a browser.
func dial(t *testing.T, url string) *eiotest.Conn {
	t.Helper()
	h := http.Header{"User-Agent": {"adminui-test"}, "Cookie": {"taskwire_session=cookie-secret"}}
	c, err := eiotest.DialWebSocket(ctxT(t, 5*time.Second), url+"?token=query-secret", &eiotest.Options{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connectAdmin connects a session to the admin namespace with auth.
func connectAdmin(t *testing.T, c *eiotest.Conn, auth any) (string, error) {
	t.Helper()
	msg := "40" + adminui.Namespace + ","
	if auth != nil {
		b, _ := json.Marshal(auth)
		msg += string(b)
	}
	if err := c.SendRaw(msg); err != nil {
		t.Fatal(err)
	}
	return c.AwaitConnect(ctxT(t, 5*time.Second))
}

// admin is a UI's socket: the events it received, by name.
type admin struct {
	t      *testing.T
	c      *eiotest.Conn
	events chan eiotest.Packet
}

func newAdmin(t *testing.T, url string, auth any) *admin {
	c := dial(t, url)
	if _, err := connectAdmin(t, c, auth); err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	a := &admin{t: t, c: c, events: make(chan eiotest.Packet, 1024)}
	go func() {
		for {
			p, err := c.Next(context.Background())
			if err != nil {
				close(a.events)
				return
			}
			a.events <- p
		}
	}()
	return a
}

// wait returns the next packet that pred accepts.
func (a *admin) wait(what string, pred func(p eiotest.Packet) bool) eiotest.Packet {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-a.events:
			if !ok {
				a.t.Fatalf("session closed waiting for %s", what)
			}
			if pred(p) {
				return p
			}
		case <-timeout:
			a.t.Fatalf("no %s within 10s", what)
		}
	}
}

// next returns the arguments of the next event called name that pred (when
// not nil) accepts.
func (a *admin) next(name string, pred func(args []json.RawMessage) bool) []json.RawMessage {
	a.t.Helper()
	return a.wait(name, func(p eiotest.Packet) bool {
		isEvent := p.Type == eiotest.TypeEvent || p.Type == eiotest.TypeBinaryEvent
		return p.Nsp == adminui.Namespace && isEvent && p.EventName() == name && (pred == nil || pred(p.Args()))
	}).Args()
}

// ack returns the data of the acknowledgement id.
func (a *admin) ack(id int) json.RawMessage {
	a.t.Helper()
	return a.wait("ack", func(p eiotest.Packet) bool {
		return p.Type == eiotest.TypeAck && p.ID != nil && *p.ID == id
	}).Data
}

type serialized struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake map[string]any `json:"handshake"`
	Rooms     []string       `json:"rooms"`
}

func TestAdminUIAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	a := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token), ServerID: "replica-a", StatsInterval: 200 * time.Millisecond})
	b := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token), ServerID: "replica-b", StatsInterval: 200 * time.Millisecond})

	// A user on replica b, following a task.
	user := dial(t, b.url)
	userID, err := user.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rt.JoinTask(ctxT(t, 5*time.Second), "alice", userID, "t-1"); err != nil {
		t.Fatal(err)
	}

	// The UI on replica a, with the basic login.
	ui := newAdmin(t, a.url, map[string]any{"username": "anyone", "password": token})
	session := ui.next("session", nil)
	var sessionID string
	_ = json.Unmarshal(session[0], &sessionID)
	cfg := ui.next("config", nil)
	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	_ = json.Unmarshal(cfg[0], &config)
	for _, f := range []string{"DISCONNECT", "MDISCONNECT", "LEAVE", "MLEAVE", "AGGREGATED_EVENTS", "ALL_EVENTS"} {
		if !slices.Contains(config.SupportedFeatures, f) {
			t.Errorf("feature %s not announced: %v", f, config.SupportedFeatures)
		}
	}
	for _, f := range []string{"JOIN", "MJOIN", "EMIT"} {
		if slices.Contains(config.SupportedFeatures, f) {
			t.Errorf("feature %s announced", f)
		}
	}

	all := ui.next("all_sockets", nil)
	var sockets []serialized
	if err := json.Unmarshal(all[0], &sockets); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sockets, func(s serialized) bool { return s.ID == userID })
	if i < 0 {
		t.Fatalf("the user's socket on the other replica is not listed: %s", all[0])
	}
	got := sockets[i]
	if got.Nsp != "/" || got.Transport != "websocket" || got.Data["identity"] != "alice" || got.ClientID == "" || got.ClientID == user.Sid() {
		t.Errorf("user socket = %+v", got)
	}
	for _, room := range []string{events.TaskRoom("t-1"), events.UserRoom("alice"), events.SocketRoom("alice", userID), userID} {
		if !slices.Contains(got.Rooms, room) {
			t.Errorf("room %s not listed: %v", room, got.Rooms)
		}
	}
	if h, _ := got.Handshake["headers"].(map[string]any); h["user-agent"] != "adminui-test" {
		t.Errorf("handshake = %v", got.Handshake)
	}
	if strings.Contains(string(all[0]), "secret") || strings.Contains(string(all[0]), token) || strings.Contains(string(all[0]), user.Sid()) {
		t.Fatalf("all_sockets shows a secret: %s", all[0])
	}

	// server_stats of both replicas reach the UI on a.
	seen := map[string]bool{}
	for !seen["replica-a"] || !seen["replica-b"] {
		args := ui.next("server_stats", nil)
		var st struct {
			ServerID     string `json:"serverId"`
			Hostname     string `json:"hostname"`
			Pid          int    `json:"pid"`
			ClientsCount int    `json:"clientsCount"`
			Namespaces   []struct {
				Name         string `json:"name"`
				SocketsCount int    `json:"socketsCount"`
			} `json:"namespaces"`
		}
		_ = json.Unmarshal(args[0], &st)
		if st.Hostname == "" || st.Pid == 0 || len(st.Namespaces) < 2 {
			t.Fatalf("server_stats = %s", args[0])
		}
		if st.ServerID == "replica-b" {
			for _, n := range st.Namespaces {
				if n.Name == "/" && n.SocketsCount != 1 {
					t.Errorf("replica-b counts %d sockets in /", n.SocketsCount)
				}
			}
		}
		seen[st.ServerID] = true
	}

	// Live: a socket joins a task room on b, then a second user socket
	// connects and disconnects there.
	if err := b.rt.JoinTask(ctxT(t, 5*time.Second), "alice", userID, "t-2"); err != nil {
		t.Fatal(err)
	}
	ui.next("room_joined", func(args []json.RawMessage) bool {
		return string(args[0]) == `"/"` && string(args[1]) == `"task:t-2"` && string(args[2]) == `"`+userID+`"`
	})
	second := dial(t, b.url)
	secondID, err := second.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
	if err != nil {
		t.Fatal(err)
	}
	ui.next("socket_connected", func(args []json.RawMessage) bool {
		var s serialized
		_ = json.Unmarshal(args[0], &s)
		return s.ID == secondID
	})

	// Refused actions change nothing; allowed ones reach b.
	_ = ui.c.SendRaw(`42/admin,["join","/","task:someone-elses","` + secondID + `"]`)
	_ = ui.c.SendRaw(`42/admin,["leave","/","` + events.UserRoom("alice") + `","` + userID + `"]`)
	_ = ui.c.SendRaw(`42/admin,["leave","/","task:t-1","` + userID + `"]`)
	ui.next("room_left", func(args []json.RawMessage) bool {
		return string(args[1]) == `"task:t-1"` && string(args[2]) == `"`+userID+`"`
	})
	_ = ui.c.SendRaw(`42/admin,["_disconnect","/",false,"` + secondID + `"]`)
	ui.next("socket_disconnected", func(args []json.RawMessage) bool { return string(args[1]) == `"`+secondID+`"` })
	for ctx := ctxT(t, 5*time.Second); ; {
		p, err := second.Next(ctx)
		if err != nil {
			t.Fatalf("the disconnected socket got no DISCONNECT: %v", err)
		}
		if p.Type == eiotest.TypeDisconnect {
			break
		}
	}

	// A page reload: the session id opens the namespace on the other replica.
	reloaded := dial(t, b.url)
	if _, err := connectAdmin(t, reloaded, map[string]any{"sessionId": sessionID}); err != nil {
		t.Fatalf("session id refused on the other replica: %v", err)
	}

	// The refused join and leave did nothing: the user is still in its rooms
	// and not in the other task's.
	ui2 := newAdmin(t, a.url, map[string]any{"username": "x", "password": token})
	all = ui2.next("all_sockets", nil)
	sockets = nil
	_ = json.Unmarshal(all[0], &sockets)
	i = slices.IndexFunc(sockets, func(s serialized) bool { return s.ID == userID })
	if i < 0 {
		t.Fatalf("user socket gone: %s", all[0])
	}
	rooms := sockets[i].Rooms
	if !slices.Contains(rooms, events.UserRoom("alice")) || slices.Contains(rooms, "task:t-1") || !slices.Contains(rooms, "task:t-2") {
		t.Errorf("rooms after the actions: %v", rooms)
	}
	if slices.ContainsFunc(sockets, func(s serialized) bool { return s.ID == secondID }) {
		t.Error("the disconnected socket is still listed")
	}
	testwait.For(t, 5*time.Second, "user socket still connected", func() bool { return user.Err() == nil })
}

func TestAdminUIRefusals(t *testing.T) {
	rs := redistest.Start(t)
	on := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token)})
	for _, tc := range []struct {
		name string
		auth any
	}{
		{"no auth", nil},
		{"wrong password", map[string]any{"username": "admin", "password": token + "x"}},
		{"empty password", map[string]any{"username": "admin", "password": ""}},
		{"a user token as password", map[string]any{"username": "alice", "password": "tok-alice"}},
		{"a user token as token", map[string]any{"token": "tok-alice"}},
		{"the operator token as a user token", map[string]any{"token": token}},
		{"a forged session id", map[string]any{"sessionId": "s1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, on.url)
			_, err := connectAdmin(t, c, tc.auth)
			var ce *eiotest.ConnectError
			if !errors.As(err, &ce) || ce.Message != adminui.ErrInvalidCredentials {
				t.Fatalf("err = %v, want connect_error %q", err, adminui.ErrInvalidCredentials)
			}
		})
	}

	// The operator token is no user token either.
	c := dial(t, on.url)
	if _, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": token}); err == nil {
		t.Fatal("the operator token opened the main namespace")
	}

	// Without a token the namespace does not exist.
	off := newReplica(t, rs.Addr, nil)
	c = dial(t, off.url)
	_, err := connectAdmin(t, c, map[string]any{"username": "admin", "password": token})
	var ce *eiotest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "Invalid namespace" {
		t.Fatalf("err = %v, want Invalid namespace", err)
	}
}

func TestAdminUIReadOnly(t *testing.T) {
	rs := redistest.Start(t)
	r := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token), ReadOnly: true})
	if f := r.admin.Features(); !slices.Equal(f, []string{"AGGREGATED_EVENTS", "ALL_EVENTS"}) {
		t.Fatalf("read-only features = %v", f)
	}
	user := dial(t, r.url)
	userID, err := user.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
	if err != nil {
		t.Fatal(err)
	}
	ui := newAdmin(t, r.url, map[string]any{"username": "x", "password": token})
	ui.next("all_sockets", nil)
	// Refused, and answered when asked for an acknowledgement.
	_ = ui.c.SendRaw(`42/admin,1["_disconnect","/",true,"` + userID + `"]`)
	if got := string(ui.ack(1)); got != `[{"error":"read-only"}]` {
		t.Fatalf("ack = %s", got)
	}
	_ = ui.c.SendRaw(`42/admin,2["join","/","task:x","` + userID + `"]`)
	if got := string(ui.ack(2)); !strings.Contains(got, "ownership") {
		t.Fatalf("ack = %s", got)
	}
	select {
	case p := <-userPackets(user):
		t.Fatalf("the user socket got %+v", p)
	default:
	}
	if user.Err() != nil {
		t.Fatalf("user session closed: %v", user.Err())
	}
}

// userPackets returns the packets already received by c, without waiting.
func userPackets(c *eiotest.Conn) <-chan eiotest.Packet {
	ch := make(chan eiotest.Packet, 16)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Next returns what it has, or the context's error at once
	if p, err := c.Next(ctx); err == nil {
		ch <- p
	}
	return ch
}

func TestAdminUIEvents(t *testing.T) {
	rs := redistest.Start(t)
	a := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token), Events: true, ServerID: "a"})
	b := newReplica(t, rs.Addr, &adminui.Config{Token: []byte(token), Events: true, ServerID: "b"})
	ui := newAdmin(t, a.url, map[string]any{"username": "x", "password": token})
	ui.next("all_sockets", nil)
	user := dial(t, b.url)
	userID, err := user.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
	if err != nil {
		t.Fatal(err)
	}
	_ = user.Emit(events.AuthRefresh, map[string]any{"token": "refresh-secret"})
	args := ui.next("event_received", func(args []json.RawMessage) bool { return string(args[1]) == `"`+userID+`"` })
	if string(args[2]) != `["auth:refresh",{"token":"[redacted]"}]` {
		t.Fatalf("event_received args = %s", args[2])
	}
	if err := b.rt.EmitLocal(events.UserRoom("alice"), "task:progress", map[string]any{"taskId": "t", "seq": 1}); err != nil {
		t.Fatal(err)
	}
	args = ui.next("event_sent", func(args []json.RawMessage) bool { return strings.Contains(string(args[2]), "task:progress") })
	if string(args[0]) != `"/"` || string(args[1]) != `"`+userID+`"` {
		t.Fatalf("event_sent = %s", args)
	}
}

// Beyond SocketEventsPerSecond, socket events are dropped and the UI gets a
// fresh all_sockets instead, which lists every socket.
func TestAdminUIResyncAfterDrops(t *testing.T) {
	rs := redistest.Start(t)
	cfg := func(id string) *adminui.Config {
		return &adminui.Config{Token: []byte(token), ServerID: id, SocketEventsPerSecond: 1, StatsInterval: 200 * time.Millisecond}
	}
	a, b := newReplica(t, rs.Addr, cfg("a")), newReplica(t, rs.Addr, cfg("b"))
	ui := newAdmin(t, a.url, map[string]any{"username": "x", "password": token})
	ui.next("all_sockets", nil)
	// b learns that a UI is connected before the users come.
	ui.next("server_stats", func(args []json.RawMessage) bool { return strings.Contains(string(args[0]), `"serverId":"b"`) })
	var ids []string
	for range 5 {
		c := dial(t, b.url)
		id, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// What the UI holds: the last all_sockets and the socket_connected after it.
	known, resyncs := "", 0
	ui.wait("every socket known, through an all_sockets again", func(p eiotest.Packet) bool {
		switch p.EventName() {
		case "all_sockets":
			known, resyncs = string(p.Args()[0]), resyncs+1
		case "socket_connected":
			known += string(p.Args()[0])
		default:
			return false
		}
		for _, id := range ids {
			if !strings.Contains(known, id) {
				return false
			}
		}
		return resyncs > 0
	})
}
