package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
)

// trickle sends the head of a POST announcing a body of 1000 bytes, then one
// byte, and returns the status line of the answer (or "" when the connection
// closed without one). It waits for no longer than limit.
func trickle(t *testing.T, url, path string, header map[string]string, limit time.Duration) string {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", path, host)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n{")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("POST %s: a body that never ends was still held after %s", path, limit)
		}
		return ""
	}
	return strings.TrimSpace(line)
}

// TestBodyTimeout: a body that trickles in is cut after BodyTimeout, on the
// API (408 body_timeout) and on polling POSTs, while a long-polling GET that
// lasts longer is not cut.
func TestBodyTimeout(t *testing.T) {
	release := make(chan struct{})
	getDone := make(chan error, 1)
	postErr := make(chan error, 1)
	realtime := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			<-release // a long-poll: held until the test lets it go
			getDone <- r.Context().Err()
			_, _ = io.WriteString(w, "6")
			return
		}
		_, err := io.ReadAll(r.Body)
		postErr <- err
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{BodyTimeout: 300 * time.Millisecond, Realtime: realtime})[0]
	tok := e.token()

	// A long-poll starts first and outlives both cut bodies.
	getRes := make(chan *http.Response, 1)
	go func() {
		res, err := http.Get(e.srv.URL + "/socket.io/?EIO=4&transport=polling&sid=x")
		if err != nil {
			t.Error(err)
			close(getRes)
			return
		}
		getRes <- res
	}()

	status := trickle(t, e.srv.URL, "/api/v1/tasks", map[string]string{
		"Authorization": "Bearer " + tok, "Content-Type": "application/json",
	}, 10*time.Second)
	if !strings.Contains(status, "408") {
		t.Fatalf("API POST with a trickling body: %q, want 408", status)
	}
	trickle(t, e.srv.URL, "/socket.io/?EIO=4&transport=polling&sid=x", nil, 10*time.Second)
	select {
	case err := <-postErr:
		if err == nil {
			t.Fatal("the polling POST's body was read in full")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the polling POST's body read was not cut")
	}

	close(release)
	select {
	case err := <-getDone:
		if err != nil {
			t.Fatalf("the long-poll GET was cut: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll GET never ended")
	}
	res := <-getRes
	if res == nil {
		return
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || string(b) != "6" {
		t.Fatalf("long-poll answer: %d %q", res.StatusCode, b)
	}

	// A body sent at once is read as before.
	if r := e.do("POST", "/api/v1/tasks", tok, exportBody); r.status != http.StatusAccepted {
		t.Fatalf("ordinary POST: %d %s", r.status, r.body)
	}
}

// TestStateChangesNeedJSON: a POST without Content-Type (what a page of
// another site can send without a preflight) or with a form type gets 415,
// with the caller's cookie too; a DELETE without a body needs none.
func TestStateChangesNeedJSON(t *testing.T) {
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{})[0]
	tok := e.token()
	cookie := session.CookieName + "=" + tok
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		r := e.do("POST", "/api/v1/tasks", "", exportBody, "Cookie", cookie, "Content-Type", ct)
		if r.status != http.StatusUnsupportedMediaType || r.errorCode(t) != "unsupported_media_type" {
			t.Fatalf("POST with Content-Type %q: %d %s", ct, r.status, r.body)
		}
	}
	if r := e.do("DELETE", "/api/v1/tasks/AAAAAAAAAAAAAAAAAAAAAA", tok, ""); r.status != http.StatusNotFound {
		t.Fatalf("DELETE without a body: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/tasks", tok, exportBody); r.status != http.StatusAccepted {
		t.Fatalf("JSON POST: %d %s", r.status, r.body)
	}
}

// TestNoSniff: JSON answers (and errors) tell browsers not to guess their type.
func TestNoSniff(t *testing.T) {
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{})[0]
	tok := e.token()
	for _, r := range []response{
		e.do("GET", "/api/v1/tasks", tok, ""),
		e.do("GET", "/api/v1/tasks/AAAAAAAAAAAAAAAAAAAAAA", tok, ""),
		e.do("GET", "/api/v1/nothing", "", ""),
		e.do("GET", "/healthz", "", ""),
	} {
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("answer %d %s without nosniff: %v", r.status, r.body, r.header)
		}
	}
}

// TestAnyOriginWithoutCredentials: with "*", a page of another origin (even
// one also listed) gets "*" and never credentials, and its cookie does not
// identify anyone: only a bearer token does.
func TestAnyOriginWithoutCredentials(t *testing.T) {
	const app = "https://app.example"
	e := replicas(t, 1, taskservice.Config{}, httpapi.Deps{AllowedOrigins: []string{"*", app}})[0]
	tok := e.token()
	cookie := session.CookieName + "=" + tok
	for _, origin := range []string{app, "https://evil.example", "null"} {
		r := e.do("POST", "/api/v1/tasks", "", exportBody, "Origin", origin, "Cookie", cookie)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("cookie POST from %s: %d %s", origin, r.status, r.body)
		}
		if r.header.Get("Access-Control-Allow-Credentials") != "" || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("CORS headers for %s: %v", origin, r.header)
		}
		r = e.do("POST", "/api/v1/tasks", tok, exportBody, "Origin", origin)
		if r.status != http.StatusAccepted || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("bearer POST from %s: %d %v %s", origin, r.status, r.header, r.body)
		}
	}
	// The server's own pages keep their cookie.
	if r := e.do("POST", "/api/v1/tasks", "", exportBody, "Origin", e.srv.URL, "Cookie", cookie); r.status != http.StatusAccepted {
		t.Fatalf("same-origin cookie POST: %d %s", r.status, r.body)
	}
}
