package transport

import (
	"net/http"

	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
)

// pollingBuilder builds the dependency's polling (or JSONP) transport wrapped so
// that data requests wait for the session's handshake gate.
type pollingBuilder struct{}

func (pollingBuilder) New(ctx *types.HttpContext) transports.Transport {
	var inner transports.Polling
	if ctx.Query().Has("j") {
		inner = transports.MakeJSONP()
	} else {
		inner = transports.MakePolling()
	}
	p := &polling{Polling: inner}
	p.Prototype(p)
	p.Construct(ctx)
	return p
}
func (pollingBuilder) Name() string          { return transports.POLLING }
func (pollingBuilder) HandlesUpgrades() bool { return false }
func (pollingBuilder) UpgradesTo() *types.Set[string] {
	return types.NewSet(transports.WEBSOCKET, transports.WEBTRANSPORT)
}

// polling is the dependency's HTTP long-polling transport with one change: a POST
// (the client sending packets) is handled only once the handshake request that
// created the session has been fully handled by the engine, so the first packets
// of a session (its CONNECT) reach Socket.IO instead of an engine socket nobody
// listens to yet.
type polling struct {
	transports.Polling

	gate *gate
}

// Construct sets the transport up for the handshake request ctx.
func (p *polling) Construct(ctx *types.HttpContext) {
	p.Polling.Construct(ctx)
	p.gate = gateFrom(ctx.Request().Context())
}

// OnRequest handles a request of the session: POSTs wait for the handshake gate.
func (p *polling) OnRequest(ctx *types.HttpContext) {
	if ctx.Method() == http.MethodPost && p.gate != nil {
		p.gate.wait(GateTimeout)
	}
	p.Polling.OnRequest(ctx)
}
