package transport

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/engine.io/v2/engine"
)

// Protocol conformance. The sessions of this package speak Engine.IO v4 and
// carry Socket.IO v5 packets for the dependency's Socket.IO server; five
// behaviours differ from the specs and from the Node reference (socket.io 4.8,
// engine.io 6) unless corrected here. Each correction is counted (see Stats):
//
//  1. A Socket.IO CONNECT without a payload ("40", "40/admin,") reaches the
//     dependency's Socket.IO server as is, which then hands its middlewares and
//     handlers a handshake auth of nil; Node's is an empty object. The session
//     gives such a CONNECT the payload "{}" (withEmptyAuth).
//  2. On HTTP long-polling, a CLOSE packet sent by the client ends the session,
//     and a GET then waiting is answered with NOOP, as the spec says; closes
//     decided by the server (ping timeout, overlapping polls) answer it with
//     CLOSE (session.clientClose).
//  3. A WebSocket opened with the sid of a session that already upgraded (or is
//     probing another WebSocket) is accepted and then closed, as the spec and
//     Node do, instead of being refused with HTTP 400
//     (session.serveWebSocketUpgrade).
//  4. A polling request that arrives while the session probes a WebSocket first
//     lets that WebSocket's reader handle what the client has already sent on
//     it: the client sends the UPGRADE packet before any polling request that
//     follows it, so such a request is then answered 400 (the session has
//     upgraded) every time, instead of being served when its goroutine happens
//     to run before the reader's (session.settleProbe).
//  5. A CONNECT_ERROR the dependency writes as {"data":null,"message":...} (a
//     middleware's error without data) is written {"message":...}, as Node
//     writes an error whose data is undefined (trimNullData); and a session
//     whose only namespaces were refused, with no CONNECT pending, is closed
//     right after the refusal instead of staying open, answering pings, until
//     Socket.IO's connect timeout (session.afterRefusal).

// fixesOn turns the corrections above on; tests turn them off to show that the
// behaviour they correct is real.
var fixesOn atomic.Bool

func init() { fixesOn.Store(true) }

// The counters of the corrections (see Stats).
var (
	emptyAuthConnects   atomic.Uint64
	clientCloseNoops    atomic.Uint64
	closedExtraUpgrades atomic.Uint64
	pollsHeldForUpgrade atomic.Uint64
	trimmedErrorData    atomic.Uint64
	closedRefused       atomic.Uint64
)

// probeSettleTimeout bounds how long a polling request waits for the reader of
// a WebSocket being probed (correction 4). The reader only has to handle bytes
// that have already arrived, so it takes microseconds unless the process is
// starved.
const probeSettleTimeout = time.Second

// withEmptyAuth returns the Socket.IO packet b (an engine.io message) with the
// payload "{}" when it is a CONNECT without one (correction 1), and b itself
// otherwise. It never changes b in place.
func withEmptyAuth(b []byte) []byte {
	if len(b) == 0 || b[0] != '0' || !fixesOn.Load() {
		return b
	}
	var out []byte
	switch rest := b[1:]; {
	case len(rest) == 0:
		out = []byte("0{}")
	case rest[0] != '/':
		return b // "0{...}": it has a payload
	default:
		i := bytes.IndexByte(rest, ',')
		switch {
		case i < 0: // "0/admin"
			out = append(append(make([]byte, 0, len(b)+3), b...), ",{}"...)
		case i == len(rest)-1: // "0/admin,"
			out = append(append(make([]byte, 0, len(b)+2), b...), "{}"...)
		default:
			return b
		}
	}
	emptyAuthConnects.Add(1)
	return out
}

// nullData is how the dependency starts a CONNECT_ERROR payload whose data is
// nil (its JSON encoding sorts the keys).
var nullData = []byte(`{"data":null,`)

// trimNullData returns the Socket.IO CONNECT_ERROR packet b ("4", an optional
// "/nsp,", a JSON object) without its "data":null member (correction 5), and b
// itself when it has none.
func trimNullData(b []byte) []byte {
	if !fixesOn.Load() {
		return b
	}
	i := 1
	if len(b) > 1 && b[1] == '/' {
		j := bytes.IndexByte(b, ',')
		if j < 0 {
			return b
		}
		i = j + 1
	}
	if !bytes.HasPrefix(b[i:], nullData) {
		return b
	}
	out := make([]byte, 0, len(b)-len(nullData)+1)
	out = append(out, b[:i]...)
	out = append(out, '{')
	out = append(out, b[i+len(nullData):]...)
	trimmedErrorData.Add(1)
	return out
}

// onClientPacket keeps count of the namespaces the client asks for (CONNECT)
// and leaves (DISCONNECT), for afterRefusal. b is a Socket.IO packet.
func (s *session) onClientPacket(b []byte) {
	switch b[0] {
	case '0':
		s.sioPending.Add(1)
	case '1':
		if s.sioConnected.Add(-1) < 0 {
			s.sioConnected.Store(0) // a DISCONNECT for a namespace it had not joined
		}
	}
}

// onServerPacket keeps the same count for the Socket.IO packets the server
// writes (b, text): a CONNECT answers a pending CONNECT with success, a
// CONNECT_ERROR with a refusal (it reports true then), a DISCONNECT ends a
// namespace. Only answers to a CONNECT of the client count.
func (s *session) onServerPacket(b []byte) (refused bool) {
	switch b[0] {
	case '0':
		if s.answered() {
			s.sioConnected.Add(1)
		}
	case '1':
		if s.sioConnected.Add(-1) < 0 {
			s.sioConnected.Store(0)
		}
	case '4':
		return s.answered()
	}
	return false
}

// answered counts the answer to a pending CONNECT, if there is one.
func (s *session) answered() bool {
	for {
		n := s.sioPending.Load()
		if n <= 0 {
			return false
		}
		if s.sioPending.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// plainEngines are the engines marked by PlainEngine.
var plainEngines sync.Map // engine.BaseServer -> struct{}

// PlainEngine marks eng as an engine that carries no Socket.IO (an Engine.IO
// application): the corrections of Socket.IO packets (1 and 5 of protocol.go)
// are not applied to its sessions, whose messages are then passed on exactly as
// they came. Call it before eng serves a request.
func PlainEngine(eng engine.BaseServer) { plainEngines.Store(eng, struct{}{}) }

// afterRefusal runs after a CONNECT_ERROR was handed to the connection: when no
// namespace is connected and no CONNECT is pending, the session has nothing
// left to do and is closed (correction 5). On a WebSocket the close frame
// follows the refusal; on polling, the GET that takes the refusal gets CLOSE
// after it (or the next GET, when one took the refusal already), and the
// session is closed after pingTimeout if no GET comes.
func (s *session) afterRefusal() {
	if !fixesOn.Load() || s.sioPending.Load() > 0 || s.sioConnected.Load() > 0 || s.state.Load() != stateOpen {
		return
	}
	closedRefused.Add(1)
	// Not on the caller's goroutine: Socket.IO is in the middle of writing,
	// and the session's close calls back into it.
	go func() {
		s.mu.Lock()
		if p := s.poll; p != nil {
			// The GET that takes the refusal (or, when one already took it,
			// the next) carries CLOSE after it.
			p.closeAfterPoll = true
			if p.waiting {
				select {
				case p.wake <- struct{}{}:
				default:
				}
			}
			s.mu.Unlock()
			time.AfterFunc(s.pingTimeout, func() { s.Close(false) })
			return
		}
		s.mu.Unlock()
		s.Close(false)
	}()
}

// clientClose ends the session after the client's CLOSE packet: a GET waiting
// on polling is answered with NOOP, not CLOSE (correction 2).
func (s *session) clientClose() {
	if fixesOn.Load() {
		s.mu.Lock()
		if p := s.poll; p != nil {
			p.clientClosed = true
			if p.waiting {
				p.add(eioNoop, nil)
				clientCloseNoops.Add(1)
			}
		}
		s.mu.Unlock()
	}
	s.onClose("transport close", nil)
}

// settleProbe makes a polling request wait, while the session probes a
// WebSocket, until that WebSocket's reader has handled every byte the client
// had sent on it when the request came (correction 4). It returns at once when
// there is no probe, when nothing is unread, or where unread input cannot be
// seen (no file descriptor, no poller).
func (s *session) settleProbe() {
	if !fixesOn.Load() {
		return
	}
	s.mu.Lock()
	up := s.probe
	s.mu.Unlock()
	if up == nil {
		return
	}
	var deadline *time.Timer
	for {
		s.mu.Lock()
		if s.probe != up {
			s.mu.Unlock()
			break // switched over, or given up
		}
		if s.probeWake == nil {
			s.probeWake = make(chan struct{})
		}
		wake := s.probeWake
		s.mu.Unlock()
		if !up.unreadInput() {
			break
		}
		if deadline == nil {
			pollsHeldForUpgrade.Add(1)
			deadline = time.NewTimer(probeSettleTimeout)
			defer deadline.Stop()
		}
		select {
		case <-wake:
		case <-deadline.C:
			return
		}
	}
}

// wakeProbeWaiters wakes the requests waiting in settleProbe.
func (s *session) wakeProbeWaiters() {
	s.mu.Lock()
	if s.probeWake != nil {
		close(s.probeWake)
		s.probeWake = nil
	}
	s.mu.Unlock()
}

// unreadInput reports whether the connection has input its reader has not
// handled yet: bytes in the kernel's receive buffer, or a read in progress.
// Where that cannot be known it reports false.
func (c *wsConn) unreadInput() bool {
	n, ok := c.unreadBytes()
	if !ok {
		return false
	}
	// Looked at after the buffer: a read that took the bytes is still marked
	// busy until it has handled them.
	return n > 0 || c.busy.Load()
}
