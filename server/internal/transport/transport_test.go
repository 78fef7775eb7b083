package transport_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	"github.com/zishang520/engine.io-go-parser/packet"
	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/transport"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
)

// Run with -args -unfixed to run the same tests against the dependency's own
// transports: the regression tests below must then fail.
var unfixed = flag.Bool("unfixed", false, "do not install our transports (the regression tests must fail)")

// installed is whether Install took effect, checked before the test wrapper below.
var installed bool

// holdHeader makes the fault-injecting websocket builder hold a new upgrade
// transport (see TestMain).
const holdHeader = "X-Test-Hold-Upgrade"

// holdWindow is how long fault injection keeps a gap open. It is not a
// synchronisation delay: the injected code waits for a packet to arrive in the gap
// and gives up after holdWindow when (as with our transports) none can.
const holdWindow = 300 * time.Millisecond

func TestMain(m *testing.M) {
	flag.Parse()
	if !*unfixed {
		transport.Install()
	} else {
		transport.SetFixes(false)
	}
	installed = transport.Installed()
	// Fault injection for the upgrade path: between the creation of the upgrade
	// transport (its reader may already run) and the engine attaching its
	// listeners (MaybeUpgrade), wait until the transport reads a packet. Set up
	// once, before any engine runs, like Install.
	table := transports.Transports()
	table[transports.WEBSOCKET] = holdingBuilder{TransportCtor: table[transports.WEBSOCKET]}
	os.Exit(m.Run())
}

type holdingBuilder struct{ transports.TransportCtor }

func (b holdingBuilder) New(ctx *types.HttpContext) transports.Transport {
	t := b.TransportCtor.New(ctx)
	if ctx.Headers().Peek(holdHeader) != "" && ctx.Query().Has("sid") {
		awaitPacket(t, holdWindow)
	}
	return t
}

// awaitPacket waits until e emits a "packet" event or d passes.
func awaitPacket(e types.EventEmitter, d time.Duration) {
	got := make(chan struct{}, 1)
	l := func(...any) {
		select {
		case got <- struct{}{}:
		default:
		}
	}
	_ = e.On("packet", l)
	defer e.RemoveListener("packet", l)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-got:
	case <-t.C:
	}
}

// awaitMessage is an engine "connection" listener that keeps the gap between the
// open packet and Socket.IO's listeners open until the engine socket received a
// MESSAGE packet (the client's CONNECT), or holdWindow passed.
func awaitMessage(args ...any) {
	s := args[0].(engine.Socket)
	got := make(chan struct{}, 1)
	l := func(a ...any) {
		if p, ok := a[0].(*packet.Packet); ok && p.Type == packet.MESSAGE {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}
	_ = s.On("packet", l)
	defer s.RemoveListener("packet", l)
	t := time.NewTimer(holdWindow)
	defer t.Stop()
	select {
	case <-got:
	case <-t.C:
	}
}

// flushThenAwaitMessage is awaitMessage for polling. net/http keeps the
// handshake response (the open packet) in its buffer until the handler returns,
// which happens to hide the gap; a stack that flushes early (a proxy-aware
// middleware, another HTTP implementation) exposes it. This listener flushes the
// open packet to the client as soon as the engine wrote it, then holds the gap.
func flushThenAwaitMessage(args ...any) {
	req := args[0].(engine.Socket).Request()
	t := time.NewTimer(holdWindow)
	defer t.Stop()
	select {
	case <-req.Done():
		if f, ok := req.Response().(http.Flusher); ok {
			f.Flush()
		}
	case <-t.C:
	}
	awaitMessage(args...)
}

type testServer struct {
	io  *socket.Server
	url string
}

// newServer starts a Socket.IO server behind transport.Handler. Sockets join
// "room" in a middleware, before their connect reply. beforeSocketIO, when set, is
// an engine "connection" listener registered before Socket.IO's own.
func newServer(t *testing.T, beforeSocketIO func(...any)) *testServer {
	t.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPath("/socket.io")
	io := socket.NewServer(nil, opts)
	eio := engine.NewServer(opts)
	if beforeSocketIO != nil {
		_ = eio.On("connection", beforeSocketIO)
	}
	io.Bind(eio)
	io.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		s.Join("room")
		next(nil)
	})
	srv := httptest.NewServer(transport.Handler(eio))
	t.Cleanup(func() {
		io.Close(nil)
		srv.Close()
	})
	return &testServer{io: io, url: srv.URL + "/socket.io/"}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestInstalled(t *testing.T) {
	if *unfixed {
		t.Skip("unfixed run")
	}
	if !installed {
		t.Fatal("Install did not replace the engine's transports")
	}
}

// TestBroadcastBatchArrivesWhole is the regression test for the dependency's
// websocket send, which writes the first pre-encoded broadcast frame of a batch and
// drops the rest.
func TestBroadcastBatchArrivesWhole(t *testing.T) {
	srv := newServer(t, nil)
	const n = 2000
	for _, mode := range []string{"websocket", "upgrade", "polling"} {
		t.Run(mode, func(t *testing.T) {
			c := dial(t, srv.url, mode, nil)
			if _, err := c.Connect(ctxT(t, 5*time.Second), nil); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if err := srv.io.To("room").Emit("n", i, strings.Repeat("x", 64)); err != nil {
					t.Fatal(err)
				}
			}
			ctx := ctxT(t, 10*time.Second)
			for i := range n {
				p, err := c.NextEvent(ctx)
				if err != nil {
					t.Fatalf("received %d of %d broadcast events: %v", i, n, err)
				}
				var got int
				if err := json.Unmarshal(p.Args()[0], &got); err != nil || got != i {
					t.Fatalf("event %d: got %s (%v), want %d in order", i, p.Data, err, i)
				}
			}
			c.Close()
		})
	}
}

func dial(t *testing.T, url, mode string, opts *eiotest.Options) *eiotest.Conn {
	t.Helper()
	ctx := ctxT(t, 5*time.Second)
	var c *eiotest.Conn
	var err error
	switch mode {
	case "websocket":
		c, err = eiotest.DialWebSocket(ctx, url, opts)
	case "polling", "upgrade":
		c, err = eiotest.DialPolling(ctx, url, opts)
		if err == nil && mode == "upgrade" {
			err = c.Upgrade(ctx)
		}
	default:
		t.Fatalf("mode %q", mode)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", mode, err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestConnectReplyNeverLost is the regression test for the gap between the open
// packet and Socket.IO's listeners: fault injection holds the gap open until the
// client's CONNECT reached the engine, and the client must still get its reply.
func TestConnectReplyNeverLost(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		srv := newServer(t, awaitMessage)
		c := dial(t, srv.url, "websocket", nil)
		if _, err := c.Connect(ctxT(t, 3*time.Second), nil); err != nil {
			t.Fatalf("connect over websocket: %v", err)
		}
	})
	t.Run("polling", func(t *testing.T) {
		srv := newServer(t, flushThenAwaitMessage)
		// A connection per request, as an HTTP/2 client or a proxy's pool would
		// do: a kept-alive HTTP/1.1 connection would hold the POST back until the
		// handshake handler returned.
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		c := dial(t, srv.url, "polling", &eiotest.Options{HTTPClient: hc})
		if _, err := c.Connect(ctxT(t, 3*time.Second), nil); err != nil {
			t.Fatalf("connect over polling: %v", err)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		srv := newServer(t, nil)
		opts := &eiotest.Options{Header: map[string][]string{holdHeader: {"1"}}}
		ctx := ctxT(t, 3*time.Second)
		c, err := eiotest.DialPolling(ctx, srv.url, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.Upgrade(ctx); err != nil {
			t.Fatalf("upgrade (the probe must not be lost): %v", err)
		}
		if _, err := c.Connect(ctx, nil); err != nil {
			t.Fatalf("connect after upgrade: %v", err)
		}
		if err := srv.io.To("room").Emit("after-upgrade", 1); err != nil {
			t.Fatal(err)
		}
		p, err := c.NextEvent(ctx)
		if err != nil || p.EventName() != "after-upgrade" {
			t.Fatalf("event after upgrade: %v %v", p.EventName(), err)
		}
	})
}

// TestManyConnects connects many clients at once over every transport; each must
// get its connect reply.
func TestManyConnects(t *testing.T) {
	srv := newServer(t, nil)
	const n = 60
	modes := []string{"websocket", "polling", "upgrade"}
	errs := make(chan error, n)
	for i := range n {
		mode := modes[i%len(modes)]
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var c *eiotest.Conn
			var err error
			if mode == "websocket" {
				c, err = eiotest.DialWebSocket(ctx, srv.url, nil)
			} else {
				c, err = eiotest.DialPolling(ctx, srv.url, nil)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", mode, err)
				return
			}
			defer c.Close()
			if _, err = c.Connect(ctx, nil); err != nil {
				errs <- fmt.Errorf("%s connect: %w", mode, err)
				return
			}
			if mode == "upgrade" {
				if err := c.Upgrade(ctx); err != nil {
					errs <- fmt.Errorf("upgrade: %w", err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// Every client closed its session itself; wait until the server saw it,
	// so that the server's own close at cleanup does not race a session in the
	// middle of its upgrade (a known data race of the engine's upgrade code).
	testwait.For(t, 5*time.Second, "the server to see every session closed", func() bool { return srv.io.Engine().ClientsCount() == 0 })
}

// TestGateTimeoutsStayZero: sessions on every transport, each connected, open
// every gate they wait for. It counts the timeouts of its own sessions (the
// counter is the process's), so it holds whatever ran before it.
func TestGateTimeoutsStayZero(t *testing.T) {
	if *unfixed {
		t.Skip("unfixed run")
	}
	srv := newServer(t, nil)
	before := transport.ReadStats().GateTimeouts
	for _, mode := range []string{"websocket", "polling", "upgrade", "websocket", "polling", "upgrade"} {
		c := dial(t, srv.url, mode, nil)
		if _, err := c.Connect(ctxT(t, 5*time.Second), nil); err != nil {
			t.Fatalf("connect over %s: %v", mode, err)
		}
	}
	if got := transport.ReadStats().GateTimeouts - before; got != 0 {
		t.Fatalf("GateTimeouts +%d, want +0: a gate was never opened", got)
	}
}

// TestEnginePanicClosesOnlyThatConnection injects a panic into the engine's
// handling of one websocket message: the connection closes, the server lives on.
func TestEnginePanicClosesOnlyThatConnection(t *testing.T) {
	if *unfixed {
		t.Skip("the dependency's reader does not recover: this would kill the test binary")
	}
	srv := newServer(t, func(args ...any) {
		_ = args[0].(engine.Socket).On("packet", func(a ...any) {
			if p, ok := a[0].(*packet.Packet); ok && p.Type == packet.MESSAGE {
				if b, ok := p.Data.(*types.StringBuffer); ok && b.String() == "boom" {
					panic("injected")
				}
			}
		})
	})
	before := transport.ReadStats().ReadPanics
	victim := dial(t, srv.url, "websocket", nil)
	if err := victim.SendRaw("4boom"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.Done():
	case <-ctxT(t, 5*time.Second).Done():
		t.Fatal("connection not closed after a panic")
	}
	if got := transport.ReadStats().ReadPanics; got != before+1 {
		t.Fatalf("ReadPanics = %d, want %d", got, before+1)
	}
	other := dial(t, srv.url, "websocket", nil)
	if _, err := other.Connect(ctxT(t, 5*time.Second), nil); err != nil {
		t.Fatalf("server unusable after a recovered panic: %v", err)
	}
}

// TestPollingBurstsNeverEmpty sends events in bursts of two, the second while
// the poll woken by the first is being answered, again and again: every poll
// must carry packets (a poll answered empty is a parse error for the JS
// client, which then closes the session) and every event must arrive in order.
func TestPollingBurstsNeverEmpty(t *testing.T) {
	srv := newServer(t, nil)
	c := dial(t, srv.url, "polling", nil)
	if _, err := c.Connect(ctxT(t, 5*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	const bursts = 300
	go func() {
		for i := range bursts {
			_ = srv.io.To("room").Emit("n", 2*i)
			_ = srv.io.To("room").Emit("n", 2*i+1)
			time.Sleep(200 * time.Microsecond) // not a synchronisation: the bursts' spacing
		}
	}()
	ctx := ctxT(t, 20*time.Second)
	for i := range 2 * bursts {
		p, err := c.NextEvent(ctx)
		if err != nil {
			t.Fatalf("event %d of %d: %v", i, 2*bursts, err)
		}
		var got int
		if err := json.Unmarshal(p.Args()[0], &got); err != nil || got != i {
			t.Fatalf("event %d: got %s, want %d in order", i, p.Data, i)
		}
	}
}
