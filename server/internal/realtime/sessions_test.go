package realtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/redistest"
)

// TestSilentSessionsDoNotHoldPlaces: sessions that never send CONNECT do not
// count under MaxConnections, and are closed after ConnectTimeout; a client
// with a valid token connects while they are there.
func TestSilentSessionsDoNotHoldPlaces(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxConnections = 2
		c.ConnectTimeout = 2 * time.Second
		c.Observer = obs
	})
	var silent []*eiotest.Conn
	for range 10 {
		silent = append(silent, dial(t, r.url, nil))
	}
	// A session is counted once the engine reports it, which may be just
	// after its client has the open packet.
	testwait.For(t, 5*time.Second, "10 unauthenticated sessions", func() bool { return r.srv.Stats().Unauthenticated == 10 })
	connect(t, r, "tok-alice")
	connect(t, r, "tok-bob")
	// The server is full of authenticated clients now.
	if status, _, body := pollingHandshake(t, r.url); status != http.StatusServiceUnavailable || !strings.Contains(body, "server full") {
		t.Fatalf("handshake on a full server: %d %s", status, body)
	}
	// Every silent session is closed by the server.
	for i, c := range silent {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("silent session %d still open", i)
		}
	}
	testwait.For(t, 5*time.Second, "no unauthenticated sessions", func() bool { return r.srv.Stats().Unauthenticated == 0 })
}

// TestUnauthenticatedBound: sessions without an authenticated socket have a
// bound of their own.
func TestUnauthenticatedBound(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxUnauthenticated = 3
		c.Observer = obs
	})
	for range 3 {
		dial(t, r.url, nil)
	}
	status, h, body := pollingHandshake(t, r.url)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "server busy") {
		t.Fatalf("handshake beyond the bound: %d %v %s", status, h, body)
	}
	if obs.count(realtime.RefusedUnauthenticatedFull) != 1 {
		t.Fatalf("refusal not counted: %v", obs.n)
	}
}

// TestMaxConnectionsPerIP: one address has at most MaxConnectionsPerIP
// sessions; behind a trusted proxy the address is the last X-Forwarded-For
// entry, and what the client wrote before it is not believed.
func TestMaxConnectionsPerIP(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxConnectionsPerIP = 2
		c.Observer = obs
	})
	dial(t, r.url, nil)
	connect(t, r, "tok-alice")
	status, _, body := pollingHandshake(t, r.url)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "too many connections from this address") {
		t.Fatalf("third session of an address: %d %s", status, body)
	}
	// Without TrustProxy, X-Forwarded-For changes nothing.
	if status, _, _ := pollingHandshake(t, r.url, "X-Forwarded-For", "203.0.113.9"); status != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For believed without TrustProxy: %d", status)
	}
	if obs.count(realtime.RefusedPerIP) != 2 {
		t.Fatalf("refusals: %v", obs.n)
	}

	p := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxConnectionsPerIP = 1
		c.TrustProxy = true
	})
	if status, _, _ := pollingHandshake(t, p.url, "X-Forwarded-For", "203.0.113.9"); status != http.StatusOK {
		t.Fatalf("first session of 203.0.113.9: %d", status)
	}
	if status, _, _ := pollingHandshake(t, p.url, "X-Forwarded-For", "198.51.100.1, 203.0.113.9"); status != http.StatusTooManyRequests {
		t.Fatalf("second session of 203.0.113.9 (a forged first entry): %d", status)
	}
	if status, _, _ := pollingHandshake(t, p.url, "X-Forwarded-For", "203.0.113.10"); status != http.StatusOK {
		t.Fatalf("first session of 203.0.113.10: %d", status)
	}
}

// TestMaxSocketsPerIdentity: an identity has at most MaxSocketsPerIdentity
// connections; another identity is not affected, and a place comes back when
// a connection closes.
func TestMaxSocketsPerIdentity(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	r := newReplica(t, redistest.Start(t).Addr, func(c *realtime.Config) {
		c.MaxSocketsPerIdentity = 2
		c.Observer = obs
	})
	a1, _ := connect(t, r, "tok-alice")
	connect(t, r, "tok-alice")
	c := dial(t, r.url, nil)
	_, err := c.Connect(ctxT(t, 5*time.Second), map[string]any{"token": "tok-alice"})
	var ce *eiotest.ConnectError
	if !errors.As(err, &ce) || ce.Message != realtime.ErrTooManySockets {
		t.Fatalf("third socket of alice: %v", err)
	}
	if obs.count(realtime.RefusedPerIdentity) != 1 {
		t.Fatalf("refusals: %v", obs.n)
	}
	connect(t, r, "tok-bob")
	a1.Close()
	testwait.For(t, 5*time.Second, "alice's closed connection to be forgotten", func() bool { return r.srv.Stats().Sockets == 2 })
	connect(t, r, "tok-alice")
}

// TestFastConnectCloseLeavesNoSocket: clients that close their connection
// right after sending CONNECT leave no socket behind. zishang520's namespace
// adds a socket after its middlewares ran even when the client closed
// meanwhile, and nothing removes it then; the server's own account of its
// sessions does.
func TestFastConnectCloseLeavesNoSocket(t *testing.T) {
	r := newReplica(t, redistest.Start(t).Addr, nil)
	auth, _ := json.Marshal(map[string]any{"token": "tok-alice"})
	const workers, cycles = 8, 150
	// Room changes of a busy server, meanwhile: the namespace's connect of a
	// socket joins the socket's own room, and waits for them. That widens the
	// moment between its "client still open?" check and its adding the
	// socket, in which a client's close left the socket in the namespace.
	adapter := r.srv.IO().Sockets().Adapter()
	rooms := types.NewSet[socket.Room]()
	for i := range 2000 {
		rooms.Add(socket.Room(fmt.Sprintf("busy-%d", i)))
	}
	stop := make(chan struct{})
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			adapter.AddAll("busy-socket", rooms)
			adapter.DelAll("busy-socket")
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cycles {
				c, err := eiotest.DialWebSocket(ctxT(t, 5*time.Second), r.url, nil)
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.SendRaw("40" + string(auth))
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-busyDone
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.srv.Stats()
		if st.Sockets == 0 && st.Orphaned == 0 && st.Unauthenticated == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d fast connect/close cycles: %d sockets (%d without a connection), %d unauthenticated sessions",
				workers*cycles, st.Sockets, st.Orphaned, st.Unauthenticated)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
