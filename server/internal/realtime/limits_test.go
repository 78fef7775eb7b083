package realtime_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/redistest"
)

// refusals counts the Observer's refusals by reason.
type refusals struct {
	realtime.Observer
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) SessionOpened(string)   {}
func (r *refusals) SessionUpgraded(string) {}
func (r *refusals) Connected()             {}
func (r *refusals) Sent(string, []any)     {}
func (r *refusals) Refused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[reason]++
}
func (r *refusals) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

func pollingHandshake(t *testing.T, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"?EIO=4&transport=polling", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func TestMaxConnections(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxConnections = 2
		c.Observer = obs
		c.AllowedOrigins = []string{"https://app.example"}
	})
	c1, _ := connect(t, r, "tok-alice")
	connect(t, r, "tok-bob")

	// Full: a polling handshake gets 503 with Retry-After and a reason.
	status, h, body := pollingHandshake(t, r.url, "Origin", "https://app.example")
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "server full") {
		t.Fatalf("handshake on a full server: %d %v %s", status, h, body)
	}
	// The allowed page can read the refusal.
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("no CORS header on the refusal: %v", h)
	}
	// A websocket handshake too (the upgrade is answered 503; the refusal is
	// counted below).
	if _, err := eiotest.DialWebSocket(ctxT(t, 5*time.Second), r.url, nil); err == nil {
		t.Fatal("websocket handshake admitted on a full server")
	}
	if n := obs.count(realtime.RefusedFull); n != 2 {
		t.Fatalf("refusals counted: %d, want 2", n)
	}
	// Connected clients are not affected: c1 still gets its events.
	if err := r.srv.IO().To("user:alice").Emit("still-here"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c1, "still-here")

	// A connection that ends frees its place.
	c1.Close()
	testwait.For(t, 5*time.Second, "the server to count the closed connection", func() bool {
		return r.srv.Stats().Transports["websocket"] == 1
	})
	connect(t, r, "tok-alice")
	if status, _, _ := pollingHandshake(t, r.url); status != http.StatusServiceUnavailable {
		t.Fatalf("third connection admitted: %d", status)
	}
}

// TestMaxConnectionsConcurrent: handshakes arriving at once never exceed the
// bound of sessions without an authenticated socket together (they do not
// count under MaxConnections).
func TestMaxConnectionsConcurrent(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) { c.MaxConnections = 2; c.MaxUnauthenticated = 5 })
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.Get(r.url + "?EIO=4&transport=polling")
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			switch res.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				full.Add(1)
			default:
				t.Errorf("status %d", res.StatusCode)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || full.Load() != 25 {
		t.Fatalf("admitted %d, refused %d; want 5 and 25", ok.Load(), full.Load())
	}
	if n := r.srv.Stats().Transports["polling"]; n != 5 {
		t.Fatalf("%d polling sessions open", n)
	}
}

// TestMaxConnectionsConcurrentWebSocket: websocket handshakes arriving at once
// never exceed the bound together either.
func TestMaxConnectionsConcurrentWebSocket(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) { c.MaxConnections = 2; c.MaxUnauthenticated = 5 })
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := eiotest.DialWebSocket(ctxT(t, 15*time.Second), r.url, nil)
			switch {
			case err != nil && strings.Contains(err.Error(), "bad handshake"): // the 503
				full.Add(1)
				return
			case err != nil:
				t.Errorf("dial: %v", err)
				return
			}
			t.Cleanup(c.Close)
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || full.Load() != 25 {
		t.Fatalf("admitted %d, refused %d; want 5 and 25", ok.Load(), full.Load())
	}
	if n := r.srv.Stats().Transports["websocket"]; n != 5 {
		t.Fatalf("%d websocket sessions open", n)
	}
}

// echoReplica answers the event "echo" with its argument's length.
func echoReplica(t *testing.T, maxBytes int64) *replica {
	return newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxHttpBufferSize = maxBytes
		c.OnConnection = func(s *socket.Socket, _ *auth.Principal) {
			s.On("echo", func(args ...any) {
				msg, _ := args[0].(string)
				if ack, ok := args[len(args)-1].(socket.Ack); ok {
					ack([]any{len(msg)}, nil)
				}
			})
		}
	})
}

func TestMessageSizeWebSocket(t *testing.T) {
	r := echoReplica(t, 10_000)
	c, _ := connect(t, r, "tok-alice")
	other, _ := connect(t, r, "tok-bob")
	// Under the bound: answered.
	if err := c.SendRaw(`420["echo","` + strings.Repeat("a", 5000) + `"]`); err != nil {
		t.Fatal(err)
	}
	p, err := c.Next(ctxT(t, 5*time.Second))
	if err != nil || p.Type != eiotest.TypeAck || string(p.Data) != "[5000]" {
		t.Fatalf("answer to a small message: %+v %v", p, err)
	}
	// Over the bound: the connection is closed; nothing is answered. The
	// server may close it while the client still writes the message (the
	// header says its size), so the write itself may fail.
	_ = c.SendRaw(`421["echo","` + strings.Repeat("a", 20_000) + `"]`)
	select {
	case <-c.Done():
	case <-ctxT(t, 5*time.Second).Done():
		t.Fatal("the connection stayed open after an oversized message")
	}
	// The server goes on: the other client still gets events, a new one connects.
	if err := r.srv.IO().To("user:bob").Emit("still-here"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, other, "still-here")
	connect(t, r, "tok-alice")
}

func TestMessageSizePolling(t *testing.T) {
	r := echoReplica(t, 10_000)
	session := func() *eiotest.Conn {
		t.Helper()
		c, err := eiotest.DialPolling(ctxT(t, 5*time.Second), r.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if _, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	post := func(c *eiotest.Conn, body io.Reader, length int64) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.url+"?EIO=4&transport=polling&sid="+c.Sid(), body)
		req.ContentLength = length
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	closed := func(c *eiotest.Conn, what string) {
		t.Helper()
		select {
		case <-c.Done():
		case <-ctxT(t, 5*time.Second).Done():
			t.Fatalf("%s: the session stayed open", what)
		}
	}
	big := `42["echo","` + strings.Repeat("a", 20_000) + `"]`
	// Announced length over the bound, and the same body sent chunked (no
	// length, and far more behind it): both 413, unread, and the session is
	// closed (its client starts a new one).
	c := session()
	if s := post(c, strings.NewReader(big), int64(len(big))); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized POST: %d", s)
	}
	closed(c, "oversized POST")
	c = session()
	if s := post(c, io.MultiReader(strings.NewReader(big), strings.NewReader(strings.Repeat("a", 50<<20))), -1); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized chunked POST: %d", s)
	}
	closed(c, "oversized chunked POST")
	testwait.For(t, 5*time.Second, "the closed sessions to be gone", func() bool { return r.srv.Stats().Transports["polling"] == 0 })

	// A chunked body within the bound is handled as usual.
	c = session()
	small := `421["echo","` + strings.Repeat("a", 5000) + `"]`
	if s := post(c, io.MultiReader(strings.NewReader(small[:10]), strings.NewReader(small[10:])), -1); s != http.StatusOK {
		t.Fatalf("chunked POST within the bound: %d", s)
	}
	p, err := c.Next(ctxT(t, 5*time.Second))
	if err != nil || p.Type != eiotest.TypeAck || string(p.Data) != "[5000]" {
		t.Fatalf("answer to the chunked message: %+v %v", p, err)
	}
	// And the server takes new clients.
	connect(t, r, "tok-bob")
}

func TestMaxConnectionsZeroMeansNoBound(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, nil)
	for range 20 {
		if status, _, _ := pollingHandshake(t, r.url); status != http.StatusOK {
			t.Fatalf("handshake refused without a bound: %d", status)
		}
	}
}
