package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// recorded is one request a fake server received.
type recorded struct {
	method, path, rawQuery, auth, contentType string
	body                                      map[string]any
}

// fakeServer answers every request with status and body, and records it.
func fakeServer(t *testing.T, status int, body string, headers ...string) (*Client, *[]recorded) {
	t.Helper()
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
			auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &rec.body); err != nil {
				t.Errorf("request body %q: %v", b, err)
			}
		}
		got = append(got, rec)
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/", "twk_test")
	if err != nil {
		t.Fatal(err)
	}
	return c, &got
}

func TestNewRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct{ url, key string }{
		{"", "k"}, {"localhost:8080", "k"}, {"ftp://h", "k"}, {"http://", "k"},
		{"http://h?x=1", "k"}, {"http://h", ""}, {"http://h/%zz", "k"},
	} {
		if _, err := New(tc.url, tc.key); err == nil {
			t.Errorf("New(%q, %q): no error", tc.url, tc.key)
		}
	}
}

func TestStartSendsKindParamsSubject(t *testing.T) {
	c, got := fakeServer(t, http.StatusAccepted, `{"id":"t1","state":"queued"}`, "Location", "/api/v1/tasks/t1")
	st, err := c.Start(context.Background(), "export", map[string]any{"rows": 5}, ForSubject("u-42"))
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "t1" || st.State != StateQueued {
		t.Fatalf("started %+v", st)
	}
	r := (*got)[0]
	if r.method != http.MethodPost || r.path != "/api/v1/tasks" || r.auth != "Bearer twk_test" || r.contentType != "application/json" {
		t.Fatalf("request %+v", r)
	}
	want := map[string]any{"kind": "export", "params": map[string]any{"rows": float64(5)}, "subject": "u-42"}
	if b, _ := json.Marshal(r.body); string(b) != mustJSON(want) {
		t.Fatalf("body %s, want %s", b, mustJSON(want))
	}
}

func TestStartWithoutParamsOmitsThem(t *testing.T) {
	c, got := fakeServer(t, http.StatusAccepted, `{"id":"t1","state":"queued"}`)
	if _, err := c.Start(context.Background(), "export", nil, ForSubject("u-1")); err != nil {
		t.Fatal(err)
	}
	if _, ok := (*got)[0].body["params"]; ok {
		t.Fatalf("params sent: %v", (*got)[0].body)
	}
}

func TestStartAndListNeedASubject(t *testing.T) {
	c, got := fakeServer(t, http.StatusOK, `{}`)
	if _, err := c.Start(context.Background(), "export", nil); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("Start: %v", err)
	}
	if _, err := c.List(context.Background(), ""); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("List: %v", err)
	}
	if len(*got) != 0 {
		t.Fatalf("asked the server: %+v", *got)
	}
}

func TestGetDecodesTheRecord(t *testing.T) {
	c, got := fakeServer(t, http.StatusOK, `{"taskId":"a/b","kind":"export","state":"completed","seq":9,"percent":100,
		"done":5,"total":5,"attempts":1,"maxAttempts":3,"params":{"rows":5},"createdAt":"2026-01-02T03:04:05Z",
		"finishedAt":"2026-01-02T03:04:06Z","result":{"url":"/api/v1/tasks/a/result","rows":5,"bytes":70,
		"contentType":"text/csv","filename":"export.csv"},"streams":{"log":2},"unknownField":true}`)
	task, err := c.Get(context.Background(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if (*got)[0].path != "/api/v1/tasks/a%2Fb" || (*got)[0].method != http.MethodGet {
		t.Fatalf("request %+v", (*got)[0])
	}
	if task.ID != "a/b" || !task.State.Final() || task.Result == nil || task.Result.Rows != 5 ||
		string(task.Params) != `{"rows":5}` || task.Streams["log"] != 2 || task.FinishedAt == nil ||
		!task.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("task %+v", task)
	}
}

func TestListAsksForTheSubject(t *testing.T) {
	c, got := fakeServer(t, http.StatusOK, `{"tasks":[{"taskId":"t2","state":"running"},{"taskId":"t1","state":"queued"}]}`)
	list, err := c.List(context.Background(), "u 42&x")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "t2" || list[1].State != StateQueued {
		t.Fatalf("list %+v", list)
	}
	if r := (*got)[0]; r.path != "/api/v1/tasks" || r.rawQuery != "subject=u+42%26x" {
		t.Fatalf("request %+v", r)
	}
}

func TestInboxAsksForTheSubject(t *testing.T) {
	c, got := fakeServer(t, http.StatusOK, `{"items":[{"taskId":"t2","kind":"export","state":"failed","seq":9,`+
		`"finishedAt":"2026-01-02T03:04:05Z","error":{"code":"boom","message":"it broke"}}]}`)
	items, err := c.Inbox(context.Background(), "u-42")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].TaskID != "t2" || items[0].State != StateFailed || items[0].Seq != 9 ||
		items[0].Error == nil || items[0].Error.Code != "boom" || items[0].FinishedAt.Year() != 2026 {
		t.Fatalf("items %+v", items)
	}
	if r := (*got)[0]; r.method != "GET" || r.path != "/api/v1/inbox" || r.rawQuery != "subject=u-42" {
		t.Fatalf("request %+v", r)
	}
	if _, err := c.Inbox(context.Background(), ""); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("no subject: %v", err)
	}
}

func TestAckInboxSendsTheIDs(t *testing.T) {
	c, got := fakeServer(t, http.StatusOK, `{"taskIds":["t1","t2"]}`)
	ids, err := c.AckInbox(context.Background(), "u-42", "t1", "t2")
	if err != nil || !slices.Equal(ids, []string{"t1", "t2"}) {
		t.Fatalf("ack %v, %v", ids, err)
	}
	r := (*got)[0]
	if r.method != "POST" || r.path != "/api/v1/inbox/ack" || r.rawQuery != "subject=u-42" ||
		mustJSON(r.body) != `{"taskIds":["t1","t2"]}` {
		t.Fatalf("request %+v", r)
	}
	if _, err := c.AckInbox(context.Background(), "", "t1"); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("no subject: %v", err)
	}
	c, _ = fakeServer(t, http.StatusNotFound, `{"error":{"code":"not_found","message":"no such task: t3; nothing was marked seen"}}`)
	if _, err := c.AckInbox(context.Background(), "u-42", "t3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestCancel(t *testing.T) {
	c, got := fakeServer(t, http.StatusAccepted, `{"taskId":"t1","state":"running","cancelRequested":true}`)
	task, err := c.Cancel(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !task.CancelRequested || (*got)[0].method != http.MethodDelete || (*got)[0].path != "/api/v1/tasks/t1" {
		t.Fatalf("task %+v, request %+v", task, (*got)[0])
	}
}

func TestViewer(t *testing.T) {
	c, got := fakeServer(t, http.StatusCreated, `{"token":"ey.x.y","expiresAt":"2026-01-02T04:00:00Z","taskId":"t1"}`)
	v, err := c.Viewer(context.Background(), "t1", 1500*time.Millisecond, true)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != "ey.x.y" || v.TaskID != "t1" || !v.ExpiresAt.Equal(time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)) {
		t.Fatalf("viewer %+v", v)
	}
	r := (*got)[0]
	if r.path != "/api/v1/tasks/t1/viewers" || r.body["ttlSeconds"] != float64(2) || r.body["allowResult"] != true {
		t.Fatalf("request %+v", r)
	}
	if _, err := c.Viewer(context.Background(), "t1", 0, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := (*got)[1].body["ttlSeconds"]; ok {
		t.Fatalf("ttl 0 sent a ttl: %v", (*got)[1].body)
	}
	if _, err := c.Viewer(context.Background(), "t1", -time.Second, false); err == nil {
		t.Fatal("a negative ttl was accepted")
	}
}

func TestErrorAnswers(t *testing.T) {
	c, _ := fakeServer(t, http.StatusBadRequest, `{"error":{"code":"unknown_kind","message":"kind: unknown kind \"pdf\"",
		"details":[{"field":"kind","message":"unknown kind \"pdf\""}],"known":["export","report"]}}`)
	_, err := c.Start(context.Background(), "pdf", nil, ForSubject("u-1"))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnknownKind) || errors.Is(err, ErrInvalidParams) {
		t.Fatalf("err %v", err)
	}
	if e.Status != 400 || e.Code != "unknown_kind" || !slices.Equal(e.Known, []string{"export", "report"}) ||
		len(e.Details) != 1 || e.Details[0].Field != "kind" {
		t.Fatalf("error %+v", e)
	}
	if want := `taskwire: 400 unknown_kind: kind: unknown kind "pdf"`; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}

	c, _ = fakeServer(t, http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow down"}}`, "Retry-After", "3")
	_, err = c.Start(context.Background(), "export", nil, ForSubject("u-1"))
	if !errors.As(err, &e) || !errors.Is(err, ErrRateLimited) || e.RetryAfter != 3*time.Second {
		t.Fatalf("err %#v", err)
	}

	c, _ = fakeServer(t, http.StatusBadGateway, `<html>bad gateway</html>`)
	_, err = c.Get(context.Background(), "t1")
	if !errors.As(err, &e) || e.Code != "" || e.Status != 502 || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("err %#v", err)
	}
	for _, s := range Codes() {
		if errors.Is(err, sentinels[s]) {
			t.Fatalf("a non-taskwire answer matches %s", s)
		}
	}
}

func TestEverySentinelMatchesItsCodeOnly(t *testing.T) {
	for _, code := range Codes() {
		err := error(&Error{Status: 400, Code: code, Message: "m"})
		for _, other := range Codes() {
			if errors.Is(err, sentinels[other]) != (code == other) {
				t.Errorf("code %s: errors.Is(err, %s) = %v", code, other, !(code == other))
			}
		}
	}
}

// TestEveryServerCodeHasASentinel reads the server's sources: every error code
// its HTTP API writes has a sentinel here.
func TestEveryServerCodeHasASentinel(t *testing.T) {
	re := regexp.MustCompile(`(?:writeError|writeDetailedError)\([a-z]+, http\.Status\w+, "([a-z_]+)"`)
	var files []string
	for _, dir := range []string{"httpapi", "web"} {
		m, err := filepath.Glob(filepath.Join("..", "server", "internal", dir, "*.go"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no server sources in %s: %v", dir, err)
		}
		files = append(files, m...)
	}
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			found[string(m[1])] = true
		}
	}
	// The codes of request validation errors (shared/tasks.ValidationError).
	found["invalid_params"], found["unknown_kind"] = true, true
	if len(found) < 15 {
		t.Fatalf("found only %d codes in the server: %v", len(found), found)
	}
	for code := range found {
		if _, ok := sentinels[code]; !ok {
			t.Errorf("the server answers code %q, which has no sentinel error", code)
		}
	}
}

func TestWithHTTPClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"tasks":[]}`)
	}))
	defer srv.Close()
	used := false
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := New(srv.URL, "k", WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background(), "u-1"); err != nil || !used {
		t.Fatalf("err %v, used %v", err, used)
	}
}

func TestBasePathPrefix(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		_, _ = io.WriteString(w, `{"taskId":"t1"}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/taskwire/", "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "t1"); err != nil || path != "/taskwire/api/v1/tasks/t1" {
		t.Fatalf("err %v, path %q", err, path)
	}
}

func TestContextCancelled(t *testing.T) {
	c, _ := fakeServer(t, http.StatusOK, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "t1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSignUserToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 3, 4, 5, 6, 7, 800, time.UTC)
	for _, tc := range []struct {
		opts []TokenOption
		alg  string
	}{
		{nil, "HS256"},
		{[]TokenOption{WithHS384()}, "HS384"},
		{[]TokenOption{WithHS512(), WithIssuer("app"), WithAudience("taskwire")}, "HS512"},
	} {
		tok, err := SignUserToken(secret, "u-42", 5*time.Minute, append(tc.opts, withClock(func() time.Time { return now }))...)
		if err != nil {
			t.Fatal(err)
		}
		var claims jwt.RegisteredClaims
		parsed, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithValidMethods([]string{tc.alg}), jwt.WithExpirationRequired())
		if err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		if parsed.Header["alg"] != tc.alg || claims.Subject != "u-42" ||
			!claims.IssuedAt.Equal(now.Truncate(time.Second)) || !claims.ExpiresAt.Equal(now.Truncate(time.Second).Add(5*time.Minute)) {
			t.Fatalf("%s: header %v claims %+v", tc.alg, parsed.Header, claims)
		}
		if tc.alg == "HS512" && (claims.Issuer != "app" || !slices.Equal(claims.Audience, jwt.ClaimStrings{"taskwire"})) {
			t.Fatalf("iss/aud: %+v", claims)
		}
	}
}

func TestSignUserTokenRefuses(t *testing.T) {
	good := []byte("0123456789abcdef0123456789abcdef")
	for name, f := range map[string]func() error{
		"short secret":  func() error { _, err := SignUserToken(good[:31], "u", time.Minute); return err },
		"empty subject": func() error { _, err := SignUserToken(good, "", time.Minute); return err },
		"control char":  func() error { _, err := SignUserToken(good, "u\n1", time.Minute); return err },
		"long subject":  func() error { _, err := SignUserToken(good, strings.Repeat("u", 257), time.Minute); return err },
		"bad utf-8":     func() error { _, err := SignUserToken(good, "u\xff", time.Minute); return err },
		"no ttl":        func() error { _, err := SignUserToken(good, "u", 0); return err },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
