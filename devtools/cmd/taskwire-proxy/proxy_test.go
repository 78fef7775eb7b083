package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testBackend is a server that answers every request with its name, echoes the
// bytes of an upgraded connection prefixed with its name, and answers /readyz
// with 200 or 503 as told.
type testBackend struct {
	name  string
	srv   *httptest.Server
	ready atomic.Bool
	hits  atomic.Int64
}

func newBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	b := &testBackend{name: name}
	b.ready.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/readyz":
		if !b.ready.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	case r.Header.Get("Upgrade") == "websocket":
		b.hits.Add(1)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: %s\r\n\r\n", b.name)
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(brw, "%s:%s", b.name, line)
			brw.Flush()
		}
	default:
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		fmt.Fprintf(w, "%s %s %s", b.name, r.Method, body)
	}
}

func (b *testBackend) url(t *testing.T) *url.URL {
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newProxy returns a proxy in front of backends, served by an httptest server.
func newProxy(t *testing.T, backends ...*testBackend) (*Proxy, *httptest.Server) {
	t.Helper()
	var urls []*url.URL
	for _, b := range backends {
		urls = append(urls, b.url(t))
	}
	p, err := New(Config{
		Backends:       urls,
		HealthInterval: 2 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	return p, ps
}

// client is a browser-like client: it keeps cookies.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 5 * time.Second}
}

// get requests path and returns the name of the backend that answered.
func get(t *testing.T, c *http.Client, base, path string) string {
	t.Helper()
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	name, _, _ := strings.Cut(string(body), " ")
	return name
}

func TestAffinityHoldsAcrossRequests(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	_, ps := newProxy(t, a, b, c)

	// Three new clients are spread over the three backends, and each one stays
	// where it landed for all its later requests, whatever other clients do.
	clients := []*http.Client{client(t), client(t), client(t)}
	home := map[*http.Client]string{}
	landed := map[string]bool{}
	for _, cl := range clients {
		name := get(t, cl, ps.URL, "/socket.io/?EIO=4&transport=polling")
		home[cl] = name
		landed[name] = true
	}
	if len(landed) != 3 {
		t.Fatalf("3 new clients landed on %v, want one per backend", landed)
	}
	// An irregular order, so that plain round robin cannot pass by luck.
	order := []int{0, 0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 2, 0, 1, 0, 0, 2, 1, 1, 1}
	for i, k := range order {
		cl := clients[k]
		if got := get(t, cl, ps.URL, "/socket.io/?EIO=4&transport=polling&n="+fmt.Sprint(i)); got != home[cl] {
			t.Fatalf("request %d went to %s, want %s (its first backend)", i, got, home[cl])
		}
	}

	// A request with a body stays pinned too (Socket.IO polling POSTs).
	resp, err := clients[0].Post(ps.URL+"/socket.io/?EIO=4&transport=polling", "text/plain", strings.NewReader("40"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := home[clients[0]] + " POST 40"; string(body) != want {
		t.Fatalf("POST answered %q, want %q", body, want)
	}
}

func TestCookieAndForwardedHeaders(t *testing.T) {
	a := newBackend(t, "a")
	_, ps := newProxy(t, a)

	req, _ := http.NewRequest("GET", ps.URL+"/", nil)
	req.Host = "app.example.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != DefaultCookieName || !cookies[0].HttpOnly || cookies[0].Path != "/" {
		t.Fatalf("cookies %v, want one HttpOnly %s cookie on /", cookies, DefaultCookieName)
	}
	if strings.Contains(cookies[0].Value, "127.0.0.1") {
		t.Fatalf("cookie value %q reveals the backend address", cookies[0].Value)
	}
	if got := resp.Header.Get("X-Seen-Host"); got != "app.example.test" {
		t.Fatalf("backend saw Host %q, want the client's app.example.test", got)
	}
	if got := resp.Header.Get("X-Seen-Forwarded-For"); got != "127.0.0.1" {
		t.Fatalf("backend saw X-Forwarded-For %q, want 127.0.0.1", got)
	}

	// A client that already carries the right cookie is not sent it again.
	req, _ = http.NewRequest("GET", ps.URL+"/", nil)
	req.AddCookie(cookies[0])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Fatalf("pinned client got Set-Cookie %q again", got)
	}
}

// dialUpgrade opens a raw connection to the proxy and asks for a WebSocket
// upgrade, sending cookies; it returns the connection after the 101 answer and
// the backend that took it.
func dialUpgrade(t *testing.T, proxyURL string, cookies []*http.Cookie) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest("GET", proxyURL+"/socket.io/?EIO=4&transport=websocket", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("reading the upgrade answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade answered %s (Upgrade: %q), want 101 websocket", resp.Status, resp.Header.Get("Upgrade"))
	}
	return conn, br, resp.Header.Get("X-Backend")
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	_, ps := newProxy(t, a, b)

	// Pin a client with a polling request, then upgrade: the upgrade goes to the
	// same backend, as Socket.IO's polling-to-websocket upgrade requires.
	cl := client(t)
	home := get(t, cl, ps.URL, "/socket.io/?EIO=4&transport=polling")
	u, _ := url.Parse(ps.URL)
	conn, br, backendName := dialUpgrade(t, ps.URL, cl.Jar.Cookies(u))
	if backendName != home {
		t.Fatalf("upgrade went to %s, want %s where the client is pinned", backendName, home)
	}
	for _, msg := range []string{"2probe", "5", strings.Repeat("x", 64<<10)} {
		if _, err := io.WriteString(conn, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
		if want := home + ":" + msg + "\n"; line != want {
			t.Fatalf("echo %.40q, want %.40q", line, want)
		}
	}
}

func TestFailoverWhenBackendDies(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p, ps := newProxy(t, a, b)

	cl := client(t)
	home := get(t, cl, ps.URL, "/")
	dead, alive := a, b
	if home == "b" {
		dead, alive = b, a
	}
	dead.srv.Close()

	// The next request still succeeds, on the other backend (the dead one refused
	// the connection, so the request could be sent again), and re-pins the client.
	if got := get(t, cl, ps.URL, "/"); got != alive.name {
		t.Fatalf("after %s died the request went to %s, want %s", dead.name, got, alive.name)
	}
	for i := range 5 {
		if got := get(t, cl, ps.URL, "/"); got != alive.name {
			t.Fatalf("request %d after failover went to %s, want %s", i, got, alive.name)
		}
	}
	// New clients avoid the dead backend.
	for range 4 {
		if got := get(t, client(t), ps.URL, "/"); got != alive.name {
			t.Fatalf("a new client went to %s, want %s", got, alive.name)
		}
	}

	// A health check keeps it down; WebSocket upgrades go to the live backend.
	p.CheckHealth(context.Background())
	u, _ := url.Parse(ps.URL)
	if _, _, name := dialUpgrade(t, ps.URL, cl.Jar.Cookies(u)); name != alive.name {
		t.Fatalf("upgrade after failover went to %s, want %s", name, alive.name)
	}
}

func TestFailoverWhenBackendNotReady(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p, ps := newProxy(t, a, b)

	cl := client(t)
	home := get(t, cl, ps.URL, "/")
	draining, other := a, b
	if home == "b" {
		draining, other = b, a
	}
	// A draining server answers /readyz with 503 while it still serves: the next
	// health check moves its clients away.
	draining.ready.Store(false)
	p.CheckHealth(context.Background())
	if got := get(t, cl, ps.URL, "/"); got != other.name {
		t.Fatalf("client of a draining backend went to %s, want %s", got, other.name)
	}
	// When it is ready again it takes new clients, and the moved client stays put.
	draining.ready.Store(true)
	p.CheckHealth(context.Background())
	landed := map[string]bool{}
	for range 4 {
		landed[get(t, client(t), ps.URL, "/")] = true
	}
	if !landed[draining.name] {
		t.Fatalf("new clients landed on %v only, want %s back in rotation", landed, draining.name)
	}
	if got := get(t, cl, ps.URL, "/"); got != other.name {
		t.Fatalf("moved client went back to %s, want it to stay on %s", got, other.name)
	}
}

func TestRequestWithBodyIsNotResent(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	_, ps := newProxy(t, a, b)

	cl := client(t)
	home := get(t, cl, ps.URL, "/")
	dead, alive := a, b
	if home == "b" {
		dead, alive = b, a
	}
	dead.srv.Close()
	before := alive.hits.Load()

	// A POST whose backend died gets 502: its body cannot be replayed safely.
	resp, err := cl.Post(ps.URL+"/", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST to a dead backend: %s, want 502", resp.Status)
	}
	if alive.hits.Load() != before {
		t.Fatal("the POST was sent to the other backend too")
	}
	// The dead backend is now marked down: the client's next request moves.
	if got := get(t, cl, ps.URL, "/"); got != alive.name {
		t.Fatalf("next request went to %s, want %s", got, alive.name)
	}
}

func TestAllBackendsDown(t *testing.T) {
	a := newBackend(t, "a")
	p, ps := newProxy(t, a)

	// Not ready is not dead: with no ready backend the proxy still tries one.
	a.ready.Store(false)
	p.CheckHealth(context.Background())
	if got := get(t, client(t), ps.URL, "/"); got != "a" {
		t.Fatalf("got %s, want a", got)
	}
	a.srv.Close()
	resp, err := client(t).Get(ps.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("all backends dead: %s, want 502", resp.Status)
	}
}

func TestParseBackends(t *testing.T) {
	got, err := ParseBackends("127.0.0.1:8081, http://127.0.0.1:8082/ https://s3:443")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, u := range got {
		s = append(s, u.String())
	}
	if want := "http://127.0.0.1:8081 http://127.0.0.1:8082 https://s3:443"; strings.Join(s, " ") != want {
		t.Fatalf("got %v, want %s", s, want)
	}
	for _, bad := range []string{"", " , ", "ftp://x:1", "http://x:1/api", "http://x:1/?a=b", "http://"} {
		if _, err := ParseBackends(bad); err == nil {
			t.Errorf("ParseBackends(%q) accepted", bad)
		}
	}
	if _, err := New(Config{Backends: []*url.URL{got[0], got[0]}}); err == nil {
		t.Error("New accepted a backend listed twice")
	}
}

// TestRunServesAndShutsDown runs the command as main does: it prints the ready
// line, proxies with affinity, and on cancellation closes WebSocket connections
// and returns.
func TestRunServesAndShutsDown(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, lines := newLineWriter()
	done := make(chan error, 1)
	env := map[string]string{"TASKWIRE_PROXY_BACKENDS": a.srv.URL + "," + b.srv.URL}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-health-interval", "50ms"}, func(k string) string { return env[k] }, stdout, io.Discard)
	}()

	var proxyURL string
	select {
	case line := <-lines:
		var ok bool
		proxyURL, ok = strings.CutPrefix(line, "ready ")
		if !ok {
			t.Fatalf("first line %q, want \"ready <url>\"", line)
		}
		proxyURL = strings.TrimSuffix(proxyURL, "/")
	case err := <-done:
		t.Fatalf("run returned before it was ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no ready line within 5s")
	}
	cl := client(t)
	home := get(t, cl, proxyURL, "/")
	if got := get(t, cl, proxyURL, "/"); got != home {
		t.Fatalf("second request went to %s, want %s", got, home)
	}
	conn, br, _ := dialUpgrade(t, proxyURL, nil)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of the shutdown signal")
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("websocket connection still open after shutdown (read: %v)", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{},                            // no backends
		{"-backends", "ftp://x:1"},    // bad backend
		{"-backends", "x:1", "extra"}, // stray argument
		{"-backends", "x:1", "-log-level", "loud"},
	} {
		if err := run(context.Background(), args, env, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// lineWriter sends every complete line written to it on a channel.
type lineWriter struct {
	buf   []byte
	lines chan string
}

func newLineWriter() (*lineWriter, <-chan string) {
	w := &lineWriter{lines: make(chan string, 16)}
	return w, w.lines
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}
