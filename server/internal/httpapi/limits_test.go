package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

const exportBody = `{"kind":"export","params":{"rows":10}}`

// replicas starts n routers (server replicas) on one Redis, each configured by
// taskservice and httpapi options, and returns an env per replica.
func replicas(t *testing.T, n int, tc taskservice.Config, deps httpapi.Deps) []*env {
	t.Helper()
	rs := redistest.Start(t)
	signer, err := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	var out []*env
	for i := range n {
		rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
		t.Cleanup(func() { rdb.Close() })
		st := store.New(rdb, nil)
		if i == 0 {
			kindtest.RegisterExport(t, st)
		}
		c := tc
		c.Store = st
		d := deps
		d.Signer, d.Tasks = signer, taskservice.New(c)
		srv := httptest.NewServer(httpapi.NewRouter(d))
		t.Cleanup(srv.Close)
		out = append(out, &env{t: t, srv: srv, rdb: rdb, store: st})
	}
	return out
}

func TestBodyLimitChunked(t *testing.T) {
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{MaxBodyBytes: 2048})[0]
	tok := e.token()
	// No Content-Length: the body arrives chunked and is cut at the bound.
	body := io.MultiReader(strings.NewReader(`{"kind":"export","params":{"rows":1},"socketId":"`), strings.NewReader(strings.Repeat("a", 1<<20)))
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/tasks", body)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := response{res.StatusCode, res.Header, b}
	if r.status != http.StatusRequestEntityTooLarge || r.errorCode(t) != "body_too_large" || !strings.Contains(string(b), "2048") {
		t.Fatalf("chunked body over the bound: %d %s", r.status, b)
	}
}

func TestCreateRateLimit(t *testing.T) {
	// Two replicas share the bucket of an identity: 3 at once, then 2 per second.
	es := replicas(t, 2, taskservice.Config{CreateRate: 2, CreateBurst: 3}, httpapi.Deps{})
	tok := es[0].token()
	for i := range 3 {
		if r := es[i%2].do("POST", "/api/v1/tasks", tok, exportBody); r.status != http.StatusAccepted {
			t.Fatalf("task %d: %d %s", i, r.status, r.body)
		}
	}
	r := es[1].do("POST", "/api/v1/tasks", tok, exportBody)
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "rate_limited" {
		t.Fatalf("over the rate: %d %s", r.status, r.body)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 1 {
		t.Fatalf("Retry-After %q (want 1: a token comes back within 0.5 s)", r.header.Get("Retry-After"))
	}
	if !strings.Contains(string(r.body), "2 per second") {
		t.Fatalf("the message does not state the limit: %s", r.body)
	}
	// Another identity has its own bucket.
	if r := es[0].do("POST", "/api/v1/tasks", es[0].token(), exportBody); r.status != http.StatusAccepted {
		t.Fatalf("other identity: %d %s", r.status, r.body)
	}
	// Invalid bodies are refused before the limit: they cost no token.
	if r := es[0].do("POST", "/api/v1/tasks", tok, `{"kind":"nope"}`); r.status != http.StatusBadRequest {
		t.Fatalf("bad body: %d %s", r.status, r.body)
	}
	// After Retry-After, the identity may create again.
	time.Sleep(time.Duration(secs) * time.Second)
	if r := es[0].do("POST", "/api/v1/tasks", tok, exportBody); r.status != http.StatusAccepted {
		t.Fatalf("after Retry-After: %d %s", r.status, r.body)
	}
	if n := es[0].rdb.XLen(context.Background(), es[0].store.Keys().Queue(tasks.KindExport)).Val(); n != 5 {
		t.Fatalf("%d tasks queued, want 5", n)
	}
}

func TestMaxActiveTasks(t *testing.T) {
	es := replicas(t, 2, taskservice.Config{MaxActive: 2}, httpapi.Deps{})
	e := es[0]
	tok := e.token()
	var ids []string
	for i := range 2 {
		r := es[i%2].do("POST", "/api/v1/tasks", tok, exportBody)
		if r.status != http.StatusAccepted {
			t.Fatalf("task %d: %d %s", i, r.status, r.body)
		}
		ids = append(ids, r.json(t)["id"].(string))
	}
	full := func(what string) {
		t.Helper()
		r := es[1].do("POST", "/api/v1/tasks", tok, exportBody)
		if r.status != http.StatusTooManyRequests || r.errorCode(t) != "too_many_active_tasks" || !strings.Contains(string(r.body), "at once is 2") {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	full("third task")
	// Cancelling a queued task frees its slot at once.
	if r := e.do("DELETE", "/api/v1/tasks/"+ids[0], tok, ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	r := es[1].do("POST", "/api/v1/tasks", tok, exportBody)
	if r.status != http.StatusAccepted {
		t.Fatalf("after a cancel: %d %s", r.status, r.body)
	}
	ids[0] = r.json(t)["id"].(string)
	full("after refilling")
	// A task that completes (as a worker writes it) frees its slot too.
	ctx := context.Background()
	if _, err := e.store.StartAttempt(ctx, ids[1], time.Now()); err != nil {
		t.Fatal(err)
	}
	full("with a running task")
	if err := e.store.Apply(ctx, &store.Update{TaskID: ids[1], Attempt: 1, Seq: 1, Fields: map[string]any{tasks.FieldState: string(tasks.StateCompleted)}}); err != nil {
		t.Fatal(err)
	}
	if r := es[1].do("POST", "/api/v1/tasks", tok, exportBody); r.status != http.StatusAccepted {
		t.Fatalf("after a completion: %d %s", r.status, r.body)
	}
	// Another identity is not affected.
	if r := e.do("POST", "/api/v1/tasks", e.token(), exportBody); r.status != http.StatusAccepted {
		t.Fatalf("other identity: %d %s", r.status, r.body)
	}
}

func TestCORS(t *testing.T) {
	const app, evil = "https://app.example", "https://evil.example"
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{AllowedOrigins: []string{app}})[0]
	tok := e.token()

	// Preflight of an allowed origin: methods, headers, credentials.
	r := e.do("OPTIONS", "/api/v1/tasks", "", "", "Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	h := r.header
	if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		!strings.Contains(h.Get("Vary"), "Origin") {
		t.Fatalf("preflight of %s: %d %v", app, r.status, h)
	}
	// Preflight of another origin: refused, no CORS headers.
	r = e.do("OPTIONS", "/api/v1/tasks", "", "", "Origin", evil, "Access-Control-Request-Method", "POST")
	if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight of %s: %d %v", evil, r.status, r.header)
	}
	// The actual requests of the allowed origin, with the cookie: CORS headers.
	cookie := session.CookieName + "=" + tok
	r = e.do("POST", "/api/v1/tasks", "", exportBody, "Origin", app, "Cookie", cookie)
	if r.status != http.StatusAccepted || r.header.Get("Access-Control-Allow-Origin") != app || r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("POST from %s: %d %v %s", app, r.status, r.header, r.body)
	}
	// Another origin reads nothing (no CORS headers) and changes nothing: its
	// POST and DELETE are refused even with the user's cookie.
	r = e.do("GET", "/api/v1/tasks", "", "", "Origin", evil, "Cookie", cookie)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("GET from %s: %d %v", evil, r.status, r.header)
	}
	before := e.rdb.XLen(context.Background(), e.store.Keys().Queue(tasks.KindExport)).Val()
	for _, ct := range []string{"application/json", ""} {
		req := []string{"Origin", evil, "Cookie", cookie}
		if ct == "" {
			req = append(req, "Content-Type", "") // a fetch of a Blob without type sends none
		}
		r = e.do("POST", "/api/v1/tasks", "", exportBody, req...)
		if r.status != http.StatusForbidden || r.errorCode(t) != "origin_not_allowed" {
			t.Fatalf("POST from %s (content type %q): %d %s", evil, ct, r.status, r.body)
		}
	}
	if r = e.do("DELETE", "/api/v1/tasks/"+tasks.NewID(), "", "", "Origin", evil, "Cookie", cookie); r.status != http.StatusForbidden {
		t.Fatalf("DELETE from %s: %d %s", evil, r.status, r.body)
	}
	if r = e.do("POST", "/api/v1/tasks", "", exportBody, "Origin", "null", "Cookie", cookie); r.status != http.StatusForbidden {
		t.Fatalf("POST from a null origin: %d %s", r.status, r.body)
	}
	if after := e.rdb.XLen(context.Background(), e.store.Keys().Queue(tasks.KindExport)).Val(); after != before {
		t.Fatalf("refused origins queued %d tasks", after-before)
	}
	// Same origin, and clients that send no Origin: as usual, no CORS headers.
	for _, origin := range []string{e.srv.URL, ""} {
		var hdr []string
		if origin != "" {
			hdr = []string{"Origin", origin}
		}
		r = e.do("POST", "/api/v1/tasks", tok, exportBody, hdr...)
		if r.status != http.StatusAccepted || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("POST with origin %q: %d %v %s", origin, r.status, r.header, r.body)
		}
	}

	// "*": any origin, without credentials (bearer tokens only).
	star := replicas(t, 1, taskservice.Config{}, httpapi.Deps{AllowedOrigins: []string{"*"}})[0]
	r = star.do("OPTIONS", "/api/v1/tasks", "", "", "Origin", evil, "Access-Control-Request-Method", "POST")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight with *: %d %v", r.status, r.header)
	}
	if r = star.do("POST", "/api/v1/tasks", star.token(), exportBody, "Origin", evil); r.status != http.StatusAccepted || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("POST with *: %d %v", r.status, r.header)
	}
}

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == session.CookieName {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", res.Header)
	return nil
}

func TestCookieFlags(t *testing.T) {
	get := func(client *http.Client, url string, header ...string) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/api/v1/session", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("session Cache-Control %q", cc)
		}
		return sessionCookie(t, res)
	}
	check := func(what string, c *http.Cookie, secure bool) {
		t.Helper()
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != secure {
			t.Fatalf("%s: cookie %+v (want HttpOnly, SameSite=Lax, Path=/, Secure=%v)", what, c, secure)
		}
	}
	plain := replicas(t, 1, taskservice.Config{}, httpapi.Deps{})[0]
	check("plain HTTP", get(http.DefaultClient, plain.srv.URL), false)
	// X-Forwarded-Proto is anyone's to send: ignored unless the proxy is trusted.
	check("X-Forwarded-Proto, untrusted", get(http.DefaultClient, plain.srv.URL, "X-Forwarded-Proto", "https"), false)

	trusted := replicas(t, 1, taskservice.Config{}, httpapi.Deps{TrustProxy: true})[0]
	check("trusted proxy, https", get(http.DefaultClient, trusted.srv.URL, "X-Forwarded-Proto", "https"), true)
	check("trusted proxy, https first of a chain", get(http.DefaultClient, trusted.srv.URL, "X-Forwarded-Proto", "https, http"), true)
	check("trusted proxy, http", get(http.DefaultClient, trusted.srv.URL, "X-Forwarded-Proto", "http"), false)
	check("trusted proxy, no header", get(http.DefaultClient, trusted.srv.URL), false)

	// Served over TLS directly.
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	signer, _ := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	tlsSrv := httptest.NewTLSServer(httpapi.NewRouter(httpapi.Deps{Signer: signer, Tasks: taskservice.New(taskservice.Config{Store: store.New(rdb, nil)})}))
	t.Cleanup(tlsSrv.Close)
	client := tlsSrv.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs}
	check("TLS", get(client, tlsSrv.URL), true)
}
