package transport

import (
	"errors"
	"net"
	"sync"

	ws "github.com/gorilla/websocket"
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
// transport (state, parser, events) and replaces what the dependency's websocket
// transport gets wrong: it writes every packet of a batch and starts reading only
// when the request's gate is open.
type websocket struct {
	transports.Transport

	conn *types.WebSocketConn
	gate *gate

	// mu serialises writers: Send runs each batch in its own goroutine, and the
	// engine may call Send again (a probe pong, a flush) before the last one ended.
	mu sync.Mutex
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
	w.conn = ctx.Websocket
	w.gate = gateFrom(ctx.Request().Context())

	w.conn.On("error", func(args ...any) {
		err, _ := firstError(args)
		w.OnError("websocket error", err)
	})
	w.conn.Once("close", func(...any) { w.OnClose() })

	go w.read()

	w.SetWritable(true)
	w.SetPerMessageDeflate(nil)
}

func firstError(args []any) (error, bool) {
	if len(args) > 0 {
		if err, ok := args[0].(error); ok {
			return err, true
		}
	}
	return errors.New("transport: websocket error"), false
}

// Name is the transport's name in the engine.io protocol.
func (w *websocket) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades reports that a polling session may upgrade to this transport.
func (w *websocket) HandlesUpgrades() bool { return true }

// read delivers every incoming message to the engine, once the gate is open.
func (w *websocket) read() {
	w.gate.wait(GateTimeout)
	w.gate = nil // nothing else needs it; do not keep it alive for the connection's life
	for {
		mt, r, err := w.conn.NextReader()
		if err != nil {
			w.connFailed(err)
			return
		}
		var buf types.BufferInterface
		switch mt {
		case ws.TextMessage:
			buf = types.NewStringBuffer(nil)
		case ws.BinaryMessage:
			buf = types.NewBytesBuffer(nil)
		default:
			continue // gorilla answers control frames itself
		}
		if _, err := buf.ReadFrom(r); err != nil {
			w.connFailed(err)
			return
		}
		if !w.deliver(buf) {
			return
		}
	}
}

// deliver hands one message to the engine. A panic in the engine's handlers
// would kill the process from this goroutine; it is counted, and the connection
// is closed instead. (One is known: the dependency's upgrade code reads and
// clears its transport variable from different goroutines when a session closes
// in the middle of an upgrade.)
func (w *websocket) deliver(buf types.BufferInterface) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			readPanics.Add(1)
			_ = w.conn.Close()
			ok = false
		}
	}()
	w.Transport.OnData(buf)
	return true
}

// connFailed reports a read or write error on the connection: a closed
// connection is a close, anything else an error (which closes it too).
func (w *websocket) connFailed(err error) {
	var ce *ws.CloseError
	if errors.As(err, &ce) || errors.Is(err, net.ErrClosed) {
		w.conn.Emit("close")
		return
	}
	w.conn.Emit("error", err)
}

// Send writes a batch of packets. The engine marks the transport not writable
// until the batch is out, so batches never overlap on the wire.
func (w *websocket) Send(packets []*packet.Packet) {
	w.SetWritable(false)
	go w.send(packets)
}

func (w *websocket) send(packets []*packet.Packet) {
	defer func() {
		w.Emit("drain")
		w.SetWritable(true)
		w.Emit("ready")
	}()

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range packets {
		if err := w.write(p); err != nil {
			w.connFailed(err)
			return
		}
	}
}

// write sends one packet as one websocket message.
func (w *websocket) write(p *packet.Packet) error {
	pmd := w.PerMessageDeflate()
	if p.Options != nil && p.Options.WsPreEncodedFrame != nil && pmd == nil {
		// A broadcast: Socket.IO encoded the engine.io message once for every
		// recipient. Its bytes are shared and only read here.
		frame := p.Options.WsPreEncodedFrame
		return w.conn.WriteMessage(messageType(frame), frame.Bytes())
	}
	data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
	if err != nil {
		return err
	}
	compress := p.Options != nil && p.Options.Compress
	if pmd != nil && data.Len() < pmd.Threshold {
		compress = false
	}
	w.conn.EnableWriteCompression(compress)
	return w.conn.WriteMessage(messageType(data), data.Bytes())
}

func messageType(b types.BufferInterface) int {
	if _, ok := b.(*types.StringBuffer); ok {
		return ws.TextMessage
	}
	return ws.BinaryMessage
}

// DoClose closes the connection; the connection's "close" event then closes the
// transport.
func (w *websocket) DoClose(fn types.Callable) {
	if fn != nil {
		fn()
	}
	_ = w.conn.Close()
}
