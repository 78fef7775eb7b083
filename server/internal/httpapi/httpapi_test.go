package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

type joinCall struct{ identity, socketID, taskID string }

type fakeJoiner struct {
	mu    sync.Mutex
	calls []joinCall
}

func (f *fakeJoiner) JoinTask(_ context.Context, identity, socketID, taskID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, joinCall{identity, socketID, taskID})
	return nil
}

type env struct {
	t      *testing.T
	srv    *httptest.Server
	rdb    *redis.Client
	store  *store.Store
	joiner *fakeJoiner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	kindtest.RegisterExport(t, st)
	signer, err := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	j := &fakeJoiner{}
	svc := taskservice.New(taskservice.Config{Store: st, Joiner: j})
	h := httpapi.NewRouter(httpapi.Deps{
		Signer: signer, Tasks: svc, MaxBodyBytes: 4096,
		Ready: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, rdb: rdb, store: st, joiner: j}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %q", r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil || e["message"] == "" {
		t.Fatalf("no error object in %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

func (e *env) do(method, path, token string, body string, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func (e *env) token() string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/session", "", "")
	if r.status != 200 {
		e.t.Fatalf("session: %d %s", r.status, r.body)
	}
	tok, _ := r.json(e.t)["token"].(string)
	if tok == "" {
		e.t.Fatalf("no token in %s", r.body)
	}
	return tok
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/api/v1/session", "", "")
	tok, _ := r.json(t)["token"].(string)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == session.CookieName {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != tok || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v, token %q", cookie, tok)
	}
	// The same token comes back while it is valid: a reload keeps the identity.
	again := e.do("GET", "/api/v1/session", "", "", "Cookie", session.CookieName+"="+tok)
	if got, _ := again.json(t)["token"].(string); got != tok {
		t.Fatalf("new token %q for a valid cookie", got)
	}
	// The cookie works as a credential.
	if r := e.do("GET", "/api/v1/tasks", "", "", "Cookie", session.CookieName+"="+tok); r.status != 200 {
		t.Fatalf("cookie auth: %d %s", r.status, r.body)
	}
}

func TestCreateTask(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"export","params":{"rows":500},"socketId":"abc_DEF-123"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	body := r.json(t)
	id, _ := body["id"].(string)
	if !tasks.ValidID(id) || body["state"] != "queued" || r.header.Get("Location") != "/api/v1/tasks/"+id {
		t.Fatalf("answer %s, location %q", r.body, r.header.Get("Location"))
	}
	owner, _ := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	identity, _ := owner.Verify(tok)
	if len(e.joiner.calls) != 1 || e.joiner.calls[0] != (joinCall{identity, "abc_DEF-123", id}) {
		t.Fatalf("join calls %+v", e.joiner.calls)
	}
	// The record and the queue message exist.
	rec, err := e.store.Get(context.Background(), id)
	if err != nil || rec.Total != 500 || rec.State != tasks.StateQueued || rec.Owner != identity {
		t.Fatalf("record %+v, %v", rec, err)
	}
	msgs, err := e.rdb.XRange(context.Background(), e.store.Keys().Queue(tasks.KindExport), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queue %v %v", msgs, err)
	}
	m, err := tasks.DecodeMessage([]byte(msgs[0].Values[store.QueueField].(string)))
	if err != nil || m.ID != id || m.Owner != identity || string(m.Params) != `{"rows":500}` {
		t.Fatalf("message %+v %v", m, err)
	}
	// GET the task and the list.
	g := e.do("GET", "/api/v1/tasks/"+id, tok, "")
	if g.status != 200 || g.json(t)["taskId"] != id || g.json(t)["total"] != 500.0 {
		t.Fatalf("get: %d %s", g.status, g.body)
	}
	if strings.Contains(string(g.body), identity) {
		t.Fatalf("record exposes the owner: %s", g.body)
	}
	l := e.do("GET", "/api/v1/tasks", tok, "")
	list, _ := l.json(t)["tasks"].([]any)
	if l.status != 200 || len(list) != 1 {
		t.Fatalf("list: %d %s", l.status, l.body)
	}
}

func TestCreateTaskBadInput(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	cases := []struct {
		name, body, code, mention string
		status                    int
	}{
		{"not json", `{"kind":`, "invalid_params", "JSON", 400},
		{"not an object", `[1,2]`, "invalid_params", "object", 400},
		{"empty", ``, "invalid_params", "required", 400},
		{"unknown kind", `{"kind":"mine","params":{"rows":1}}`, "unknown_kind", "export", 400},
		{"no kind", `{"params":{"rows":1}}`, "unknown_kind", "kind", 400},
		{"no params", `{"kind":"export"}`, "invalid_params", "params", 400},
		{"rows is a string", `{"kind":"export","params":{"rows":"10"}}`, "invalid_params", "params.rows", 400},
		{"rows is a float", `{"kind":"export","params":{"rows":1.5}}`, "invalid_params", "params.rows", 400},
		{"rows zero", `{"kind":"export","params":{"rows":0}}`, "invalid_params", "between 1 and 1000000", 400},
		{"rows too many", `{"kind":"export","params":{"rows":1000001}}`, "invalid_params", "between 1 and 1000000", 400},
		{"rows negative", `{"kind":"export","params":{"rows":-5}}`, "invalid_params", "params.rows", 400},
		{"unknown param", `{"kind":"export","params":{"rows":1,"row":2}}`, "invalid_params", "row", 400},
		{"unknown field", `{"kind":"export","params":{"rows":1},"extra":true}`, "invalid_params", "extra", 400},
		{"kind wrong type", `{"kind":1,"params":{"rows":1}}`, "invalid_params", "kind", 400},
		{"bad socket id", `{"kind":"export","params":{"rows":1},"socketId":"a b"}`, "invalid_params", "socketId", 400},
		{"trailing data", `{"kind":"export","params":{"rows":1}} {}`, "invalid_params", "after", 400},
		{"too large", `{"kind":"export","params":{"rows":1},"socketId":"` + strings.Repeat("a", 5000) + `"}`, "body_too_large", "4096", 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/tasks", tok, c.body)
			if c.body == "" {
				r = e.do("POST", "/api/v1/tasks", tok, "", "Content-Type", "application/json")
			}
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if code := r.errorCode(t); code != c.code {
				t.Fatalf("code %q, want %q: %s", code, c.code, r.body)
			}
			if !strings.Contains(string(r.body), c.mention) {
				t.Fatalf("message does not mention %q: %s", c.mention, r.body)
			}
		})
	}
	if r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"export","params":{"rows":1}}`, "Content-Type", "text/plain"); r.status != 415 || r.errorCode(t) != "unsupported_media_type" {
		t.Fatalf("text/plain: %d %s", r.status, r.body)
	}
	if n := e.rdb.XLen(context.Background(), e.store.Keys().Queue(tasks.KindExport)).Val(); n != 0 {
		t.Fatalf("%d tasks queued by bad requests", n)
	}
}

func TestAuthAndOwnership(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.token(), e.token()
	r := e.do("POST", "/api/v1/tasks", alice, `{"kind":"export","params":{"rows":3}}`)
	id, _ := r.json(t)["id"].(string)

	for _, c := range []struct{ name, token string }{{"no token", ""}, {"forged", "v1.AAAAAAAAAAAAAAAAAAAAAA." + strings.Repeat("A", 43)}} {
		if r := e.do("GET", "/api/v1/tasks/"+id, c.token, ""); r.status != 401 || r.errorCode(t) != "unauthorized" {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	// Bob gets the same answer as for a task that does not exist.
	unknown := tasks.NewID()
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/tasks/" + id}, {"DELETE", "/api/v1/tasks/" + id}, {"GET", "/api/v1/tasks/" + id + "/result"},
		{"GET", "/api/v1/tasks/" + unknown}, {"GET", "/api/v1/tasks/" + unknown + "/result"}, {"GET", "/api/v1/tasks/not-an-id"},
	} {
		r := e.do(c.method, c.path, bob, "")
		if r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("bob %s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	if l := e.do("GET", "/api/v1/tasks", bob, ""); strings.Contains(string(l.body), id) {
		t.Fatalf("bob lists alice's task: %s", l.body)
	}
	// Alice's task is not finished: its result is not available yet.
	if r := e.do("GET", "/api/v1/tasks/"+id+"/result", alice, ""); r.status != 409 || r.errorCode(t) != "not_finished" {
		t.Fatalf("result before completion: %d %s", r.status, r.body)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	sub := e.rdb.PSubscribe(ctx, "socket.io#/#*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	create := func() string {
		r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"export","params":{"rows":3}}`)
		id, _ := r.json(t)["id"].(string)
		return id
	}

	// A queued task is cancelled at once, and task:cancelled is published to its room.
	id := create()
	r := e.do("DELETE", "/api/v1/tasks/"+id, tok, "")
	if r.status != 200 || r.json(t)["state"] != "cancelled" {
		t.Fatalf("cancel queued: %d %s", r.status, r.body)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := sub.ReceiveMessage(rctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decode.Broadcast([]byte(msg.Payload))
	if err != nil || msg.Channel != "socket.io#/#"+events.TaskRoom(id)+"#" || b.Packet.Data[0] != events.TaskCancelled {
		t.Fatalf("published %q on %s: %+v %v", msg.Payload, msg.Channel, b, err)
	}
	// Cancelling again is not an error.
	if r := e.do("DELETE", "/api/v1/tasks/"+id, tok, ""); r.status != 200 || r.json(t)["state"] != "cancelled" {
		t.Fatalf("cancel twice: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/tasks/"+id+"/result", tok, ""); r.status != 409 || r.errorCode(t) != "no_result" {
		t.Fatalf("result of a cancelled task: %d %s", r.status, r.body)
	}

	// A running task is handed to its worker: 202 and the cancel request is recorded.
	id = create()
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	r = e.do("DELETE", "/api/v1/tasks/"+id, tok, "")
	if r.status != 202 || r.json(t)["cancelRequested"] != true || r.json(t)["state"] != "running" {
		t.Fatalf("cancel running: %d %s", r.status, r.body)
	}

	// A completed task cannot be cancelled.
	id = create()
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Apply(ctx, &store.Update{TaskID: id, Attempt: 1, Seq: 1, Fields: map[string]any{tasks.FieldState: "completed"}}); err != nil {
		t.Fatal(err)
	}
	if r := e.do("DELETE", "/api/v1/tasks/"+id, tok, ""); r.status != 409 || r.errorCode(t) != "task_finished" {
		t.Fatalf("cancel completed: %d %s", r.status, r.body)
	}
	// ... and a completed task whose result is gone says so.
	if r := e.do("GET", "/api/v1/tasks/"+id+"/result", tok, ""); r.status != 410 || r.errorCode(t) != "result_expired" {
		t.Fatalf("missing result: %d %s", r.status, r.body)
	}
}

func TestResultDownload(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"export","params":{"rows":2}}`)
	id, _ := r.json(t)["id"].(string)
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	w, err := e.store.NewResultWriter(ctx, id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	csv := "id,name\n1,a\n2,b\n"
	_, _ = io.WriteString(w, csv)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err = e.store.Apply(ctx, &store.Update{TaskID: id, Attempt: 1, Seq: 1, CommitResult: true, Fields: map[string]any{
		tasks.FieldState: "completed", tasks.FieldResultURL: "/api/v1/tasks/" + id + "/result",
		tasks.FieldResultBytes: len(csv), tasks.FieldResultRows: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.do("GET", "/api/v1/tasks/"+id+"/result", tok, "")
	if d.status != 200 || string(d.body) != csv {
		t.Fatalf("download: %d %q", d.status, d.body)
	}
	if ct := d.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if cd := d.header.Get("Content-Disposition"); cd != `attachment; filename=export-`+id+`.csv` {
		t.Fatalf("content disposition %q", cd)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/api/v1/nothing", "", ""); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Fatalf("unknown route: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/api/v1/session", "", ""); r.status != 405 || r.errorCode(t) != "method_not_allowed" {
		t.Fatalf("wrong method: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
}
