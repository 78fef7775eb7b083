package transport

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/engine.io/v2/config"
	"github.com/zishang520/engine.io/v2/transports"
)

// GateTimeout bounds every wait for a gate. The engine's ServeHTTP returns within
// microseconds of the handshake for websockets and right after the open packet was
// written for polling, so the bound only matters if something is badly wrong.
const GateTimeout = 10 * time.Second

// gate is closed once the engine has finished handling the request that created a
// transport, which is when Socket.IO listens to everything the transport reads.
type gate struct {
	once sync.Once
	ch   chan struct{}
	// maxMessage is the engine's maxHttpBufferSize, the bound of one websocket
	// message (0 when unknown: no bound).
	maxMessage int64
	// conn is the connection serveUpgrade upgraded, for the transport the
	// engine creates on it.
	conn net.Conn
}

func newGate(maxMessage int64) *gate { return &gate{ch: make(chan struct{}), maxMessage: maxMessage} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until g is open or d has passed; it reports whether g opened. A nil
// gate (a transport created outside Handler) is always open.
func (g *gate) wait(d time.Duration) bool {
	if g == nil {
		return true
	}
	select {
	case <-g.ch:
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-g.ch:
		return true
	case <-t.C:
		gateTimeouts.Add(1)
		return false
	}
}

type gateKey struct{}

func gateFrom(ctx context.Context) *gate {
	g, _ := ctx.Value(gateKey{}).(*gate)
	return g
}

var gateTimeouts, readPanics atomic.Uint64

// Stats are counters of this package, for metrics.
type Stats struct {
	// GateTimeouts counts waits for a gate that gave up after GateTimeout. It
	// stays 0 unless an engine request handler hangs.
	GateTimeouts uint64
	// ReadPanics counts panics of the engine while handling a websocket
	// message; each closed its connection instead of the process.
	ReadPanics uint64
	// The protocol corrections that took effect (see protocol.go):
	// EmptyAuthConnects counts CONNECTs without a payload given "{}";
	// ClientCloseNoops, GETs answered with NOOP because the client sent
	// CLOSE; ClosedExtraUpgrades, websockets of an upgraded (or upgrading)
	// session accepted and closed; PollsHeldForUpgrade, polling requests that
	// waited for the reader of a websocket being probed; TrimmedErrorData,
	// CONNECT_ERRORs written without "data":null; ClosedRefused, sessions
	// closed after their last namespace was refused; HeldForConnect,
	// messages of the client that waited for a connecting socket, and
	// ConnectSettleLate, those waits that gave up after connectSettleTimeout
	// (a namespace that does not call SocketReady); EventsInOrder, events
	// handed over one at a time, and EventTakenLate, those whose listeners
	// were not reached within eventTakenTimeout.
	EmptyAuthConnects, ClientCloseNoops, ClosedExtraUpgrades uint64
	PollsHeldForUpgrade, TrimmedErrorData, ClosedRefused     uint64
	HeldForConnect, ConnectSettleLate                        uint64
	EventsInOrder, EventTakenLate                            uint64
}

// ReadStats returns the package's counters.
func ReadStats() Stats {
	return Stats{GateTimeouts: gateTimeouts.Load(), ReadPanics: readPanics.Load(),
		EmptyAuthConnects: emptyAuthConnects.Load(), ClientCloseNoops: clientCloseNoops.Load(),
		ClosedExtraUpgrades: closedExtraUpgrades.Load(), PollsHeldForUpgrade: pollsHeldForUpgrade.Load(),
		TrimmedErrorData: trimmedErrorData.Load(), ClosedRefused: closedRefused.Load(),
		HeldForConnect: heldForConnect.Load(), ConnectSettleLate: connectSettleLate.Load(),
		EventsInOrder: eventsInOrder.Load(), EventTakenLate: eventTakenLate.Load()}
}

// Handler wraps the engine's handler (socket.Server.ServeHandler) so that the
// transports created while it serves a request start reading only after the engine
// and Socket.IO have attached their listeners. Every request to the engine must go
// through it; transports created without it behave like the dependency's.
func Handler(engine http.Handler) http.Handler {
	var maxMessage int64
	if e, ok := engine.(interface {
		Opts() config.ServerOptionsInterface
	}); ok {
		maxMessage = e.Opts().MaxHttpBufferSize()
	}
	eng, _ := engine.(engineServer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if eng != nil && serveOwn(eng, w, r, maxMessage) {
			return
		}
		g := newGate(maxMessage)
		defer g.open()
		engine.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), gateKey{}, g)))
	})
}

// serveOwn serves the requests of this package's sessions (protocol 4, not
// JSONP; see session), and the websocket upgrades of the engine's own sessions
// when our transports are installed, and reports whether it did.
func serveOwn(eng engineServer, w http.ResponseWriter, r *http.Request, maxMessage int64) bool {
	q := QueryOf(r.URL)
	if q.Get("EIO") != "4" || q.Has("j") {
		return false
	}
	ws := isWebSocketRequest(r)
	if sid := q.Get("sid"); sid != "" {
		if c, ok := eng.Clients().Load(sid); ok {
			if s, ok := c.(*session); ok {
				if ws {
					s.serveWebSocketUpgrade(w, r)
				} else {
					s.servePolling(w, r, q)
				}
				return true
			}
		}
		if ws && q.Get("transport") == transports.WEBSOCKET && Installed() {
			serveUpgrade(eng, w, r, maxMessage)
			return true
		}
		return false
	}
	if r.Method != http.MethodGet || eng.Opts().InitialPacket() != nil {
		return false
	}
	switch t := q.Get("transport"); {
	case t == transports.WEBSOCKET && ws:
		serveSession(eng, w, r)
	case t == transports.POLLING && !ws:
		servePollingSession(eng, w, r)
	default:
		return false
	}
	return true
}
