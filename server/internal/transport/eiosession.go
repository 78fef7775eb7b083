package transport

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/engine.io-go-parser/packet"
	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
)

// A session is an engine.io (protocol 4) session served by this package instead
// of the engine: the engine would give it a socket, transport objects, a
// websocket library's connection with its buffers, the first request kept alive
// for the session's life, event-emitter maps and a goroutine per timer; a
// session is one small object that speaks the protocol itself: the open packet,
// heartbeats (a ping every pingInterval, a pong expected within pingTimeout),
// messages both ways, close, and for sessions that start on HTTP long-polling
// the polling requests and the upgrade to websocket (see eiosession_poll.go). It implements
// engine.Socket, so Socket.IO sees an ordinary engine connection: the engine's
// "connection" event, the session in the engine's client list, "data", "error",
// "close" (and "upgrading", "upgrade", "packet", "heartbeat") events.
//
// JSONP polling and protocol 3 stay with the engine and this package's
// transports.
type session struct {
	listenerList

	id     string
	srv    engineServer
	remote string
	tr     *sessionTransport
	// req is the handshake request, in a compact form; reqCtx the
	// HttpContext made of it for Socket.IO's handshake, kept only until
	// Socket.IO has answered the CONNECT (see Request).
	req    compactRequest
	reqCtx atomic.Pointer[types.HttpContext]

	state atomic.Int32  // stateOpen, stateClosing, stateClosed
	count *atomic.Int64 // the open sessions of the engine

	// mu guards the transport: a websocket (ws), or polling (poll) with
	// possibly a websocket being probed for the upgrade (probe).
	mu        sync.Mutex
	ws        *wsConn
	poll      *pollState
	probe     *wsConn
	onPolling atomic.Bool // poll != nil, for lock-free readers
	// probeWake, when set, is closed to wake the polling requests waiting
	// for the probe's reader (see settleProbe).
	probeWake chan struct{}

	// The Socket.IO namespaces of the session: CONNECTs not yet answered,
	// and namespaces connected (see afterRefusal).
	sioPending, sioConnected atomic.Int32
	// The namespaces whose CONNECT answer was written and that have not
	// recorded their socket yet; while there are any, connWait is a channel
	// closed when the last has (see awaitSockets).
	connMu     sync.Mutex
	connecting []string
	connWait   atomic.Pointer[chan struct{}]
	// The namespaces whose events are handed over one at a time, and the
	// signal that the last one reached its socket (see KeepOrder); under
	// connMu, taken made once.
	ordered []string
	taken   atomic.Pointer[chan struct{}]
	// plain: the engine carries no Socket.IO (see PlainEngine).
	plain bool

	pingInterval, pingTimeout time.Duration
	hbMu                      sync.Mutex
	hb                        *time.Timer
	awaitingPong              bool

	closeOnce sync.Once
}

const (
	stateOpen = iota
	stateClosing
	stateClosed
)

var stateNames = [...]string{"open", "closing", "closed"}

// The engine.io packet types as the websocket text messages start with them.
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// pingFrame is the engine.io PING packet as a websocket frame, shared.
var pingFrame = Frame(true, []byte{eioPing})

var _ engine.Socket = (*session)(nil)

// engineServer is what a session needs of the engine.
type engineServer interface {
	http.Handler
	engine.BaseServer
}

// sessionCounts counts the open sessions of each engine (the engine counts
// only its own).
var sessionCounts sync.Map // engine.BaseServer -> *atomic.Int64

func sessionCounter(eng engine.BaseServer) *atomic.Int64 {
	if c, ok := sessionCounts.Load(eng); ok {
		return c.(*atomic.Int64)
	}
	c, _ := sessionCounts.LoadOrStore(eng, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// ClientsCount is the number of open engine.io sessions of eng: the engine's
// own (protocol 3, JSONP) and this package's sessions. Use it instead of the
// engine's ClientsCount, which does not see the latter.
func ClientsCount(eng engine.BaseServer) uint64 {
	n := int64(eng.ClientsCount())
	if c, ok := sessionCounts.Load(eng); ok {
		n += c.(*atomic.Int64).Load()
	}
	return uint64(max(n, 0))
}

// handshake runs the engine's middlewares and checks for a new session's first
// request, and calls open with the session id when they pass; otherwise it
// answers the error, as the engine does.
func handshake(eng engineServer, w http.ResponseWriter, r *http.Request, open func(ctx *types.HttpContext, id string)) {
	ctx := types.NewHttpContext(w, r)
	eng.ApplyMiddlewares(ctx, func(err error) {
		if err != nil {
			abort(eng, ctx, engine.BAD_REQUEST, map[string]any{"name": "MIDDLEWARE_FAILURE"})
			return
		}
		if code, errCtx := eng.Verify(ctx, isWebSocketRequest(r)); code != nil {
			abort(eng, ctx, code, errCtx)
			return
		}
		id, err := eng.GenerateId(ctx)
		if err != nil {
			abort(eng, ctx, engine.BAD_REQUEST, map[string]any{"name": "ID_GENERATION_ERROR", "error": err})
			return
		}
		open(ctx, id)
	})
}

// newSession makes the session id for the handshake request ctx.
func newSession(eng engineServer, ctx *types.HttpContext, id, remote string) *session {
	opts := eng.Opts()
	s := &session{
		id:           id,
		srv:          eng,
		remote:       remote,
		req:          compactRequestOf(ctx.Request()),
		pingInterval: opts.PingInterval(),
		pingTimeout:  opts.PingTimeout(),
	}
	_, s.plain = plainEngines.Load(eng)
	s.tr = &sessionTransport{Transport: baseTransport, s: s}
	// Socket.IO reads the request when the client's CONNECT comes, right
	// after: it gets this one, and later ones are made of the compact form.
	s.reqCtx.Store(ctx)
	return s
}

// openPacket is the engine.io open packet of s (the keys in the order the
// engine's JSON encoding gives them).
func (s *session) openPacket(upgrades []string) []byte {
	opts := s.srv.Opts()
	b := fmt.Appendf(nil, `{"maxPayload":%d,"pingInterval":%d,"pingTimeout":%d,"sid":%s,"upgrades":[`,
		opts.MaxHttpBufferSize(), s.pingInterval.Milliseconds(), s.pingTimeout.Milliseconds(), strconv.Quote(s.id))
	for i, u := range upgrades {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, u)
	}
	return append(b, "]}"...)
}

// start registers the session with the engine, whose "connection" event makes
// Socket.IO attach its listeners, and starts the heartbeat.
func (s *session) start() {
	s.hb = time.AfterFunc(s.pingInterval, s.heartbeat)
	s.count = sessionCounter(s.srv)
	s.count.Add(1)
	s.srv.Clients().Store(s.id, s)
	s.srv.Emit("connection", s)
}

// serveSession handles the first request of a session that starts on
// websocket: the engine's checks and middlewares, the websocket handshake, the
// open packet, then the engine's "connection" event, after which the session
// reads (so no CONNECT can arrive before Socket.IO listens).
func serveSession(eng engineServer, w http.ResponseWriter, r *http.Request) {
	key, err := checkWebSocketRequest(r)
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	handshake(eng, w, r, func(ctx *types.HttpContext, id string) {
		nc, err := upgradeConn(w, key, ctx.ResponseHeaders.All())
		if err != nil {
			return // nothing more can be said to this client
		}
		s := newSession(eng, ctx, id, nc.RemoteAddr().String())
		s.ws = newWSConn(nc, eng.Opts().MaxHttpBufferSize())
		if err := s.ws.writeFrame(textFrameWithPrefix(eioOpen, s.openPacket(nil))); err != nil {
			s.ws.abort()
			return
		}
		s.start()
		s.ws.startReading(s.onMessage, s.onReadEnd)
	})
}

// abort refuses a request before the upgrade, as the engine does: a JSON error
// with 400 (403 when forbidden) and the engine's "connection_error" event.
func abort(eng engineServer, ctx *types.HttpContext, code *types.CodeMessage, errCtx map[string]any) {
	eng.Emit("connection_error", &types.ErrorMessage{CodeMessage: code, Req: ctx, Context: errCtx})
	status := http.StatusBadRequest
	if code == engine.FORBIDDEN {
		status = http.StatusForbidden
	}
	message := code.Message
	if m, ok := errCtx["message"].(string); ok {
		message = m
	}
	ctx.ResponseHeaders.Set("Content-Type", "application/json")
	ctx.SetStatusCode(status)
	_, _ = ctx.Write(fmt.Appendf(nil, `{"code":%d,"message":%s}`, code.Code, strconv.Quote(message)))
}

// doneContext is an already cancelled context for the requests rebuilt from a
// compactRequest, so that an HttpContext made of one holds no goroutine.
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// compactRequest is what Socket.IO reads of a handshake request (method, URL,
// host, address, TLS, headers) in one string, instead of the parsed request
// with its maps, which would cost a few kilobytes for each connection's life.
type compactRequest struct {
	s   string // method \n uri \n host \n remote \n, then name \x00 value \x00 ...
	tls *tls.ConnectionState
}

func compactRequestOf(r *http.Request) compactRequest {
	var b strings.Builder
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + len(r.RemoteAddr) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	b.Grow(n)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(r.RequestURI)
	b.WriteByte('\n')
	b.WriteString(r.Host)
	b.WriteByte('\n')
	b.WriteString(r.RemoteAddr)
	b.WriteByte('\n')
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(0)
			b.WriteString(v)
			b.WriteByte(0)
		}
	}
	return compactRequest{s: b.String(), tls: r.TLS}
}

// request rebuilds the request.
func (c compactRequest) request() *http.Request {
	parts := strings.SplitN(c.s, "\n", 5)
	for len(parts) < 5 {
		parts = append(parts, "")
	}
	r := &http.Request{Method: parts[0], RequestURI: parts[1], Host: parts[2], RemoteAddr: parts[3],
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, TLS: c.tls}
	if u, err := url.ParseRequestURI(parts[1]); err == nil {
		r.URL = u
	} else {
		r.URL = &url.URL{}
	}
	// Header values hold no NUL (net/http refuses control characters).
	fields := strings.Split(parts[4], "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		r.Header[fields[i]] = append(r.Header[fields[i]], fields[i+1])
	}
	return r.WithContext(doneContext)
}

// discardResponse is the ResponseWriter of a rebuilt request.
type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (discardResponse) WriteHeader(int)             {}

// send sends one engine.io packet: kind is its type ('0'..'6', data after
// it) or 0 for a binary message (data alone).
func (s *session) send(kind byte, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(kind, data)
}

func (s *session) sendLocked(kind byte, data []byte) error {
	if p := s.poll; p != nil {
		p.add(kind, data)
		return nil
	}
	if kind == 0 {
		return s.ws.writeFrame(Frame(false, data))
	}
	return s.ws.writeFrame(textFrameWithPrefix(kind, data))
}

// deliver writes broadcast frames (see Deliver); false when the session
// polls.
func (s *session) deliver(frames [][]byte, volatile bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll != nil {
		return false
	}
	if s.state.Load() == stateOpen && !(volatile && s.ws.backlogged()) {
		// An error means the connection is failing; its reader reports it.
		_ = s.ws.writeFrames(frames)
	}
	return true
}

// onMessage handles one message of the client (a websocket message, or one
// packet of a polling request's payload); false ends reading.
func (s *session) onMessage(text bool, data []byte) bool {
	if s.state.Load() != stateOpen {
		return false
	}
	if !text {
		// A binary message is an engine.io MESSAGE with binary data.
		if s.awaitSockets(); s.state.Load() != stateOpen {
			return false
		}
		buf := types.NewBytesBuffer(data)
		s.emitPacket(packet.MESSAGE, buf)
		s.Emit("data", buf)
		return true
	}
	if len(data) == 0 {
		s.onClose("parse error", nil)
		return false
	}
	body := data[1:]
	switch data[0] {
	case eioMessage:
		if s.awaitSockets(); s.state.Load() != stateOpen {
			return false
		}
		if len(body) > 0 && !s.plain {
			body = withEmptyAuth(body)
			s.onClientPacket(body)
		}
		var taken chan struct{}
		if !s.plain {
			taken = s.orderedEvent(body)
		}
		buf := types.NewStringBuffer(body)
		s.emitPacket(packet.MESSAGE, buf)
		s.Emit("data", buf)
		if taken != nil {
			s.awaitTaken(taken)
		}
	case eioPong:
		s.emitPacket(packet.PONG, nil)
		s.onPong()
	case eioPing:
		// Engine.IO v4: only the server pings.
		s.onClose("transport error", errors.New("invalid heartbeat direction"))
		return false
	case eioClose:
		s.clientClose()
		return false
	case eioUpgrade, eioNoop:
	default:
		s.onClose("parse error", nil)
		return false
	}
	return s.state.Load() == stateOpen
}

// emitPacket reports an incoming packet to "packet" listeners, if there are
// any (the engine's socket has this event).
func (s *session) emitPacket(typ packet.Type, data io.Reader) {
	if s.has("packet") {
		s.Emit("packet", &packet.Packet{Type: typ, Data: data})
	}
}

// onReadEnd is told why the websocket stopped.
func (s *session) onReadEnd(err error) {
	if isClosedConn(err) {
		s.onClose("transport close", nil)
		return
	}
	s.onClose("transport error", err)
}

// heartbeat runs when the heartbeat timer fires: it sends a ping, or closes the
// session when the last ping got no pong in time.
func (s *session) heartbeat() {
	s.hbMu.Lock()
	if s.state.Load() == stateClosed {
		s.hbMu.Unlock()
		return
	}
	if s.awaitingPong {
		s.hbMu.Unlock()
		s.onClose("ping timeout", nil)
		return
	}
	s.awaitingPong = true
	s.hb.Reset(s.pingTimeout)
	s.hbMu.Unlock()
	s.mu.Lock()
	if s.poll != nil {
		s.poll.add(eioPing, nil)
	} else {
		_ = s.ws.writeFrame(pingFrame)
	}
	s.mu.Unlock()
}

func (s *session) onPong() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.awaitingPong && s.state.Load() != stateClosed {
		s.awaitingPong = false
		s.hb.Reset(s.pingInterval)
	}
	if s.has("heartbeat") {
		defer s.Emit("heartbeat")
	}
}

// onClose closes the session once: its connections, the timer, the engine's
// list, then the "close" event (reason, error) that Socket.IO listens to.
func (s *session) onClose(reason string, err error) {
	s.closeOnce.Do(func() {
		s.state.Store(stateClosed)
		s.hbMu.Lock()
		if s.hb != nil {
			s.hb.Stop()
		}
		s.hbMu.Unlock()
		s.mu.Lock()
		if s.poll != nil && !s.poll.clientClosed {
			s.poll.close()
		}
		if s.ws != nil {
			s.ws.close(closeNormal)
		}
		if s.probe != nil {
			s.probe.abort()
			s.probe = nil
		}
		s.mu.Unlock()
		s.signalTaken() // a reader waiting for an event's listeners stops waiting
		s.srv.Clients().Delete(s.id)
		if s.count != nil {
			s.count.Add(-1)
		}
		s.Emit("close", reason, err)
	})
}

// Protocol is the engine.io protocol revision: 4.
func (s *session) Protocol() int { return 4 }

// Request returns the session's handshake request (headers, query, address).
// Socket.IO reads it while it handles a CONNECT; it is made again from the
// compact form when needed and dropped once a CONNECT has been answered.
func (s *session) Request() *types.HttpContext {
	if c := s.reqCtx.Load(); c != nil {
		return c
	}
	c := types.NewHttpContext(discardResponse{}, s.req.request())
	if s.reqCtx.CompareAndSwap(nil, c) {
		return c
	}
	return s.reqCtx.Load()
}

// RemoteAddress is the client's address.
func (s *session) RemoteAddress() string { return s.remote }

// Transport returns the session's transport.
func (s *session) Transport() transports.Transport { return s.tr }

// Id is the session id.
func (s *session) Id() string { return s.id }

// ReadyState is "open", "closing" or "closed".
func (s *session) ReadyState() string { return stateNames[s.state.Load()] }

// SetReadyState sets the state by name.
func (s *session) SetReadyState(state string) {
	for i, n := range stateNames {
		if n == state {
			s.state.Store(int32(i))
		}
	}
}

// Upgraded reports whether the session moved from polling to websocket.
func (s *session) Upgraded() bool { return s.tr.upgraded.Load() }

// Upgrading reports whether a websocket is being probed for the upgrade.
func (s *session) Upgrading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probe != nil
}

// Construct does nothing: this package builds sessions.
func (s *session) Construct(string, engine.BaseServer, transports.Transport, *types.HttpContext, int) {
}

// MaybeUpgrade refuses: this package upgrades its sessions itself.
func (s *session) MaybeUpgrade(t transports.Transport) { t.Close() }

// Send sends a message (data is a text or binary buffer).
func (s *session) Send(data io.Reader, opts *packet.Options, callback engine.SendCallback) engine.Socket {
	return s.Write(data, opts, callback)
}

// Write sends a message (data is a text or binary buffer); callback, when set,
// runs once the message is handed to the connection.
func (s *session) Write(data io.Reader, _ *packet.Options, callback engine.SendCallback) engine.Socket {
	if s.state.Load() != stateOpen {
		return s
	}
	switch d := data.(type) {
	case *types.StringBuffer:
		b := d.Bytes()
		refused := false
		if len(b) > 0 && (b[0] == '0' || b[0] == '4') {
			// Socket.IO's answer to a CONNECT (CONNECT or CONNECT_ERROR): it
			// has read the request.
			s.reqCtx.Store(nil)
		}
		if len(b) > 0 && !s.plain {
			if refused = s.onServerPacket(b); refused {
				b = trimNullData(b)
			}
		}
		_ = s.send(eioMessage, b)
		if refused {
			defer s.afterRefusal()
		} else if len(b) > 0 && b[0] == '0' {
			if h := afterConnectAnswer.Load(); h != nil {
				(*h)()
			}
		}
	case *types.BytesBuffer:
		_ = s.send(0, d.Bytes())
	default:
		b, err := io.ReadAll(data)
		if err != nil {
			return s
		}
		_ = s.send(eioMessage, b)
	}
	if callback != nil {
		callback(s.tr)
	}
	return s
}

// Close closes the session: what is queued is sent, then the transport closes.
func (s *session) Close(bool) {
	if !s.state.CompareAndSwap(stateOpen, stateClosing) {
		return
	}
	s.onClose("forced close", nil)
}

// base64Message encodes a binary message for a polling payload.
func base64Message(data []byte) []byte {
	b := make([]byte, 1+base64.StdEncoding.EncodedLen(len(data)))
	b[0] = 'b'
	base64.StdEncoding.Encode(b[1:], data)
	return b
}

// sessionTransport is the Transport of a session, for code that asks a socket
// for its transport (its name, whether it is writable). It is a shared base
// transport with the session behind the methods that matter.
type sessionTransport struct {
	transports.Transport
	s        *session
	upgraded atomic.Bool // the session moved from polling to websocket
}

// baseTransport is the engine's base transport behind every sessionTransport.
// Nothing uses its state (sessions answer for themselves), so one is enough.
var baseTransport = func() transports.Transport {
	t := transports.MakeTransport()
	t.Prototype(t)
	t.SetWritable(true)
	t.SetReadyState("open")
	return t
}()

// Name is the transport's name in the engine.io protocol.
func (t *sessionTransport) Name() string {
	if t.s.onPolling.Load() {
		return transports.POLLING
	}
	return transports.WEBSOCKET
}

// Sid is the session id.
func (t *sessionTransport) Sid() string { return t.s.id }

// ReadyState is the session's state.
func (t *sessionTransport) ReadyState() string { return t.s.ReadyState() }

// SupportsBinary reports true.
func (t *sessionTransport) SupportsBinary() bool { return true }

// HandlesUpgrades reports whether the transport is the websocket one.
func (t *sessionTransport) HandlesUpgrades() bool { return !t.s.onPolling.Load() }

// Protocol is the engine.io protocol revision: 4.
func (t *sessionTransport) Protocol() int { return 4 }

// Writable reports true: messages are queued when they cannot go out at once.
func (t *sessionTransport) Writable() bool { return t.s.state.Load() == stateOpen }

// Send writes packets to the session.
func (t *sessionTransport) Send(packets []*packet.Packet) {
	for _, p := range packets {
		if p.Type == packet.MESSAGE {
			t.s.Write(p.Data, p.Options, nil)
		}
	}
}

// OnRequest answers a request the engine routed to this transport (it should
// not: Handler serves the session's requests).
func (t *sessionTransport) OnRequest(ctx *types.HttpContext) {
	ctx.SetStatusCode(http.StatusBadRequest)
	_, _ = ctx.Write(nil)
}

// Close closes the session.
func (t *sessionTransport) Close(fns ...types.Callable) {
	t.s.Close(false)
	for _, fn := range fns {
		if fn != nil {
			fn()
		}
	}
}

// DoClose closes the session.
func (t *sessionTransport) DoClose(fn types.Callable) { t.Close(fn) }
