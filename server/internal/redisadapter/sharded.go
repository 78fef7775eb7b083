package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
)

// maxChannelsPerCommand bounds the channels of one SSUBSCRIBE or SUNSUBSCRIBE when
// many rooms appear or go at once.
const maxChannelsPerCommand = 100

// shardedBus is the format of Node's createShardedAdapter (@socket.io/redis-adapter
// 8.3 on socket.io-adapter 2.5's ClusterAdapter, which counts servers with PUBSUB
// SHARDNUMSUB rather than heartbeats), Config.Sharded:
//
//   - it SSUBSCRIBEs to the namespace's main channel <key>#<nsp># and to its own
//     response channel <key>#<nsp>#<uid>#, and in the dynamic subscription modes to
//     <key>#<nsp>#<room># for each room it has (see wire.SubscriptionMode; socket
//     rooms too unless they have a Node socket id's length, since publishers
//     following Node's rule send to their channel);
//   - it exchanges ClusterMessages (wire.EncodeClusterMessage): broadcasts,
//     socketsJoin/Leave, disconnectSockets, fetchSockets, serverSideEmit with or
//     without acknowledgement, broadcasts with acknowledgements; answers go to
//     the requester's response channel;
//   - it drops its own messages (by uid) and other namespaces' (by nsp), and takes
//     the emitter's (uid "emitter") like any other.
//
// Room subscriptions change on a goroutine of their own, in order, so joining a
// room never waits for Redis; a caller that must know when a room's messages
// arrive waits with Adapter.AwaitRooms. go-redis subscribes again to every channel after a
// reconnection (a Redis restart). The channels of one namespace share one
// connection, so with Redis Cluster all of them must live on one shard; plain
// Redis and Sentinel setups have one shard.
type shardedBus struct {
	a    *Adapter
	ch   wire.ShardedChannels
	mode wire.SubscriptionMode
	// resp is this server's response channel.
	resp string

	rooms     roomSubscriptions
	roomsDone chan struct{} // closed when followRooms returns (dynamic modes)
}

// newUID returns 16 hex characters, like Node's cluster adapters.
func (s *shardedBus) newUID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

func (s *shardedBus) init(key, nsp, uid string) {
	s.ch = wire.ShardedChannels{Prefix: key, Nsp: nsp}
	s.resp = s.ch.Response(uid)
	s.roomsDone = make(chan struct{})
	s.rooms.init()
}

// subscribe subscribes to the main and response channels and, in the dynamic
// modes, starts following the rooms.
func (s *shardedBus) subscribe(ctx context.Context) (*redis.PubSub, []string) {
	a := s.a
	main := s.ch.Main()
	ps := a.b.cfg.Client.SSubscribe(ctx)
	// go-redis records the channels even when Redis cannot be reached now, and
	// subscribes to them again on every (re)connection.
	if err := ps.SSubscribe(ctx, main, s.resp); err != nil {
		a.b.cfg.Logger.Warn("redisadapter: ssubscribe failed; retrying in the background", "namespace", a.nspName, "error", err)
	}
	if s.mode != wire.SubscriptionStatic {
		a.On("create-room", func(args ...any) { s.roomChanged(args, true) })
		a.On("delete-room", func(args ...any) { s.roomChanged(args, false) })
		go s.followRooms(ps)
	} else {
		close(s.roomsDone)
	}
	return ps, []string{main, s.resp}
}

// stop waits for the room follower: no room subscription changes after it.
func (s *shardedBus) stop() { <-s.roomsDone }

func (s *shardedBus) publish(ctx context.Context, channel string, payload []byte) error {
	return s.a.b.cfg.Client.SPublish(ctx, channel, payload).Err()
}

// countServers counts the subscribers of the main channel. Emitters never
// subscribe, so they are not counted.
func (s *shardedBus) countServers(ctx context.Context) (int64, error) {
	return subscribers(s.a.b.cfg.Client.PubSubShardNumSub(ctx, s.ch.Main()), s.ch.Main())
}

// encode writes m as this server's ClusterMessage, for the channel the
// subscription mode gives it.
func (s *shardedBus) encode(m *wire.ClusterMessage) (string, []byte, error) {
	m.UID, m.Nsp = s.a.uid, s.a.nspName
	if m.Packet != nil && m.Packet.ID != nil {
		p := *m.Packet // acknowledgements go by the request id here
		p.ID = nil
		m.Packet = &p
	}
	payload, err := wire.EncodeClusterMessage(m)
	return s.ch.Publish(m, s.mode), payload, err
}

// respond sends an answer to the server that asked, on its response channel.
func (s *shardedBus) respond(requester string, m *wire.ClusterMessage) {
	a := s.a
	m.UID, m.Nsp = a.uid, a.nspName
	payload, err := wire.EncodeClusterMessage(m)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: cannot encode an answer",
			slog.String("type", m.Type.String()), slog.String("error", err.Error()))
		return
	}
	_ = a.publish(context.Background(), s.ch.Response(requester), payload)
}

// deliver decodes one message: on the response channel an answer to a request
// of ours; on the main channel or a room channel anything else (which may also be
// an answer, as Node's adapter accepts).
func (s *shardedBus) deliver(m *redis.Message, payload []byte) {
	a := s.a
	a.b.safely("sharded message", payload, func() {
		cm, err := decode.ClusterMessage(payload)
		if err != nil {
			a.malformed(m.Channel, err, payload)
			return
		}
		if m.Channel == s.resp {
			s.onResponse(cm)
			return
		}
		s.onMessage(cm)
	})
}

// onMessage applies a message of another server or an emitter.
func (s *shardedBus) onMessage(m *wire.ClusterMessage) {
	a := s.a
	if m.UID == a.uid || m.Nsp != a.nspName {
		a.b.stats.ignored.Add(1)
		return
	}
	switch m.Type {
	case wire.MessageBroadcast:
		a.b.stats.delivered.Add(1)
		if m.RequestID == "" {
			received, packet := a.now(), toParserPacket(m.Packet)
			a.memory.Broadcast(packet, fromWireOpts(m.Opts))
			if a.b.cfg.OnRelay != nil {
				var rooms []string
				if m.Opts != nil {
					rooms = m.Opts.Rooms
				}
				a.relayed(rooms, -1, received, func() *parser.Packet { return packet })
			}
			return
		}
		requester, id := m.UID, m.RequestID
		a.onBroadcastWithAck(m.Packet, m.Opts,
			func(n int64) {
				s.respond(requester, &wire.ClusterMessage{Type: wire.MessageBroadcastClientCount, RequestID: id, ClientCount: n})
			},
			func(first any) {
				s.respond(requester, &wire.ClusterMessage{Type: wire.MessageBroadcastAck, RequestID: id, Value: first})
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
		s.respond(m.UID, &wire.ClusterMessage{Type: wire.MessageFetchSocketsResponse, RequestID: m.RequestID, Sockets: a.localSocketInfos(m.Opts)})
	case wire.MessageServerSideEmit:
		a.b.stats.requests.Add(1)
		args := m.Args
		if m.RequestID != "" {
			requester, id := m.UID, m.RequestID
			args = withAnswer(args, func(first any) {
				s.respond(requester, &wire.ClusterMessage{Type: wire.MessageServerSideEmitResponse, RequestID: id, Value: first})
			})
		}
		a.onServerSideEmit(args)
	case wire.MessageFetchSocketsResponse, wire.MessageServerSideEmitResponse, wire.MessageBroadcastClientCount, wire.MessageBroadcastAck:
		s.onResponse(m)
	default:
		a.b.stats.ignored.Add(1) // heartbeats: the sharded adapter does not count servers by them
	}
}

// onResponse matches an answer to a request of ours.
func (s *shardedBus) onResponse(m *wire.ClusterMessage) {
	a := s.a
	p := a.reqs.get(m.RequestID)
	if p == nil {
		a.b.stats.ignored.Add(1) // too late, or not ours
		return
	}
	a.b.stats.responses.Add(1)
	switch {
	case p.kind == wire.RequestRemoteFetch && m.Type == wire.MessageFetchSocketsResponse:
		a.reqs.gather(m.RequestID, p, func(p *pending) bool {
			for _, info := range m.Sockets {
				p.sockets = append(p.sockets, remoteSocketFromInfo(info))
			}
			return true
		})
	case p.kind == wire.RequestServerSideEmit && m.Type == wire.MessageServerSideEmitResponse:
		a.reqs.ack(m.RequestID, p, m.Value)
	case p.kind == wire.RequestBroadcast && m.Type == wire.MessageBroadcastClientCount:
		p.countClients(m.ClientCount)
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
	// unconfirmed counts, per room channel, the SSUBSCRIBEs sent that Redis
	// has not confirmed yet; waiting holds the AwaitRooms calls for each.
	unconfirmed map[string]int
	waiting     map[string][]chan struct{}
}

func (r *roomSubscriptions) init() {
	r.pending = map[string]bool{}
	r.current = map[string]bool{}
	r.wake = make(chan struct{}, 1)
	r.unconfirmed = map[string]int{}
	r.waiting = map[string][]chan struct{}{}
}

// release wakes the AwaitRooms calls for channel (r.mu held).
func (r *roomSubscriptions) release(channel string) {
	for _, c := range r.waiting[channel] {
		close(c)
	}
	delete(r.waiting, channel)
}

// await returns nil when room's messages reach this server now: its channel is
// subscribed and confirmed, or the room is not (or no longer) one this server
// subscribes to; otherwise a channel closed when that is so.
func (s *shardedBus) await(room string) <-chan struct{} {
	ch := s.ch.Room(room)
	r := &s.rooms
	r.mu.Lock()
	defer r.mu.Unlock()
	want, changing := r.pending[room]
	switch {
	case changing && !want, !changing && !r.current[room]:
		return nil // going, or never subscribed (a socket room, say)
	case !changing && r.unconfirmed[ch] == 0:
		return nil
	}
	c := make(chan struct{})
	r.waiting[ch] = append(r.waiting[ch], c)
	return c
}

// confirmed records Redis's confirmation of an SSUBSCRIBE to channel (called by
// the adapter's read loop, in the order Redis answered).
func (s *shardedBus) confirmed(channel string) {
	r := &s.rooms
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.unconfirmed[channel]; n > 1 {
		r.unconfirmed[channel] = n - 1
		return
	}
	// go-redis subscribes again to every channel after a reconnection:
	// confirmations without a command of ours count for nothing.
	delete(r.unconfirmed, channel)
	r.release(channel)
}

// roomChanged records that a room appeared (create) or went, from the in-memory
// adapter's create-room and delete-room events; it never blocks.
func (s *shardedBus) roomChanged(args []any, create bool) {
	if len(args) == 0 {
		return
	}
	room, ok := args[0].(socket.Room)
	if !ok {
		return
	}
	if create {
		socketRoom := s.a.hasSocket(socket.SocketId(room))
		if !s.mode.SubscribeRoom(string(room), socketRoom) {
			return
		}
	}
	s.rooms.mu.Lock()
	s.rooms.pending[string(room)] = create
	s.rooms.mu.Unlock()
	select {
	case s.rooms.wake <- struct{}{}:
	default:
	}
}

// followRooms applies the recorded room changes, in batches, until Close. A
// room that appeared and went before it ran costs nothing.
func (s *shardedBus) followRooms(ps *redis.PubSub) {
	defer close(s.roomsDone)
	for {
		select {
		case <-s.a.done:
			return
		case <-s.rooms.wake:
		}
		s.rooms.mu.Lock()
		var add, del []string
		for room, want := range s.rooms.pending {
			ch := s.ch.Room(room)
			switch {
			case want && !s.rooms.current[room]:
				add = append(add, ch)
				s.rooms.current[room] = true
				s.rooms.unconfirmed[ch]++
			case !want && s.rooms.current[room]:
				del = append(del, ch)
				delete(s.rooms.current, room)
				// Left before Redis confirmed: nobody waits for it now.
				s.rooms.release(ch)
			case s.rooms.unconfirmed[ch] == 0:
				// Went and came back (or the reverse) in between: as it was.
				s.rooms.release(ch)
			}
		}
		clear(s.rooms.pending)
		s.rooms.mu.Unlock()
		s.applyRooms(del, ps.SUnsubscribe)
		s.applyRooms(add, ps.SSubscribe)
	}
}

func (s *shardedBus) applyRooms(channels []string, fn func(context.Context, ...string) error) {
	for len(channels) > 0 {
		n := min(len(channels), maxChannelsPerCommand)
		ctx, cancel := context.WithTimeout(context.Background(), s.a.b.cfg.PublishTimeout)
		// Failures need no retry: go-redis keeps the wanted channels and
		// subscribes to them when it reconnects.
		if err := fn(ctx, channels[:n]...); err != nil && !s.closing() {
			s.a.b.log.emit(slog.LevelWarn, "rooms", "redisadapter: room subscription change failed; applied on reconnection",
				slog.Int("channels", n), slog.String("error", err.Error()))
		}
		cancel()
		channels = channels[n:]
	}
}

// closing reports whether Close has begun.
func (s *shardedBus) closing() bool {
	select {
	case <-s.a.done:
		return true
	default:
		return false
	}
}

// roomChannels returns the room channels asked of go-redis.
func (s *shardedBus) roomChannels() []string {
	s.rooms.mu.Lock()
	defer s.rooms.mu.Unlock()
	out := make([]string, 0, len(s.rooms.current))
	for room := range s.rooms.current {
		out = append(out, s.ch.Room(room))
	}
	return out
}
