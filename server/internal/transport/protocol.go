package transport

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/engine.io/v2/engine"
)

// Protocol conformance. The sessions of this package speak Engine.IO v4 and
// carry Socket.IO v5 packets for the dependency's Socket.IO server; seven
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
//  6. The dependency writes a namespace's CONNECT answer before it records the
//     socket as the client's socket of that namespace, and hands each packet
//     of the client to the namespace on a goroutine of the connection's
//     reader. A client answers CONNECT at once with the events it buffered
//     (socket.io-client does); when such an event is decoded before the
//     socket is recorded, the dependency takes it for a protocol violation
//     and closes the whole connection. Node cannot interleave the two. The
//     session holds the client's messages from the CONNECT answer until the
//     namespace reports the socket recorded (SocketReady, from its
//     "connection" listener), or at most connectSettleTimeout
//     (session.awaitSockets).
//  7. The dependency hands each EVENT of a client to its socket on a new
//     goroutine, so the socket's listeners can see two events in the opposite
//     order to the one they were sent in (Node keeps the order; with two
//     events in one read, the Go scheduler runs the newer goroutine first
//     more often than not). For a namespace that asks for it (KeepOrder), the
//     session hands over the next message only once the previous EVENT has
//     reached the socket's catch-all listeners (EventTaken, called by the
//     last of them), or after at most eventTakenTimeout
//     (session.awaitTaken). Handlers registered with On for one event name
//     still run on goroutines of their own, as the dependency runs them; the
//     catch-all listeners see every event in order. An EVENT with binary
//     attachments is not waited for.

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
	heldForConnect      atomic.Uint64
	connectSettleLate   atomic.Uint64
	eventsInOrder       atomic.Uint64
	eventTakenLate      atomic.Uint64
)

// probeSettleTimeout bounds how long a polling request waits for the reader of
// a WebSocket being probed (correction 4). The reader only has to handle bytes
// that have already arrived, so it takes microseconds unless the process is
// starved.
const probeSettleTimeout = time.Second

// connectSettleTimeout bounds how long the client's messages wait for a
// connecting socket (correction 6). The namespace records the socket right
// after it writes the answer, so the wait takes microseconds; a namespace
// that never calls SocketReady costs its first messages this long, once.
const connectSettleTimeout = time.Second

// eventTakenTimeout bounds how long the next message of a client waits for
// the previous EVENT to reach its socket's listeners (correction 7): a
// goroutine start, unless the process is starved.
const eventTakenTimeout = time.Second

// SocketReady tells c, the engine connection of a Socket.IO socket of
// namespace nsp (its Conn() and its Nsp().Name()), that the namespace has
// recorded the socket: the client's messages held since that namespace's
// CONNECT answer go on (correction 6 of protocol.go). Call it from the
// namespace's "connection" listener; realtime.Server does for each of its
// namespaces. It is idempotent, and does nothing for connections of other
// packages.
func SocketReady(c engine.Socket, nsp string) {
	if s, ok := c.(*session); ok {
		s.socketReady(nsp)
	}
}

// connectNamespace returns the namespace of the Socket.IO CONNECT packet b
// ("0", "0{...}", "0/admin,{...}").
func connectNamespace(b []byte) string {
	if len(b) < 2 || b[1] != '/' {
		return "/"
	}
	if i := bytes.IndexByte(b, ','); i > 0 {
		return string(b[1:i])
	}
	return string(b[1:])
}

// Test hooks of correction 6 (nil outside tests): afterConnectAnswer runs
// after a CONNECT answer was written, onHold when a message of the client
// starts to wait.
var afterConnectAnswer, onHold atomic.Pointer[func()]

// holdForSocket starts holding the client's messages until the socket of
// namespace nsp, whose CONNECT answer is being written, is recorded
// (correction 6).
func (s *session) holdForSocket(nsp string) {
	if !fixesOn.Load() {
		return
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if slices.Contains(s.connecting, nsp) {
		return
	}
	if len(s.connecting) == 0 {
		ch := make(chan struct{})
		s.connWait.Store(&ch)
	}
	s.connecting = append(s.connecting, nsp)
}

// socketReady counts the socket of nsp as recorded; the messages go on once
// no socket is connecting.
func (s *session) socketReady(nsp string) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	i := slices.Index(s.connecting, nsp)
	if i < 0 {
		return
	}
	if s.connecting = slices.Delete(s.connecting, i, i+1); len(s.connecting) == 0 {
		s.releaseLocked()
	}
}

func (s *session) releaseLocked() {
	if ch := s.connWait.Swap(nil); ch != nil {
		close(*ch)
	}
	s.connecting = nil
}

// awaitSockets waits, before a message of the client is handed over, until
// no socket of the session is connecting (correction 6); it gives up after
// connectSettleTimeout and lets every message through from then on.
func (s *session) awaitSockets() {
	ch := s.connWait.Load()
	if ch == nil {
		return
	}
	heldForConnect.Add(1)
	if h := onHold.Load(); h != nil {
		(*h)()
	}
	t := time.NewTimer(connectSettleTimeout)
	defer t.Stop()
	select {
	case <-*ch:
	case <-t.C:
		connectSettleLate.Add(1)
		s.connMu.Lock()
		if s.connWait.Load() == ch {
			s.releaseLocked()
		}
		s.connMu.Unlock()
	}
}

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
			s.holdForSocket(connectNamespace(b))
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

// KeepOrder makes the session of c (the engine connection of a socket of
// namespace nsp) hand the client's events of nsp to Socket.IO one at a time,
// each once the previous one has reached the socket's catch-all listeners
// (correction 7 of protocol.go). The socket's last catch-all listener must
// call EventTaken; realtime.Server registers both for each of its
// namespaces. Call it before the client's first event can arrive: before
// SocketReady. It does nothing for connections of other packages.
func KeepOrder(c engine.Socket, nsp string) {
	s, ok := c.(*session)
	if !ok || !fixesOn.Load() {
		return
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if slices.Contains(s.ordered, nsp) {
		return
	}
	s.ordered = append(s.ordered, nsp)
	if s.taken.Load() == nil {
		ch := make(chan struct{}, 1)
		s.taken.Store(&ch)
	}
}

// EventTaken tells the session of c that an event of one of its KeepOrder
// namespaces has reached the socket's catch-all listeners: the next message
// may go on.
func EventTaken(c engine.Socket) {
	if s, ok := c.(*session); ok {
		s.signalTaken()
	}
}

func (s *session) signalTaken() {
	if ch := s.taken.Load(); ch != nil {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

// orderedEvent returns the channel to wait on after handing over the
// Socket.IO packet b, when b is an EVENT of a namespace that keeps its order
// (correction 7), else nil. A signal left from an earlier wait that gave up
// is dropped.
func (s *session) orderedEvent(b []byte) chan struct{} {
	if len(b) == 0 || b[0] != '2' {
		return nil
	}
	p := s.taken.Load()
	if p == nil {
		return nil
	}
	nsp := "/"
	if len(b) > 1 && b[1] == '/' {
		end := bytes.IndexByte(b, ',')
		if end < 0 {
			end = len(b)
		}
		nsp = string(b[1:end])
	}
	s.connMu.Lock()
	ok := slices.Contains(s.ordered, nsp)
	s.connMu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-*p:
	default:
	}
	return *p
}

// awaitTaken waits until the EVENT just handed over has reached its socket's
// listeners, the session closed, or eventTakenTimeout passed.
func (s *session) awaitTaken(ch chan struct{}) {
	eventsInOrder.Add(1)
	select {
	case <-ch:
		return
	default:
	}
	t := time.NewTimer(eventTakenTimeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		eventTakenLate.Add(1)
	}
}
