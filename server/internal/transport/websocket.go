package transport

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/zishang520/engine.io-go-parser/packet"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
)

// websocketBuilder builds our websocket transport in place of the dependency's.
type websocketBuilder struct{}

func (websocketBuilder) New(ctx *types.HttpContext) transports.Transport { return newWebSocket(ctx) }
func (websocketBuilder) Name() string                                    { return transports.WEBSOCKET }
func (websocketBuilder) HandlesUpgrades() bool                           { return true }
func (websocketBuilder) UpgradesTo() *types.Set[string]                  { return types.NewSet[string]() }

// websocket is an engine.io websocket transport. It embeds the engine's base
// transport (state, parser, events) and does its own websocket I/O on the
// hijacked connection (see wsConn): it writes every packet of a batch, never
// makes the engine wait (it is always writable: frames the network cannot take
// yet are queued in order), starts reading only when the request's gate is open,
// and lets broadcasts write their shared frames directly (see Deliver).
type websocket struct {
	transports.Transport

	ws   *wsConn
	gate *gate
	// attached is set when the engine makes this transport its session's
	// transport (it then listens to "ready"). direct is set once the engine has
	// also finished attaching it, which flushes what the engine buffered for
	// the session: from then on Deliver may write to it without overtaking
	// packets the engine still holds.
	attached  atomic.Bool
	direct    atomic.Bool
	closeOnce sync.Once
}

func newWebSocket(ctx *types.HttpContext) transports.Transport {
	w := &websocket{Transport: transports.MakeTransport()}
	w.Prototype(w)
	w.Construct(ctx)
	return w
}

// Construct sets the transport up on the upgraded connection of ctx.
func (w *websocket) Construct(ctx *types.HttpContext) {
	w.Transport.Construct(ctx)
	w.gate = gateFrom(ctx.Request().Context())
	var limit int64
	if w.gate != nil {
		limit = w.gate.maxMessage
	}
	var nc net.Conn
	if w.gate != nil && w.gate.conn != nil {
		nc = w.gate.conn // upgraded by serveUpgrade
	} else {
		nc = ctx.Websocket.NetConn() // upgraded by the engine
	}
	w.ws = newWSConn(nc, limit)

	go w.read()

	w.SetWritable(true)
	w.SetPerMessageDeflate(nil)
}

// Name is the transport's name in the engine.io protocol.
func (w *websocket) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades reports that a polling session may upgrade to this transport.
func (w *websocket) HandlesUpgrades() bool { return true }

// On registers listeners, and notes when the engine attaches the transport to
// its session (see attached).
func (w *websocket) On(ev types.EventName, listeners ...types.Listener) error {
	if ev == "ready" {
		w.attached.Store(true)
	}
	return w.Transport.On(ev, listeners...)
}

// markDirect allows Deliver once the transport is attached. It runs on the
// reader goroutine after the engine handled the handshake (gate open) and after
// every message, because the engine attaches an upgrade transport, and flushes
// its buffer to it, while it handles the client's UPGRADE packet.
func (w *websocket) markDirect() {
	if !w.direct.Load() && w.attached.Load() {
		w.direct.Store(true)
	}
}

// read starts delivering incoming messages to the engine once the gate is
// open.
func (w *websocket) read() {
	w.gate.wait(GateTimeout)
	w.gate = nil // nothing else needs it; do not keep it alive for the connection's life
	w.markDirect()
	w.ws.startReading(w.onMessage, w.connFailed)
}

// onMessage hands one message to the engine.
func (w *websocket) onMessage(text bool, data []byte) bool {
	var buf types.BufferInterface
	if text {
		buf = types.NewStringBuffer(data)
	} else {
		buf = types.NewBytesBuffer(data)
	}
	if !w.deliver(buf) {
		return false
	}
	w.markDirect()
	return true
}

// deliver hands one message to the engine. A panic in the engine's handlers
// would kill the process from the reading goroutine; it is counted, and the
// connection is closed instead. (One is known: the dependency's upgrade code
// reads and clears its transport variable from different goroutines when a
// session closes in the middle of an upgrade.)
func (w *websocket) deliver(buf types.BufferInterface) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			readPanics.Add(1)
			w.ws.abort()
			w.closed()
			ok = false
		}
	}()
	w.Transport.OnData(buf)
	return true
}

// connFailed reports the end of the connection: a close (by either side, or a
// closed connection) as a close, anything else as an error, which the engine
// turns into a close.
func (w *websocket) connFailed(err error) {
	w.ws.abort()
	if isClosedConn(err) {
		w.closed()
		return
	}
	w.OnError("websocket error", err)
	w.closed()
}

// closed tells the engine, once, that the transport is closed.
func (w *websocket) closed() {
	w.closeOnce.Do(func() { w.OnClose() })
}

// Send writes a batch of packets, in order and with nothing in between. It
// never blocks: what the network cannot take now is queued on the connection.
func (w *websocket) Send(packets []*packet.Packet) {
	var one [1][]byte
	frames := one[:0]
	for _, p := range packets {
		f, err := w.frame(p)
		if err != nil {
			continue // an unencodable packet: the engine's own transport skips it too
		}
		frames = append(frames, f)
	}
	// An error means the connection is failing; its reader reports the close.
	_ = w.ws.writeFrames(frames)
	w.Emit("drain")
}

// frame encodes one packet as one websocket frame.
func (w *websocket) frame(p *packet.Packet) ([]byte, error) {
	if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
		// A broadcast: Socket.IO encoded the engine.io message once for every
		// recipient. Its bytes are shared and only read here.
		frame := p.Options.WsPreEncodedFrame
		return Frame(isText(frame), frame.Bytes()), nil
	}
	data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
	if err != nil {
		return nil, err
	}
	return Frame(isText(data), data.Bytes()), nil
}

func isText(b types.BufferInterface) bool {
	_, ok := b.(*types.StringBuffer)
	return ok
}

// DoClose closes the connection (a close frame after what is queued); the reader
// then reports the close to the engine.
func (w *websocket) DoClose(fn types.Callable) {
	if fn != nil {
		fn()
	}
	w.ws.close(closeNormal)
}
