package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/admin"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

const adminToken = "operator-token-0123456789abcdef-0123456789"

// adminRoutes are every route of the operator API.
var adminRoutes = []struct{ method, path string }{
	{"GET", "/api/v1/admin/queue"},
	{"GET", "/api/v1/admin/workers"},
	{"GET", "/api/v1/admin/servers"},
	{"GET", "/api/v1/admin/tasks"},
	{"GET", "/api/v1/admin/tasks/{id}"},
	{"GET", "/api/v1/admin/failures"},
	{"POST", "/api/v1/admin/tasks/{id}/cancel"},
	{"POST", "/api/v1/admin/tasks/{id}/retry"},
	{"POST", "/api/v1/admin/purge"},
}

type adminEnv struct {
	*env
	svc     *taskservice.Service
	apiKey  string
	jwt     string
	viewer  string
	session string
	taskID  string
}

func newAdminEnv(t *testing.T, token string) *adminEnv {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	kindtest.RegisterExport(t, st)
	secret := bytes.Repeat([]byte("s"), 32)
	signer, err := session.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	jwtSecret := []byte("app-jwt-secret-0123456789abcdef0123456789")
	key := "twk_test-key-0123456789abcdef"
	verifier, err := auth.New(context.Background(), auth.Config{Sessions: signer, Secret: secret, JWTSecret: jwtSecret,
		APIKeys: []auth.APIKey{{Name: "backend", Hash: sha256.Sum256([]byte(key))}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := taskservice.New(taskservice.Config{Store: st})
	var tok []byte
	if token != "" {
		tok = []byte(token)
	}
	h := httpapi.NewRouter(httpapi.Deps{Signer: signer, Auth: verifier, Tasks: svc,
		Admin: admin.New(admin.Config{Token: tok, Store: st, Tasks: svc})})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &adminEnv{env: &env{t: t, srv: srv, rdb: rdb, store: st}, svc: svc, apiKey: key}
	e.session = e.token()
	r := e.do("POST", "/api/v1/tasks", e.session, `{"kind":"export","params":{"rows":10}}`)
	if r.status != 202 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	e.taskID, _ = r.json(t)["id"].(string)
	r = e.do("POST", "/api/v1/tasks/"+e.taskID+"/viewers", e.session, "")
	if r.status != 201 {
		t.Fatalf("viewer: %d %s", r.status, r.body)
	}
	e.viewer, _ = r.json(t)["token"].(string)
	j := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u-1", "exp": time.Now().Add(time.Hour).Unix(), "admin": true})
	if e.jwt, err = j.SignedString(jwtSecret); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *adminEnv) each(fn func(method, path string)) {
	for _, rt := range adminRoutes {
		fn(rt.method, strings.ReplaceAll(rt.path, "{id}", e.taskID))
	}
}

// TestAdminCredentials: no user token of any sort ever opens an operator
// route (403), a missing or wrong credential is 401, the operator's passes.
func TestAdminCredentials(t *testing.T) {
	e := newAdminEnv(t, adminToken)
	users := map[string]string{"session": e.session, "jwt (with an admin claim)": e.jwt, "api key": e.apiKey, "viewer": e.viewer}
	e.each(func(method, path string) {
		for name, tok := range users {
			if r := e.do(method, path, tok, ""); r.status != 403 || r.errorCode(t) != "forbidden" {
				t.Errorf("%s %s with a %s: %d %s, want 403", method, path, name, r.status, r.body)
			}
		}
		// The session as a cookie, as a browser sends it.
		if r := e.do(method, path, "", "", "Cookie", session.CookieName+"="+e.session); r.status != 403 {
			t.Errorf("%s %s with a session cookie: %d %s, want 403", method, path, r.status, r.body)
		}
		for _, tok := range []string{"", "wrong-" + adminToken, adminToken[:len(adminToken)-1]} {
			if r := e.do(method, path, tok, ""); r.status != 401 || r.errorCode(t) != "unauthorized" {
				t.Errorf("%s %s with credential %q: %d %s, want 401", method, path, tok, r.status, r.body)
			}
		}
	})
	// The operator's own: every read answers 200; the actions answer as
	// the task allows (running cancel 200, retry of a queued task 409).
	want := map[string]int{"cancel": 200, "retry": 409}
	e.each(func(method, path string) {
		r := e.do(method, path, adminToken, "")
		code := 200
		for suffix, c := range want {
			if strings.HasSuffix(path, "/"+suffix) {
				code = c
			}
		}
		if r.status != code {
			t.Errorf("%s %s as the operator: %d %s, want %d", method, path, r.status, r.body, code)
		}
	})
}

func TestAdminOff(t *testing.T) {
	e := newAdminEnv(t, "")
	e.each(func(method, path string) {
		for _, tok := range []string{"", adminToken, e.session} {
			if r := e.do(method, path, tok, ""); r.status != 404 {
				t.Errorf("%s %s while off: %d %s, want 404", method, path, r.status, r.body)
			}
		}
	})
}

func TestAdminTasksFilters(t *testing.T) {
	e := newAdminEnv(t, adminToken)
	for _, q := range []string{"state=done", "kind=Bad%20Kind", "olderThan=soon", "newerThan=-1h", "limit=0", "limit=501",
		"cursor=nope", "colour=red", "state=failed&state=queued", "olderThan=2h&newerThan=1h"} {
		r := e.do("GET", "/api/v1/admin/tasks?"+q, adminToken, "")
		if r.status != 400 || r.errorCode(t) != "bad_filter" {
			t.Errorf("?%s: %d %s, want 400 bad_filter", q, r.status, r.body)
		}
	}
	r := e.do("GET", "/api/v1/admin/tasks?kind=export&state=queued&newerThan=1h&limit=10", adminToken, "")
	if r.status != 200 {
		t.Fatalf("tasks: %d %s", r.status, r.body)
	}
	list, _ := r.json(t)["tasks"].([]any)
	if len(list) != 1 {
		t.Fatalf("tasks: %s, want the one task", r.body)
	}
	tk, _ := list[0].(map[string]any)
	if tk["taskId"] != e.taskID || tk["owner"] == "" || tk["owner"] == nil || tk["params"] == nil {
		t.Fatalf("task: %v, want the full record with its owner", tk)
	}
	r = e.do("GET", "/api/v1/admin/tasks?olderThan=1h", adminToken, "")
	if list, _ := r.json(t)["tasks"].([]any); r.status != 200 || len(list) != 0 {
		t.Fatalf("older than 1h: %d %s, want none", r.status, r.body)
	}
}

func TestAdminRetry(t *testing.T) {
	e := newAdminEnv(t, adminToken)
	// The worker's part, by hand: the task ran out of attempts and failed.
	for range 3 {
		if _, err := e.store.StartAttempt(context.Background(), e.taskID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	e.rdb.HSet(context.Background(), e.store.Keys().Task(e.taskID), tasks.FieldState, "failed", tasks.FieldErrorCode, "boom",
		tasks.FieldErrorMessage, "it broke")
	r := e.do("GET", "/api/v1/admin/failures", adminToken, "")
	if groups, _ := r.json(t)["groups"].([]any); r.status != 200 || len(groups) != 1 {
		t.Fatalf("failures: %d %s", r.status, r.body)
	}
	before := e.rdb.XLen(context.Background(), e.store.Keys().Queue("export")).Val()
	r = e.do("POST", "/api/v1/admin/tasks/"+e.taskID+"/retry", adminToken, "")
	if r.status != http.StatusOK {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["state"] != "queued" || m["attempts"] != float64(3) || m["maxAttempts"] != float64(6) || m["retries"] != float64(1) || m["error"] != nil {
		t.Fatalf("after retry: %s", r.body)
	}
	if after := e.rdb.XLen(context.Background(), e.store.Keys().Queue("export")).Val(); after != before+1 {
		t.Fatalf("queue: %d entries, want %d (a new message)", after, before+1)
	}
	if r := e.do("POST", "/api/v1/admin/tasks/"+e.taskID+"/retry", adminToken, ""); r.status != 409 {
		t.Fatalf("second retry of a queued task: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/admin/tasks/"+tasks.NewID()+"/retry", adminToken, ""); r.status != 404 {
		t.Fatalf("retry of no task: %d %s", r.status, r.body)
	}
}
