package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

const inboxAPIKey = "twk_inbox-test-key"

// inboxEnv is the API with anonymous sessions, viewer tokens and an API key.
type inboxEnv struct {
	*env
	signer   *session.Signer
	verifier *auth.Verifier
}

func newInboxEnv(t *testing.T) *inboxEnv {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	signer, err := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(context.Background(), auth.Config{Sessions: signer, Secret: bytes.Repeat([]byte("s"), 32),
		APIKeys: []auth.APIKey{{Name: "backend", Hash: sha256.Sum256([]byte(inboxAPIKey))}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := taskservice.New(taskservice.Config{Store: st})
	srv := httptest.NewServer(httpapi.NewRouter(httpapi.Deps{Signer: signer, Auth: v, Tasks: svc, MaxBodyBytes: 4096}))
	t.Cleanup(srv.Close)
	return &inboxEnv{env: &env{t: t, srv: srv, rdb: rdb, store: st}, signer: signer, verifier: v}
}

// finished makes a task of the identity of token that finished at fin, with
// the inbox and undelivered entries of the update script.
func (e *inboxEnv) finished(token string, fin time.Time) *tasks.Record {
	e.t.Helper()
	owner, err := e.signer.Verify(token)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	r := &tasks.Record{ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: owner,
		Total: 1, MaxAttempts: 1, Params: []byte(`{"rows":1}`), CreatedAt: fin}
	if err := e.store.Create(ctx, r); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 2, Fields: map[string]any{
		tasks.FieldState: string(tasks.StateFailed), tasks.FieldFinishedAt: fin.UnixMilli(),
		tasks.FieldErrorCode: "boom", tasks.FieldErrorMessage: "it broke"}}); err != nil {
		e.t.Fatal(err)
	}
	z := redis.Z{Score: float64(fin.UnixMilli()), Member: r.ID}
	e.rdb.ZAddNX(ctx, e.store.Keys().Inbox(owner), z)
	e.rdb.ZAddNX(ctx, e.store.Keys().Undelivered(), z)
	r.Owner = owner
	return r
}

func (e *inboxEnv) inbox(token, query string) []map[string]any {
	e.t.Helper()
	r := e.do("GET", "/api/v1/inbox"+query, token, "")
	var out struct {
		Items []map[string]any `json:"items"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Items == nil {
		e.t.Fatalf("inbox: %d %s", r.status, r.body)
	}
	return out.Items
}

func TestInboxRoutes(t *testing.T) {
	e := newInboxEnv(t)
	alice, bob := e.token(), e.token()
	now := time.Now().Truncate(time.Millisecond)
	a := e.finished(alice, now.Add(-2*time.Second))
	b := e.finished(alice, now.Add(-time.Second))
	foreign := e.finished(bob, now)

	items := e.inbox(alice, "")
	if len(items) != 2 || items[0]["taskId"] != b.ID || items[1]["taskId"] != a.ID {
		t.Fatalf("inbox %v, want b then a", items)
	}
	if it := items[0]; it["state"] != "failed" || it["kind"] != "export" || it["seq"] != 2.0 || it["finishedAt"] == nil ||
		it["error"].(map[string]any)["code"] != "boom" {
		t.Fatalf("item %v", it)
	}
	if items := e.inbox(bob, ""); len(items) != 1 || items[0]["taskId"] != foreign.ID {
		t.Fatalf("bob's inbox %v", items)
	}

	many := make([]string, taskservice.MaxInboxAck+1)
	for i := range many {
		many[i] = `"` + tasks.NewID() + `"`
	}
	for _, c := range []struct{ name, body, code, mention string }{
		{"not json", `{"taskIds":`, "bad_request", "taskIds"},
		{"not an object", `["` + a.ID + `"]`, "bad_request", "object"},
		{"no ids", `{}`, "bad_request", "at least one"},
		{"not a list", `{"taskIds":"` + a.ID + `"}`, "bad_request", "taskIds"},
		{"not strings", `{"taskIds":[1]}`, "bad_request", "taskIds"},
		{"empty", `{"taskIds":[]}`, "bad_request", "at least one"},
		{"too many", `{"taskIds":[` + strings.Join(many, ",") + `]}`, "bad_request", "at most 100"},
		{"bad shape", `{"taskIds":["` + a.ID + `","../x"]}`, "bad_request", "taskIds[1]"},
		{"unknown field", `{"taskIds":["` + a.ID + `"],"all":true}`, "bad_request", "all"},
		{"foreign", `{"taskIds":["` + a.ID + `","` + foreign.ID + `"]}`, "not_found", foreign.ID},
		{"unknown", `{"taskIds":["` + a.ID + `","AAAAAAAAAAAAAAAAAAAAAA"]}`, "not_found", "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		r := e.do("POST", "/api/v1/inbox/ack", alice, c.body)
		if code := r.errorCode(t); code != c.code || !strings.Contains(string(r.body), c.mention) {
			t.Errorf("%s: %d %s, want %s mentioning %q", c.name, r.status, r.body, c.code, c.mention)
		}
	}
	if items := e.inbox(alice, ""); len(items) != 2 {
		t.Fatalf("a refused ack changed the inbox: %v", items)
	}

	r := e.do("POST", "/api/v1/inbox/ack", alice, `{"taskIds":["`+a.ID+`"]}`)
	if r.status != 200 || string(r.body) != `{"taskIds":["`+a.ID+`"]}` {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	if items := e.inbox(alice, ""); len(items) != 1 || items[0]["taskId"] != b.ID {
		t.Fatalf("inbox after the ack: %v", items)
	}
	g := e.do("GET", "/api/v1/tasks/"+a.ID, alice, "").json(t)
	if g["seenAt"] == nil || g["deliveredAt"] != nil {
		t.Fatalf("record after the ack: %v", g)
	}

	// A backend reads and acks the inbox of a subject; a viewer has none.
	if items := e.inbox(inboxAPIKey, "?subject="+b.Owner); len(items) != 1 || items[0]["taskId"] != b.ID {
		t.Fatalf("the backend's view of alice's inbox: %v", items)
	}
	if r := e.do("GET", "/api/v1/inbox", inboxAPIKey, ""); r.errorCode(t) != "bad_request" {
		t.Fatalf("API key without a subject: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/inbox/ack?subject="+b.Owner, inboxAPIKey, `{"taskIds":["`+foreign.ID+`"]}`); r.errorCode(t) != "not_found" {
		t.Fatalf("API key acking another subject's task: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/inbox/ack?subject="+b.Owner, inboxAPIKey, `{"taskIds":["`+b.ID+`"]}`); r.status != 200 {
		t.Fatalf("API key ack: %d %s", r.status, r.body)
	}
	viewer, _, err := e.verifier.IssueViewer(foreign.ID, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []response{e.do("GET", "/api/v1/inbox", viewer, ""),
		e.do("POST", "/api/v1/inbox/ack", viewer, `{"taskIds":["`+foreign.ID+`"]}`)} {
		if r.status != 403 || r.errorCode(t) != "forbidden" {
			t.Fatalf("viewer: %d %s", r.status, r.body)
		}
	}
	if items := e.inbox(bob, ""); len(items) != 1 {
		t.Fatalf("bob's inbox changed: %v", items)
	}
}
