package redisadapter

import (
	"context"
	"log/slog"
	"sync"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
)

// maxChannelsPerCommand bounds the channels of one SSUBSCRIBE or SUNSUBSCRIBE when
// many rooms appear or go at once.
const maxChannelsPerCommand = 100

// start subscribes to the main and response channels on a connection of its own
// and starts the goroutines that read them, run server-side emit handlers and
// follow the rooms (dynamic modes).
func (a *ShardedAdapter) start() {
	ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.RequestTimeout)
	defer cancel()
	main, resp := a.ch.Main(), a.ch.Response(a.uid)
	a.ps = a.b.cfg.Client.SSubscribe(ctx)
	// go-redis records the channels even when Redis cannot be reached now, and
	// subscribes to them again on every (re)connection.
	if err := a.ps.SSubscribe(ctx, main, resp); err != nil {
		a.b.cfg.Logger.Warn("redisadapter: ssubscribe failed; retrying in the background", "namespace", a.nspName, "error", err)
	}
	if a.mode != wire.SubscriptionStatic {
		a.On("create-room", func(args ...any) { a.roomChanged(args, true) })
		a.On("delete-room", func(args ...any) { a.roomChanged(args, false) })
		go a.followRooms()
	}
	msgs := a.ps.ChannelWithSubscriptions(redis.WithChannelSize(channelSize))
	go a.loop(msgs, main, resp)
	go a.b.runServerSideEmits(a.sse, a.done)
}

// loop handles every message in the order Redis delivered it, on one goroutine.
func (a *ShardedAdapter) loop(msgs <-chan any, main, resp string) {
	defer close(a.loopDone)
	confirmed := map[string]bool{}
	for m := range msgs {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "ssubscribe" {
				continue
			}
			a.b.stats.subscriptions.Add(1)
			if (m.Channel == main || m.Channel == resp) && !confirmed[m.Channel] {
				confirmed[m.Channel] = true
				if len(confirmed) == 2 {
					close(a.subscribed)
				}
			} else if m.Channel == main {
				// go-redis subscribes again after a reconnection.
				if fn := a.b.cfg.OnResubscribe; fn != nil {
					go fn(a.nspName)
				}
			}
		case *redis.Message:
			a.handle(m, resp)
		}
	}
}

// handle decodes one message: on the response channel an answer to a request
// of ours; on the main channel or a room channel anything else (which may also be
// an answer, as Node's adapter accepts).
func (a *ShardedAdapter) handle(m *redis.Message, resp string) {
	a.b.stats.received.Add(1)
	if len(m.Payload) > a.b.cfg.MaxMessageBytes {
		a.b.stats.oversized.Add(1)
		a.b.log.emit(slog.LevelWarn, "oversized", "redisadapter: message too large, dropped",
			slog.String("channel", m.Channel), slog.Int("bytes", len(m.Payload)), slog.Int("limit", a.b.cfg.MaxMessageBytes))
		return
	}
	// Read in place: go-redis gives a string, and the decoder only reads it.
	payload := unsafe.Slice(unsafe.StringData(m.Payload), len(m.Payload))
	a.b.safely("sharded message", payload, func() {
		cm, err := decode.ClusterMessage(payload)
		if err != nil {
			a.b.stats.malformed.Add(1)
			a.b.log.emit(slog.LevelWarn, "malformed", "redisadapter: malformed message dropped",
				slog.String("namespace", a.nspName), slog.String("channel", m.Channel),
				slog.String("error", err.Error()), slog.Int("bytes", len(payload)), slog.String("head", prefixHex(payload)))
			return
		}
		if m.Channel == resp {
			a.onResponse(cm)
			return
		}
		a.onMessage(cm)
	})
}

// onMessage applies a message of another server or an emitter.
func (a *ShardedAdapter) onMessage(m *wire.ClusterMessage) {
	if m.UID == a.uid || m.Nsp != a.nspName {
		a.b.stats.ignored.Add(1)
		return
	}
	switch m.Type {
	case wire.MessageBroadcast:
		a.b.stats.delivered.Add(1)
		if m.RequestID == "" {
			a.memory.Broadcast(toParserPacket(m.Packet), fromWireOpts(m.Opts))
			return
		}
		requester, id := m.UID, m.RequestID
		a.memory.BroadcastWithAck(toParserPacket(m.Packet), fromWireOpts(m.Opts),
			func(n uint64) {
				a.respond(requester, &wire.ClusterMessage{Type: wire.MessageBroadcastClientCount, RequestID: id, ClientCount: int64(n)})
			},
			func(answer []any, _ error) {
				var first any
				if len(answer) > 0 {
					first = answer[0]
				}
				a.respond(requester, &wire.ClusterMessage{Type: wire.MessageBroadcastAck, RequestID: id, Value: first})
			})
	case wire.MessageSocketsJoin:
		a.b.stats.requests.Add(1)
		a.memory.AddSockets(fromWireOpts(m.Opts), roomList(m.Rooms))
	case wire.MessageSocketsLeave:
		a.b.stats.requests.Add(1)
		a.memory.DelSockets(fromWireOpts(m.Opts), roomList(m.Rooms))
	case wire.MessageDisconnectSockets:
		a.b.stats.requests.Add(1)
		a.memory.DisconnectSockets(fromWireOpts(m.Opts), m.Close)
	case wire.MessageFetchSockets:
		a.b.stats.requests.Add(1)
		var infos []wire.SocketInfo
		a.memory.FetchSockets(fromWireOpts(m.Opts))(func(list []socket.SocketDetails, _ error) {
			infos = make([]wire.SocketInfo, 0, len(list))
			for _, s := range list {
				infos = append(infos, socketInfo(s))
			}
		})
		a.respond(m.UID, &wire.ClusterMessage{Type: wire.MessageFetchSocketsResponse, RequestID: m.RequestID, Sockets: infos})
	case wire.MessageServerSideEmit:
		a.b.stats.requests.Add(1)
		a.onServerSideEmit(m)
	case wire.MessageFetchSocketsResponse, wire.MessageServerSideEmitResponse, wire.MessageBroadcastClientCount, wire.MessageBroadcastAck:
		a.onResponse(m)
	default:
		a.b.stats.ignored.Add(1) // heartbeats: the sharded adapter does not count servers by them
	}
}

func (a *ShardedAdapter) onServerSideEmit(m *wire.ClusterMessage) {
	args := m.Args
	if m.RequestID != "" {
		requester, id := m.UID, m.RequestID
		args = withAnswer(args, func(first any) {
			a.respond(requester, &wire.ClusterMessage{Type: wire.MessageServerSideEmitResponse, RequestID: id, Value: first})
		})
	}
	// Handlers run on a goroutine of their own, in order, so that a slow handler
	// cannot hold up broadcasts.
	fn := func() { a.Nsp().OnServerSideEmit(args) }
	select {
	case a.sse <- fn:
	case <-a.done:
	}
}

// onResponse matches an answer to a request of ours.
func (a *ShardedAdapter) onResponse(m *wire.ClusterMessage) {
	p := a.reqs.get(m.RequestID)
	if p == nil {
		a.b.stats.ignored.Add(1) // too late, or not ours
		return
	}
	a.b.stats.responses.Add(1)
	switch {
	case p.kind == wire.RequestRemoteFetch && m.Type == wire.MessageFetchSocketsResponse:
		a.reqs.gather(m.RequestID, p, func(p *pending) bool {
			for _, s := range m.Sockets {
				p.sockets = append(p.sockets, remoteSocketFromInfo(s))
			}
			return true
		})
	case p.kind == wire.RequestServerSideEmit && m.Type == wire.MessageServerSideEmitResponse:
		a.reqs.gather(m.RequestID, p, func(p *pending) bool {
			p.acks = append(p.acks, m.Value)
			return true
		})
	case p.kind == wire.RequestBroadcast && m.Type == wire.MessageBroadcastClientCount:
		if m.ClientCount >= 0 {
			p.clientCount(uint64(m.ClientCount))
		}
	case p.kind == wire.RequestBroadcast && m.Type == wire.MessageBroadcastAck:
		p.onAck([]any{m.Value}, nil)
	default:
		a.b.stats.malformed.Add(1)
		a.b.log.emit(slog.LevelWarn, "malformed", "redisadapter: answer of the wrong type dropped",
			slog.String("type", m.Type.String()), slog.String("requestId", m.RequestID))
	}
}

func remoteSocketFromInfo(s wire.SocketInfo) *remoteSocket {
	r, _ := remoteSocketFrom(map[string]any{"id": s.ID, "handshake": s.Handshake, "data": s.Data, "rooms": toAnyList(s.Rooms)})
	return r
}

func toAnyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// roomSubscriptions holds the room channels to subscribe to or leave: room
// events only record what they want here, and followRooms applies it.
type roomSubscriptions struct {
	mu      sync.Mutex
	pending map[string]bool // room -> subscribed wanted
	current map[string]bool // rooms subscribed to (asked of go-redis)
	wake    chan struct{}
}

func (r *roomSubscriptions) init() {
	r.pending = map[string]bool{}
	r.current = map[string]bool{}
	r.wake = make(chan struct{}, 1)
}

// roomChanged records that a room appeared (create) or went, from the in-memory
// adapter's create-room and delete-room events; it never blocks.
func (a *ShardedAdapter) roomChanged(args []any, create bool) {
	if len(args) == 0 {
		return
	}
	room, ok := args[0].(socket.Room)
	if !ok {
		return
	}
	if create {
		socketRoom := a.hasSocket(socket.SocketId(room))
		if !a.mode.SubscribeRoom(string(room), socketRoom) {
			return
		}
	}
	a.rooms.mu.Lock()
	a.rooms.pending[string(room)] = create
	a.rooms.mu.Unlock()
	select {
	case a.rooms.wake <- struct{}{}:
	default:
	}
}

// followRooms applies the recorded room changes, in batches, until Close. A
// room that appeared and went before it ran costs nothing.
func (a *ShardedAdapter) followRooms() {
	defer close(a.roomsDone)
	for {
		select {
		case <-a.done:
			return
		case <-a.rooms.wake:
		}
		a.rooms.mu.Lock()
		var add, del []string
		for room, want := range a.rooms.pending {
			switch {
			case want && !a.rooms.current[room]:
				add = append(add, a.ch.Room(room))
				a.rooms.current[room] = true
			case !want && a.rooms.current[room]:
				del = append(del, a.ch.Room(room))
				delete(a.rooms.current, room)
			}
		}
		clear(a.rooms.pending)
		a.rooms.mu.Unlock()
		a.applyRooms(del, a.ps.SUnsubscribe)
		a.applyRooms(add, a.ps.SSubscribe)
	}
}

func (a *ShardedAdapter) applyRooms(channels []string, fn func(context.Context, ...string) error) {
	for len(channels) > 0 {
		n := min(len(channels), maxChannelsPerCommand)
		ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.PublishTimeout)
		// Failures need no retry: go-redis keeps the wanted channels and
		// subscribes to them when it reconnects.
		if err := fn(ctx, channels[:n]...); err != nil && !a.closing() {
			a.b.log.emit(slog.LevelWarn, "rooms", "redisadapter: room subscription change failed; applied on reconnection",
				slog.Int("channels", n), slog.String("error", err.Error()))
		}
		cancel()
		channels = channels[n:]
	}
}

// closing reports whether Close has begun.
func (a *ShardedAdapter) closing() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// RoomChannels returns the room channels this adapter asked to subscribe to
// (dynamic modes), for tests and diagnostics.
func (a *ShardedAdapter) RoomChannels() []string {
	a.rooms.mu.Lock()
	defer a.rooms.mu.Unlock()
	out := make([]string, 0, len(a.rooms.current))
	for room := range a.rooms.current {
		out = append(out, a.ch.Room(room))
	}
	return out
}
