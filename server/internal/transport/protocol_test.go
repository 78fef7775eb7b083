package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	"github.com/gorilla/websocket"
	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/transport"
)

// The regression tests of the protocol corrections (see protocol.go). Each
// fails with -args -unfixed, which turns the corrections off.

// protoServer is a Socket.IO server behind transport.Handler that reports the
// handshake auth of every socket of "/" and "/custom" (whose event "echo"
// acknowledges its arguments), and refuses every
// socket of "/refused" with the error "unauthorized" (without data).
type protoServer struct {
	io    *socket.Server
	eng   engine.BaseServer
	base  string // http://host:port/socket.io/
	auths chan any
}

func newProtoServer(t *testing.T) *protoServer {
	t.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPath("/socket.io")
	io := socket.NewServer(nil, opts)
	eio := engine.NewServer(opts)
	io.Bind(eio)
	ps := &protoServer{io: io, eng: eio, auths: make(chan any, 16)}
	report := func(a ...any) {
		sock := a[0].(*socket.Socket)
		_ = sock.On("echo", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
		transport.SocketReady(sock.Conn(), sock.Nsp().Name())
		ps.auths <- sock.Handshake().Auth
	}
	_ = io.On("connection", report)
	_ = io.Of("/custom", nil).On("connection", report)
	io.Of("/refused", nil).Use(func(_ *socket.Socket, next func(*socket.ExtendedError)) {
		next(socket.NewExtendedError("unauthorized", nil))
	})
	srv := httptest.NewServer(transport.Handler(eio))
	t.Cleanup(func() {
		io.Close(nil)
		srv.Close()
	})
	ps.base = srv.URL + "/socket.io/"
	return ps
}

// nextAuth returns the handshake auth of the next socket that connected.
func (ps *protoServer) nextAuth(t *testing.T) any {
	t.Helper()
	select {
	case a := <-ps.auths:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no socket connected")
		return nil
	}
}

func (ps *protoServer) pollURL(sid string) string {
	u := ps.base + "?EIO=4&transport=polling"
	if sid != "" {
		u += "&sid=" + sid
	}
	return u
}

func (ps *protoServer) wsURL(sid string) string {
	u := "ws" + strings.TrimPrefix(ps.base, "http") + "?EIO=4&transport=websocket"
	if sid != "" {
		u += "&sid=" + sid
	}
	return u
}

// httpDo sends one request and returns its status and body.
func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// openPolling makes a polling session and returns its sid.
func openPolling(t *testing.T, ps *protoServer) string {
	t.Helper()
	code, body := httpDo(t, http.MethodGet, ps.pollURL(""), "")
	if code != http.StatusOK || !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	return open.Sid
}

func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, res, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("websocket %s: %v (HTTP %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("read: a binary message %q", b)
	}
	return string(b)
}

func writeText(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// upgrade upgrades polling session sid to a websocket and returns it.
func upgrade(t *testing.T, ps *protoServer, sid string) *websocket.Conn {
	t.Helper()
	ws := dialWS(t, ps.wsURL(sid))
	writeText(t, ws, "2probe")
	if got := readText(t, ws); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	writeText(t, ws, "5")
	return ws
}

// TestConnectWithoutPayloadHasEmptyAuth: a CONNECT without payload gives the
// handshake an empty auth object, like Node, on the main and a custom
// namespace, and a CONNECT with a payload keeps it.
func TestConnectWithoutPayloadHasEmptyAuth(t *testing.T) {
	ps := newProtoServer(t)
	ws := dialWS(t, ps.wsURL(""))
	readText(t, ws) // open
	before := transport.ReadStats().EmptyAuthConnects
	for _, c := range []struct{ send, reply string }{
		{"40", "40{"},
		{"40/custom,", "40/custom,{"},
	} {
		writeText(t, ws, c.send)
		if got := readText(t, ws); !strings.HasPrefix(got, c.reply) {
			t.Fatalf("%s: reply %q", c.send, got)
		}
		auth := ps.nextAuth(t)
		if m, ok := auth.(map[string]any); !ok || len(m) != 0 {
			t.Fatalf("%s: handshake auth %#v, want an empty object", c.send, auth)
		}
	}
	if got := transport.ReadStats().EmptyAuthConnects - before; got != 2 {
		t.Fatalf("EmptyAuthConnects went up by %d, want 2", got)
	}
	ws2 := dialWS(t, ps.wsURL(""))
	readText(t, ws2)
	writeText(t, ws2, `40{"token":"x"}`)
	readText(t, ws2)
	if auth := ps.nextAuth(t); !reflect.DeepEqual(auth, map[string]any{"token": "x"}) {
		t.Fatalf("handshake auth %#v", auth)
	}
}

// TestClientCloseAnswersPendingPollWithNoop: the client's CLOSE, sent while a
// GET waits, makes that GET answer NOOP, and ends the session.
func TestClientCloseAnswersPendingPollWithNoop(t *testing.T) {
	ps := newProtoServer(t)
	sid := openPolling(t, ps)
	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		code, body := httpDo(t, http.MethodGet, ps.pollURL(sid), "")
		got <- answer{code, body}
	}()
	// The GET must be waiting before the CLOSE comes: that is a state of the
	// server, with no event to wait for.
	testwait.For(t, 5*time.Second, "the GET to wait", func() bool { return transport.PollWaiting(ps.eng, sid) })
	if code, body := httpDo(t, http.MethodPost, ps.pollURL(sid), "1"); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST close: %d %q", code, body)
	}
	a := <-got
	if a.code != http.StatusOK || a.body != "6" {
		t.Fatalf("pending GET answered %d %q, want 200 \"6\" (NOOP)", a.code, a.body)
	}
	if code, _ := httpDo(t, http.MethodGet, ps.pollURL(sid), ""); code != http.StatusBadRequest {
		t.Fatalf("GET after close: %d, want 400", code)
	}
}

// TestServerCloseAnswersPendingPollWithClose: a close decided by the server
// (here: the server closing every connection) still answers CLOSE.
func TestServerCloseAnswersPendingPollWithClose(t *testing.T) {
	ps := newProtoServer(t)
	sid := openPolling(t, ps)
	got := make(chan string, 1)
	go func() {
		_, body := httpDo(t, http.MethodGet, ps.pollURL(sid), "")
		got <- body
	}()
	testwait.For(t, 5*time.Second, "the GET to wait", func() bool { return transport.PollWaiting(ps.eng, sid) })
	c, ok := ps.eng.Clients().Load(sid)
	if !ok {
		t.Fatal("no session")
	}
	c.Close(false)
	if body := <-got; body != "1" {
		t.Fatalf("pending GET answered %q, want \"1\" (CLOSE)", body)
	}
}

// TestSecondWebSocketOfUpgradedSessionIsClosed: a websocket opened with the sid
// of a session that already upgraded is accepted, then closed.
func TestSecondWebSocketOfUpgradedSessionIsClosed(t *testing.T) {
	ps := newProtoServer(t)
	sid := openPolling(t, ps)
	first := upgrade(t, ps, sid)
	writeText(t, first, "40")
	if got := readText(t, first); !strings.HasPrefix(got, "40{") {
		t.Fatalf("connect on the upgraded websocket: %q", got)
	}
	before := transport.ReadStats().ClosedExtraUpgrades
	second := dialWS(t, ps.wsURL(sid)) // fails on an HTTP 400
	_, _, err := second.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("second websocket: %v, want a close frame", err)
	}
	if got := transport.ReadStats().ClosedExtraUpgrades - before; got != 1 {
		t.Fatalf("ClosedExtraUpgrades went up by %d, want 1", got)
	}
	// The session itself goes on, on its websocket.
	writeText(t, first, "40/custom,{}")
	if got := readText(t, first); !strings.HasPrefix(got, "40/custom,{") {
		t.Fatalf("session after the second websocket: %q", got)
	}
}

// TestPollingAfterUpgradeIsRefused: a polling request sent right after the
// UPGRADE packet is answered 400, every time.
func TestPollingAfterUpgradeIsRefused(t *testing.T) {
	ps := newProtoServer(t)
	const rounds = 100
	for i := range rounds {
		sid := openPolling(t, ps)
		ws := upgrade(t, ps, sid)
		method, body := http.MethodGet, ""
		if i%2 == 1 {
			method, body = http.MethodPost, "40"
		}
		if code, resp := httpDo(t, method, ps.pollURL(sid), body); code != http.StatusBadRequest {
			t.Fatalf("round %d: %s after the upgrade answered %d %q, want 400", i, method, code, resp)
		}
		ws.Close()
	}
}

// TestRefusalIsNodeShapedAndClosesTheSession: a middleware's refusal without
// data is written {"message":...}, and a session with nothing else connected
// closes right after it, on websocket and on polling.
func TestRefusalIsNodeShapedAndClosesTheSession(t *testing.T) {
	const want = `44/refused,{"message":"unauthorized"}`
	t.Run("websocket", func(t *testing.T) {
		ps := newProtoServer(t)
		ws := dialWS(t, ps.wsURL(""))
		readText(t, ws)
		before := transport.ReadStats()
		writeText(t, ws, "40/refused,")
		if got := readText(t, ws); got != want {
			t.Fatalf("refusal %q, want %q", got, want)
		}
		// Default ping interval 25 s, connect timeout 45 s: only the
		// correction closes it within the read deadline.
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("after the refusal: %v, want a close frame", err)
		}
		after := transport.ReadStats()
		if after.TrimmedErrorData-before.TrimmedErrorData != 1 || after.ClosedRefused-before.ClosedRefused != 1 {
			t.Fatalf("counters: TrimmedErrorData +%d, ClosedRefused +%d, want +1 each",
				after.TrimmedErrorData-before.TrimmedErrorData, after.ClosedRefused-before.ClosedRefused)
		}
	})
	t.Run("polling", func(t *testing.T) {
		ps := newProtoServer(t)
		sid := openPolling(t, ps)
		if code, _ := httpDo(t, http.MethodPost, ps.pollURL(sid), "40/refused,"); code != http.StatusOK {
			t.Fatalf("POST: %d", code)
		}
		var packets []string
		for len(packets) == 0 || packets[len(packets)-1] != "1" {
			code, body := httpDo(t, http.MethodGet, ps.pollURL(sid), "")
			if code != http.StatusOK {
				t.Fatalf("GET after %q: %d %q, want the refusal then CLOSE", packets, code, body)
			}
			packets = append(packets, strings.Split(body, "\x1e")...)
		}
		if packets[0] != want {
			t.Fatalf("packets %q, want %q first", packets, want)
		}
	})
	t.Run("other namespace connected", func(t *testing.T) {
		ps := newProtoServer(t)
		ws := dialWS(t, ps.wsURL(""))
		readText(t, ws)
		writeText(t, ws, "40")
		readText(t, ws)
		writeText(t, ws, "40/refused,")
		if got := readText(t, ws); got != want {
			t.Fatalf("refusal %q", got)
		}
		writeText(t, ws, "40/custom,")
		if got := readText(t, ws); !strings.HasPrefix(got, "40/custom,{") {
			t.Fatalf("the session must stay open for its other namespaces: %q", got)
		}
	})
}

// TestEventRightAfterConnectIsHandled: an event the client sends as soon as it
// has the connect reply, while the dependency has not yet recorded the socket
// it wrote the reply for, is handled instead of closing the connection. The
// hooks hold the goroutine that records the socket until the event has reached
// the server (or, uncorrected, until the connection closed).
func TestEventRightAfterConnectIsHandled(t *testing.T) {
	for _, nsp := range []string{"/", "/custom"} {
		t.Run(nsp, func(t *testing.T) {
			ps := newProtoServer(t)
			closed := make(chan struct{})
			_ = ps.eng.On("connection", func(a ...any) {
				_ = a[0].(engine.Socket).Once("close", func(...any) { close(closed) })
			})
			held := make(chan struct{}, 1)
			transport.SetConnectHooks(func() {
				select {
				case <-held:
				case <-closed:
				case <-time.After(5 * time.Second):
				}
			}, func() { held <- struct{}{} })
			t.Cleanup(func() { transport.SetConnectHooks(nil, nil) })
			before := transport.ReadStats()

			ws := dialWS(t, ps.wsURL(""))
			readText(t, ws)
			prefix := ""
			if nsp != "/" {
				prefix = nsp + ","
			}
			writeText(t, ws, "40"+prefix)
			if got := readText(t, ws); !strings.HasPrefix(got, "40"+prefix+"{") {
				t.Fatalf("connect reply %q", got)
			}
			writeText(t, ws, "42"+prefix+`1["echo","hi"]`)
			if got, want := readText(t, ws), "43"+prefix+`1["hi"]`; got != want {
				t.Fatalf("answer %q, want %q", got, want)
			}
			if after := transport.ReadStats(); after.HeldForConnect == before.HeldForConnect || after.ConnectSettleLate != before.ConnectSettleLate {
				t.Fatalf("counters: HeldForConnect +%d, ConnectSettleLate +%d, want +1 and +0",
					after.HeldForConnect-before.HeldForConnect, after.ConnectSettleLate-before.ConnectSettleLate)
			}
		})
	}
}

// TestEventsReachListenersInOrder: the catch-all listeners of a namespace that
// keeps its order see a burst of events in the order the client sent them
// (the dependency hands each to a goroutine of its own, and without the
// correction a burst of 500 comes out of order).
func TestEventsReachListenersInOrder(t *testing.T) {
	ps := newProtoServer(t)
	const n = 500
	got := make(chan float64, n)
	_ = ps.io.Of("/ordered", nil).On("connection", func(a ...any) {
		sock := a[0].(*socket.Socket)
		conn := sock.Conn()
		transport.KeepOrder(conn, "/ordered")
		sock.OnAny(func(args ...any) {
			if v, ok := args[1].(float64); ok {
				got <- v
			}
		})
		sock.OnAny(func(...any) { transport.EventTaken(conn) })
		transport.SocketReady(conn, "/ordered")
	})
	ws := dialWS(t, ps.wsURL(""))
	readText(t, ws)
	writeText(t, ws, "40/ordered,")
	readText(t, ws)
	before := transport.ReadStats()
	var burst []byte
	for i := range n {
		burst = append(burst, websocketClientFrame(fmt.Sprintf(`42/ordered,["e",%d]`, i))...)
	}
	// One write: the server reads the events together, as it does when a
	// client flushes its buffer.
	if err := ws.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case v := <-got:
			if v != float64(i) {
				t.Fatalf("event %d reached the listeners as number %d", int(v), i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d events of %d arrived", i, n)
		}
	}
	if after := transport.ReadStats(); after.EventsInOrder-before.EventsInOrder != n || after.EventTakenLate != before.EventTakenLate {
		t.Fatalf("counters: EventsInOrder +%d, EventTakenLate +%d, want +%d and +0",
			after.EventsInOrder-before.EventsInOrder, after.EventTakenLate-before.EventTakenLate, n)
	}
}

// websocketClientFrame is s as a client's masked text frame (mask 0).
func websocketClientFrame(s string) []byte {
	f := []byte{0x81}
	switch n := len(s); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, s...)
}
