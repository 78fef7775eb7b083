package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUserID(t *testing.T) {
	for name, want := range map[string]string{
		"Alice Example": "u-alice-example",
		"bob_42":        "u-bob-42",
		"  Ünïcode ":    "u-ncode",
	} {
		if got := userID(name); got != want {
			t.Errorf("userID(%q) = %q, want %q", name, got, want)
		}
	}
	if got := userID("日本"); !strings.HasPrefix(got, "u-") || len(got) != 14 || got != userID("日本") {
		t.Errorf("userID of a name without letters = %q", got)
	}
}

func TestLoadConfigSaysEverythingMissing(t *testing.T) {
	_, err := loadConfig(func(string) string { return "" })
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"TASKWIRE_API_KEY", "TASKWIRE_JWT_SECRET", "build:client"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not mention %s: %v", s, err)
		}
	}
}

func TestSessionCookieAndToken(t *testing.T) {
	a := &app{cookieKey: []byte("k"), log: slog.New(slog.DiscardHandler),
		cfg: config{jwtSecret: []byte("0123456789abcdef0123456789abcdef")}}
	login := httptest.NewRecorder()
	lr := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("name=Alice"))
	lr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a.login(login, lr)
	req := httptest.NewRequest(http.MethodGet, "/token", nil)
	for _, c := range login.Result().Cookies() {
		req.AddCookie(c)
	}
	if u := a.currentUser(req); u == nil || u.ID != "u-alice" {
		t.Fatalf("user %+v", u)
	}
	w := httptest.NewRecorder()
	a.token(w, req)
	if w.Code != http.StatusOK || strings.Count(w.Body.String(), ".") != 2 {
		t.Fatalf("token: %d %q", w.Code, w.Body.String())
	}
	tampered := httptest.NewRequest(http.MethodGet, "/token", nil)
	tampered.AddCookie(&http.Cookie{Name: sessionCookie, Value: "eyJpZCI6InUtbWFsbG9yeSJ9.bad"})
	if u := a.currentUser(tampered); u != nil {
		t.Fatalf("a forged cookie logs in as %+v", u)
	}
}

func TestTokenNeedsALogin(t *testing.T) {
	a := &app{cookieKey: []byte("k"), log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	a.token(w, httptest.NewRequest(http.MethodGet, "/token", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", w.Code)
	}
}
