package redisadapter

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
)

// start subscribes to the namespace's channels on a connection of its own and
// starts the goroutines that read them and run server-side emit handlers.
func (a *Adapter) start() {
	ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.RequestTimeout)
	defer cancel()
	channels := []string{a.ch.Request(), a.ch.Response(), a.ch.SpecificResponse(a.uid)}
	// go-redis records the channels even when Redis cannot be reached now, and
	// subscribes to them on every (re)connection.
	a.ps = a.b.cfg.Client.PSubscribe(ctx, a.ch.BroadcastPattern())
	if err := a.ps.Subscribe(ctx, channels...); err != nil {
		a.b.cfg.Logger.Warn("redisadapter: subscribe failed; retrying in the background", "namespace", a.nspName, "error", err)
	}
	want := map[string]bool{a.ch.BroadcastPattern(): true}
	for _, c := range channels {
		want[c] = true
	}
	go a.loop(want)
	go a.b.runServerSideEmits(a.sse, a.done)
}

// loop handles every message in the order Redis delivered it, on one goroutine:
// a join published before an event is applied before the event is delivered.
func (a *Adapter) loop(want map[string]bool) {
	defer close(a.loopDone)
	confirmed := map[string]bool{}
	receive(a.ps, a.done, func(m any) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "psubscribe" {
				return
			}
			a.b.stats.subscriptions.Add(1)
			if want[m.Channel] && !confirmed[m.Channel] {
				confirmed[m.Channel] = true
				if len(confirmed) == len(want) {
					close(a.subscribed)
				}
			} else if m.Channel == a.ch.BroadcastPattern() {
				// go-redis subscribes again after a reconnection, pattern first.
				a.resubscribed()
			}
		case *redis.Message:
			a.handle(m)
		}
	})
}

// resubscribed reports a subscription established again after a reconnection.
func (a *Adapter) resubscribed() {
	if fn := a.b.cfg.OnResubscribe; fn != nil {
		go fn(a.nspName)
	}
}

// runServerSideEmits runs the server-side emit handlers queued on sse, one
// after the other, until done is closed.
func (b *Builder) runServerSideEmits(sse <-chan func(), done <-chan struct{}) {
	for {
		select {
		case fn := <-sse:
			b.safely("server-side emit", nil, fn)
		case <-done:
			return
		}
	}
}

// handle dispatches one message by channel. Payloads are read in place: go-redis
// gives a string, and the decoders only read their input.
func (a *Adapter) handle(m *redis.Message) {
	a.b.stats.received.Add(1)
	if len(m.Payload) > a.b.cfg.MaxMessageBytes {
		a.b.stats.oversized.Add(1)
		a.b.log.emit(slog.LevelWarn, "oversized", "redisadapter: message too large, dropped",
			slog.String("channel", m.Channel), slog.Int("bytes", len(m.Payload)), slog.Int("limit", a.b.cfg.MaxMessageBytes))
		return
	}
	payload := unsafe.Slice(unsafe.StringData(m.Payload), len(m.Payload))
	switch {
	case m.Pattern != "":
		a.b.safely("broadcast", payload, func() { a.onBroadcast(m.Channel, payload) })
	case m.Channel == a.ch.Request():
		a.b.safely("request", payload, func() { a.onRequest(payload) })
	case m.Channel == a.ch.Response() || m.Channel == a.ch.SpecificResponse(a.uid):
		a.b.safely("response", payload, func() { a.onResponse(payload) })
	default:
		a.b.stats.ignored.Add(1)
	}
}

// safely runs fn and turns a panic into a counted, logged error, so that one
// message cannot stop the ones after it.
func (b *Builder) safely(what string, payload []byte, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			b.stats.panics.Add(1)
			b.log.emit(slog.LevelError, "panic", "redisadapter: handler panicked",
				slog.String("what", what), slog.String("panic", fmt.Sprint(v)),
				slog.String("payload", prefixHex(payload)), slog.String("stack", string(debug.Stack())))
		}
	}()
	fn()
}

func (a *Adapter) malformed(what string, err error, payload []byte) {
	a.b.stats.malformed.Add(1)
	a.b.log.emit(slog.LevelWarn, "malformed", "redisadapter: malformed message dropped",
		slog.String("namespace", a.nspName), slog.String("channel", what),
		slog.String("error", err.Error()), slog.Int("bytes", len(payload)), slog.String("head", prefixHex(payload)))
}

func prefixHex(b []byte) string {
	if len(b) > 32 {
		return hex.EncodeToString(b[:32]) + "..."
	}
	return hex.EncodeToString(b)
}

// onBroadcast delivers a broadcast of another server or an emitter to the
// matching local sockets.
func (a *Adapter) onBroadcast(channel string, payload []byte) {
	room, ok := a.ch.RoomOf(channel)
	if !ok {
		a.b.stats.ignored.Add(1)
		return
	}
	// Like Node: a message on a room's channel is only decoded when the room
	// exists here.
	if room != "" {
		if !a.HasRoom(socket.Room(room)) {
			a.b.stats.ignored.Add(1)
			return
		}
	}
	lb, err := decode.Lazy(payload)
	if err != nil {
		a.malformed("broadcast", err, payload)
		return
	}
	if lb.UID == a.uid || lb.Nsp != a.nspName {
		a.b.stats.ignored.Add(1)
		return
	}
	o, err := outgoingFromWire(a.memory, lb)
	if err != nil {
		a.malformed("broadcast", err, payload)
		return
	}
	a.b.stats.delivered.Add(1)
	deliverLocal(a.memory, o, target{rooms: lb.Opts.Rooms, except: lb.Opts.Except})
}

func toParserPacket(p *wire.Packet) *parser.Packet {
	var data any = p.Data
	if p.Data == nil {
		data = []any{} // the Socket.IO encoder and Socket.onevent expect an array
	}
	return &parser.Packet{Type: fromWireType(p.Type), Nsp: p.Nsp, Data: data, Id: p.ID}
}
