package socketapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/socketapi"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// env is one server (the Socket.IO server with the task events) on a test
// Redis. Tokens: "tok-<identity>" is that user, "viewer-<task id>" a viewer
// of that task.
type env struct {
	url       string
	rdb       *redis.Client
	store     *store.Store
	mu        sync.Mutex
	delivered []time.Duration
}

// envOptions change what newEnv starts.
type envOptions struct {
	// sharded runs the sharded adapter in its dynamic mode.
	sharded bool
	// hook, when not nil, sees every command of the server's Redis client.
	hook redis.Hook
}

func newEnv(t *testing.T, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	if o.hook != nil {
		rdb.AddHook(o.hook)
	}
	e := &env{rdb: rdb, store: store.New(rdb, nil)}
	svc := taskservice.New(taskservice.Config{Store: e.store, OnDelivered: func(d time.Duration) {
		e.mu.Lock()
		e.delivered = append(e.delivered, d)
		e.mu.Unlock()
	}})
	h := &socketapi.Handlers{Tasks: svc}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := realtime.New(ctx, realtime.Config{
		Redis:            rdb,
		Sharded:          o.sharded,
		SubscriptionMode: map[bool]string{true: "dynamic"}[o.sharded],
		Authenticate: func(tok string) (*auth.Principal, error) {
			if id, ok := strings.CutPrefix(tok, "tok-"); ok {
				return &auth.Principal{Identity: id, Kind: auth.KindUser}, nil
			}
			if id, ok := strings.CutPrefix(tok, "viewer-"); ok {
				return &auth.Principal{Identity: "viewer:x", Kind: auth.KindViewer, TaskID: id}, nil
			}
			return nil, errors.New("bad token")
		},
		OnConnection: h.Register,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", rt.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
		hs.Close()
	})
	e.url = hs.URL + "/socket.io/"
	return e
}

// finished makes a task of owner that finished a second ago, with the
// inbox and undelivered entries the update script writes for a final state.
func (e *env) finished(t *testing.T, owner string) *tasks.Record {
	t.Helper()
	ctx := context.Background()
	fin := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	r := &tasks.Record{ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: owner,
		Total: 1, MaxAttempts: 1, Params: []byte(`{"rows":1}`), CreatedAt: fin}
	if err := e.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 5, Fields: map[string]any{
		tasks.FieldState: string(tasks.StateCompleted), tasks.FieldFinishedAt: fin.UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
	z := redis.Z{Score: float64(fin.UnixMilli()), Member: r.ID}
	e.rdb.ZAddNX(ctx, e.store.Keys().Inbox(owner), z)
	e.rdb.ZAddNX(ctx, e.store.Keys().Undelivered(), z)
	rec, err := e.store.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// client is a connected socket that sends events with acknowledgements.
type client struct {
	t    *testing.T
	conn *eiotest.Conn
	next int
}

func (e *env) connect(t *testing.T, token string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := eiotest.DialWebSocket(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Connect(ctx, map[string]any{"token": token}); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, conn: c}
}

// call emits event with the raw JSON args and returns the acknowledgement's
// first argument.
func (c *client) call(event, args string) map[string]any {
	c.t.Helper()
	c.next++
	id := c.next
	pkt := fmt.Sprintf(`42%d[%q`, id, event)
	if args != "" {
		pkt += "," + args
	}
	if err := c.conn.SendRaw(pkt + "]"); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		p, err := c.conn.Next(ctx)
		if err != nil {
			c.t.Fatalf("%s: no acknowledgement: %v", event, err)
		}
		if p.Type != eiotest.TypeAck || p.ID == nil || *p.ID != id {
			continue
		}
		var out []map[string]any
		if err := json.Unmarshal(p.Data, &out); err != nil || len(out) != 1 {
			c.t.Fatalf("%s: acknowledgement %s", event, p.Data)
		}
		return out[0]
	}
}

// errorCode returns the code of an AckError answer, "" for any other answer.
func errorCode(ack map[string]any) string {
	e, _ := ack["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestTaskReceived(t *testing.T) {
	e := newEnv(t)
	r := e.finished(t, "alice")
	other := e.finished(t, "bob")
	alice := e.connect(t, "tok-alice")
	idArg := func(id string, seq any) string {
		b, _ := json.Marshal(map[string]any{"taskId": id, "seq": seq})
		return string(b)
	}

	for _, c := range []struct{ name, args, code string }{
		{"no payload", "", "bad_request"},
		{"not an object", `"x"`, "bad_request"},
		{"no task id", `{"seq":5}`, "bad_request"},
		{"no seq", fmt.Sprintf(`{"taskId":%q}`, r.ID), "bad_request"},
		{"seq a string", idArg(r.ID, "5"), "bad_request"},
		{"seq negative", idArg(r.ID, -1), "bad_request"},
		{"seq a fraction", idArg(r.ID, 4.5), "bad_request"},
		{"seq huge", idArg(r.ID, 1e300), "bad_request"},
		{"seq not the final one", idArg(r.ID, 4), "bad_request"},
		{"foreign task", idArg(other.ID, 5), "not_found"},
		{"unknown task", idArg(tasks.NewID(), 5), "not_found"},
		{"not a task id", idArg("../x", 5), "not_found"},
	} {
		if got := errorCode(alice.call(events.TaskReceived, c.args)); got != c.code {
			t.Errorf("%s: code %q, want %q", c.name, got, c.code)
		}
	}
	viewer := e.connect(t, "viewer-"+r.ID)
	if got := errorCode(viewer.call(events.TaskReceived, idArg(r.ID, 5))); got != "forbidden" {
		t.Errorf("viewer: code %q, want forbidden", got)
	}
	if rec, _ := e.store.Get(context.Background(), r.ID); rec.DeliveredAt != nil {
		t.Fatal("deliveredAt set by a refused confirmation")
	}

	first := alice.call(events.TaskReceived, idArg(r.ID, 5))
	if first["taskId"] != r.ID || first["deliveredAt"] == nil {
		t.Fatalf("ack %v", first)
	}
	tab := e.connect(t, "tok-alice") // another tab of the owner
	again := tab.call(events.TaskReceived, idArg(r.ID, 5))
	if again["deliveredAt"] != first["deliveredAt"] {
		t.Fatalf("deliveredAt moved: %v then %v", first, again)
	}
	rec, _ := e.store.Get(context.Background(), r.ID)
	if rec.DeliveredAt == nil || rec.DeliveredAt.Format(time.RFC3339Nano) != first["deliveredAt"] {
		t.Fatalf("record deliveredAt %v, ack %v", rec.DeliveredAt, first["deliveredAt"])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.delivered) != 1 || e.delivered[0] < time.Second || e.delivered[0] > time.Minute {
		t.Fatalf("delivery times observed: %v, want one of about a second", e.delivered)
	}
}

func TestInboxAck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.finished(t, "alice"), e.finished(t, "alice")
	foreign := e.finished(t, "bob")
	alice := e.connect(t, "tok-alice")
	ids := func(list ...string) string {
		b, _ := json.Marshal(map[string]any{"taskIds": list})
		return string(b)
	}
	many := make([]string, taskservice.MaxInboxAck+1)
	for i := range many {
		many[i] = tasks.NewID()
	}
	for _, c := range []struct{ name, args, code string }{
		{"no payload", "", "bad_request"},
		{"not an object", `[1]`, "bad_request"},
		{"no list", `{}`, "bad_request"},
		{"not a list", `{"taskIds":"` + a.ID + `"}`, "bad_request"},
		{"not strings", `{"taskIds":[1,2]}`, "bad_request"},
		{"empty", ids(), "bad_request"},
		{"too many", ids(many...), "bad_request"},
		{"bad shape", ids(a.ID, "nope"), "bad_request"},
		{"foreign", ids(a.ID, foreign.ID), "not_found"},
		{"unknown", ids(tasks.NewID(), a.ID), "not_found"},
	} {
		if got := errorCode(alice.call(events.InboxAck, c.args)); got != c.code {
			t.Errorf("%s: code %q, want %q", c.name, got, c.code)
		}
	}
	viewer := e.connect(t, "viewer-"+a.ID)
	if got := errorCode(viewer.call(events.InboxAck, ids(a.ID))); got != "forbidden" {
		t.Errorf("viewer: code %q, want forbidden", got)
	}
	list, _ := e.store.ListInbox(ctx, "alice", time.Now())
	if len(list) != 2 {
		t.Fatalf("a refused ack changed the inbox: %v", list)
	}

	ack := alice.call(events.InboxAck, ids(a.ID, a.ID))
	if got, _ := json.Marshal(ack["taskIds"]); string(got) != `["`+a.ID+`"]` {
		t.Fatalf("ack %v", ack)
	}
	list, _ = e.store.ListInbox(ctx, "alice", time.Now())
	if len(list) != 1 || list[0].TaskID != b.ID {
		t.Fatalf("inbox after the ack: %v", list)
	}
	if rec, _ := e.store.Get(ctx, a.ID); rec.SeenAt == nil {
		t.Fatal("no seenAt after the ack")
	}
}
