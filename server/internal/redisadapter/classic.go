package redisadapter

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
)

// classicBus is the format of Node's createAdapter (@socket.io/redis-adapter 8.x,
// classic pub/sub):
//
//   - broadcasts are msgpack messages on <key>#<nsp># (or <key>#<nsp>#<room># for
//     exactly one room), read with PSUBSCRIBE <key>#<nsp>#*;
//   - joins, leaves, disconnections, fetches, server-side emits and broadcasts
//     with acknowledgements are JSON requests on <key>-request#<nsp>#, answered
//     on <key>-response#<nsp># (or the requester's own response channel);
//   - servers are counted as the subscribers of the request channel (PUBSUB
//     NUMSUB), and the requests Node servers send that taskwire never does
//     (ALL_ROOMS, SOCKETS, the single-socket forms) are answered too.
type classicBus struct {
	a  *Adapter
	ch wire.Channels
}

func (c *classicBus) newUID() string { return randomID(8) }

func (c *classicBus) init(key, nsp, _ string) { c.ch = wire.Channels{Key: key, Nsp: nsp} }

func (c *classicBus) subscribe(ctx context.Context) (*redis.PubSub, []string) {
	a := c.a
	channels := []string{c.ch.Request(), c.ch.Response(), c.ch.SpecificResponse(a.uid)}
	// go-redis records the channels even when Redis cannot be reached now, and
	// subscribes to them on every (re)connection, the pattern first.
	ps := a.b.cfg.Client.PSubscribe(ctx, c.ch.BroadcastPattern())
	if err := ps.Subscribe(ctx, channels...); err != nil {
		a.b.cfg.Logger.Warn("redisadapter: subscribe failed; retrying in the background", "namespace", a.nspName, "error", err)
	}
	return ps, append([]string{c.ch.BroadcastPattern()}, channels...)
}

func (c *classicBus) stop() {}

func (c *classicBus) publish(ctx context.Context, channel string, payload []byte) error {
	return c.a.b.cfg.Client.Publish(ctx, channel, payload).Err()
}

func (c *classicBus) countServers(ctx context.Context) (int64, error) {
	return subscribers(c.a.b.cfg.Client.PubSubNumSub(ctx, c.ch.Request()), c.ch.Request())
}

// encode writes a broadcast as the msgpack broadcast message, and every other
// operation as the request of its type.
func (c *classicBus) encode(m *wire.ClusterMessage) (string, []byte, error) {
	a := c.a
	if m.Type == wire.MessageBroadcast && m.RequestID == "" {
		payload, err := wire.EncodeBroadcast(a.uid, m.Packet, m.Opts)
		return c.ch.Broadcast(m.Opts.Rooms), payload, err
	}
	r := wire.Request{UID: a.uid, RequestID: m.RequestID, Opts: m.Opts}
	switch m.Type {
	case wire.MessageBroadcast:
		r.Type, r.Packet = wire.RequestBroadcast, m.Packet
	case wire.MessageSocketsJoin:
		r.Type, r.Rooms = wire.RequestRemoteJoin, m.Rooms
	case wire.MessageSocketsLeave:
		r.Type, r.Rooms = wire.RequestRemoteLeave, m.Rooms
	case wire.MessageDisconnectSockets:
		r.Type, r.Close = wire.RequestRemoteDisconnect, m.Close
	case wire.MessageFetchSockets:
		r.Type = wire.RequestRemoteFetch
	case wire.MessageServerSideEmit:
		r.Type, r.Data = wire.RequestServerSideEmit, m.Args
	default:
		return "", nil, fmt.Errorf("no classic request for %v", m.Type)
	}
	payload, err := wire.EncodeRequest(&r)
	return c.ch.Request(), payload, err
}

// deliver dispatches one message by channel.
func (c *classicBus) deliver(m *redis.Message, payload []byte) {
	b := c.a.b
	switch {
	case m.Pattern != "":
		b.safely("broadcast", payload, func() { c.onBroadcast(m.Channel, payload) })
	case m.Channel == c.ch.Request():
		b.safely("request", payload, func() { c.onRequest(payload) })
	case m.Channel == c.ch.Response() || m.Channel == c.ch.SpecificResponse(c.a.uid):
		b.safely("response", payload, func() { c.onResponse(payload) })
	default:
		b.stats.ignored.Add(1)
	}
}

// onBroadcast delivers a broadcast of another server or an emitter to the
// matching local sockets.
func (c *classicBus) onBroadcast(channel string, payload []byte) {
	a := c.a
	received := a.now()
	room, ok := c.ch.RoomOf(channel)
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
	n := deliverLocal(a.memory, o, target{rooms: lb.Opts.Rooms, except: lb.Opts.Except})
	a.relayed(lb.Opts.Rooms, n, received, o.parserPacket)
}

// onRequest handles a message of the request channel.
func (c *classicBus) onRequest(payload []byte) {
	a := c.a
	r, err := decode.Request(payload)
	if err != nil {
		a.malformed("request", err, payload)
		return
	}
	if r.UID == a.uid {
		// Our own: joins, leaves and disconnections were applied when they
		// were published; our queries are answered by the others.
		a.b.stats.ignored.Add(1)
		return
	}
	a.b.stats.requests.Add(1)
	switch r.Type {
	case wire.RequestSockets:
		c.respond(r, &wire.Response{Type: wire.RequestSockets, RequestID: r.RequestID, SocketIDs: a.socketIDs(r.Rooms)})
	case wire.RequestAllRooms:
		c.respond(r, &wire.Response{Type: wire.RequestAllRooms, RequestID: r.RequestID, Rooms: a.LocalRooms("")})
	case wire.RequestRemoteJoin, wire.RequestRemoteLeave:
		if r.Opts == nil {
			c.legacySocket(r)
			return
		}
		if r.Type == wire.RequestRemoteJoin {
			a.memory.AddSockets(fromWireOpts(r.Opts), roomList(r.Rooms))
		} else {
			a.memory.DelSockets(fromWireOpts(r.Opts), roomList(r.Rooms))
		}
	case wire.RequestRemoteDisconnect:
		if r.Opts == nil {
			c.legacySocket(r)
			return
		}
		a.memory.DisconnectSockets(fromWireOpts(r.Opts), r.Close)
	case wire.RequestRemoteFetch:
		c.respond(r, &wire.Response{Type: wire.RequestRemoteFetch, RequestID: r.RequestID, Sockets: a.localSocketInfos(r.Opts)})
	case wire.RequestServerSideEmit:
		args := r.Data
		if r.RequestID != "" {
			args = withAnswer(args, func(first any) {
				c.respond(r, &wire.Response{Type: wire.RequestServerSideEmit, RequestID: r.RequestID, Data: first})
			})
		}
		a.onServerSideEmit(args)
	case wire.RequestBroadcast:
		a.onBroadcastWithAck(r.Packet, r.Opts,
			func(n int64) {
				c.respond(r, &wire.Response{Type: wire.RequestBroadcastClientCount, RequestID: r.RequestID, ClientCount: n})
			},
			func(first any) {
				c.respond(r, &wire.Response{Type: wire.RequestBroadcastAck, RequestID: r.RequestID, Packet: first})
			})
	default:
		a.b.stats.ignored.Add(1)
	}
}

// legacySocket applies the single-socket form of REMOTE_JOIN, REMOTE_LEAVE and
// REMOTE_DISCONNECT ({sid, room} or {sid, close}) that adapters before 7.x sent.
// Those adapters wait for an answer we do not send.
func (c *classicBus) legacySocket(r *wire.Request) {
	s, ok := c.a.Nsp().Sockets().Load(socket.SocketId(r.Sid))
	if !ok {
		return
	}
	switch r.Type {
	case wire.RequestRemoteJoin:
		s.Join(socket.Room(r.Room))
	case wire.RequestRemoteLeave:
		s.Leave(socket.Room(r.Room))
	case wire.RequestRemoteDisconnect:
		s.Disconnect(r.Close)
	}
}

// respond publishes the answer to r on the shared response channel (or the
// requester's own, see Config.PublishOnSpecificResponseChannel).
func (c *classicBus) respond(r *wire.Request, resp *wire.Response) {
	a := c.a
	payload, err := wire.EncodeResponse(resp)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: cannot encode an answer",
			slog.String("type", resp.Type.String()), slog.String("error", err.Error()))
		return
	}
	channel := c.ch.Response()
	if a.b.cfg.PublishOnSpecificResponseChannel && r.UID != "" {
		channel = c.ch.SpecificResponse(r.UID)
	}
	_ = a.publish(context.Background(), channel, payload)
}

// onResponse handles a message of a response channel.
func (c *classicBus) onResponse(payload []byte) {
	a := c.a
	r, err := decode.Response(payload)
	if err != nil {
		a.malformed("response", err, payload)
		return
	}
	p := a.reqs.get(r.RequestID)
	if p == nil {
		a.b.stats.ignored.Add(1) // an answer to another server, or too late
		return
	}
	a.b.stats.responses.Add(1)
	switch p.kind {
	case wire.RequestRemoteFetch:
		// Node counts an answer without a sockets array but never completes
		// the request with it; so do we.
		withSockets := r.Has["sockets"]
		a.reqs.gather(r.RequestID, p, func(p *pending) bool {
			for _, s := range r.Sockets {
				if rs, ok := remoteSocketFrom(s); ok {
					p.sockets = append(p.sockets, rs)
				}
			}
			return withSockets
		})
		if !withSockets {
			a.malformed("response", fmt.Errorf("REMOTE_FETCH answer without sockets"), payload)
		}
	case wire.RequestServerSideEmit:
		a.reqs.ack(r.RequestID, p, r.Data)
	case wire.RequestBroadcast:
		if r.Type == nil {
			a.malformed("response", fmt.Errorf("broadcast ack answer without type"), payload)
			return
		}
		switch *r.Type {
		case wire.RequestBroadcastClientCount:
			p.countClients(r.ClientCount)
		case wire.RequestBroadcastAck:
			p.onAck([]any{r.Packet}, nil)
		}
	}
}
