package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

// NamespaceAdapter is what the adapter of a namespace offers in both modes
// (*Adapter, classic; *ShardedAdapter, sharded) besides socket.Adapter: its uid and
// the context-aware variants of the calls that publish, which report errors, and
// cheap questions about the local rooms.
type NamespaceAdapter interface {
	socket.Adapter
	UID() string
	// HasRoom reports whether room holds a socket of this server.
	HasRoom(room socket.Room) bool
	// LocalRooms returns the rooms holding sockets of this server whose names
	// start with prefix.
	LocalRooms(prefix string) []string
	AddSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error
	DelSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error
	DisconnectSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, close bool) error
}

var (
	_ NamespaceAdapter = (*Adapter)(nil)
	_ NamespaceAdapter = (*ShardedAdapter)(nil)
)

// ShardedAdapter is the adapter of one namespace in sharded mode (Config.Sharded),
// compatible with Node's createShardedAdapter (@socket.io/redis-adapter 8.3 on
// socket.io-adapter 2.5's ClusterAdapter, which counts servers with PUBSUB
// SHARDNUMSUB rather than heartbeats):
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
// room never waits for Redis. go-redis subscribes again to every channel after a
// reconnection (a Redis restart). The channels of one namespace share one
// connection, so with Redis Cluster all of them must live on one shard; plain
// Redis and Sentinel setups have one shard.
type ShardedAdapter struct {
	*memory

	b       *Builder
	uid     string
	nspName string
	ch      wire.ShardedChannels
	mode    wire.SubscriptionMode
	valid   bool

	ps         *redis.PubSub
	subscribed chan struct{}
	done       chan struct{}
	loopDone   chan struct{}
	roomsDone  chan struct{} // closed when followRooms returns (dynamic modes)
	closeOnce  sync.Once
	sse        chan func()
	rooms      roomSubscriptions

	reqs requests // our requests waiting for answers
}

func (b *Builder) newSharded(nsp socket.Namespace) socket.Adapter {
	a := &ShardedAdapter{memory: newMemory(), b: b}
	a.Prototype(a)
	a.Construct(nsp)

	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.sharded[a] = struct{}{}
	}
	b.mu.Unlock()
	if closed || !a.valid {
		a.valid = false
		return a
	}
	a.start()
	t := time.NewTimer(b.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case <-a.subscribed:
	case <-t.C:
		b.cfg.Logger.Warn("redisadapter: sharded subscription not confirmed yet; it will be retried in the background",
			"namespace", a.nspName, "timeout", b.cfg.RequestTimeout)
	}
	return a
}

// Construct sets a up for nsp (called by Builder.New).
func (a *ShardedAdapter) Construct(nsp socket.Namespace) {
	a.memory.Construct(nsp)
	var id [8]byte
	_, _ = rand.Read(id[:])
	a.uid = hex.EncodeToString(id[:]) // 16 hex characters, like Node's cluster adapters
	a.nspName = nsp.Name()
	if name, err := wire.NormalizeNamespace(a.nspName); err != nil || name != a.nspName {
		a.b.cfg.Logger.Error("redisadapter: namespace name unusable in Redis channels; it works on this server only",
			"namespace", a.nspName)
	} else {
		a.valid = true
	}
	a.ch = wire.ShardedChannels{Prefix: a.b.cfg.Key, Nsp: a.nspName}
	a.mode = a.b.cfg.SubscriptionMode
	a.subscribed = make(chan struct{})
	a.done = make(chan struct{})
	a.loopDone = make(chan struct{})
	a.roomsDone = make(chan struct{})
	a.sse = make(chan func(), sseQueue)
	a.rooms.init()
}

// UID returns the id this server uses in its messages.
func (a *ShardedAdapter) UID() string { return a.uid }

// Close stops the subscriptions and fails pending requests.
func (a *ShardedAdapter) Close() {
	a.closeOnce.Do(func() {
		close(a.done)
		if a.ps != nil {
			if a.mode != wire.SubscriptionStatic {
				<-a.roomsDone // no room subscription change after this
			}
			_ = a.ps.Close()
			<-a.loopDone
		}
		a.reqs.failAll(errors.New("redisadapter: adapter closed"))
		a.b.mu.Lock()
		delete(a.b.sharded, a)
		a.b.mu.Unlock()
	})
}

// publish SPUBLISHes m on the channel the subscription mode gives it, bounded by
// PublishTimeout.
func (a *ShardedAdapter) publish(ctx context.Context, m *wire.ClusterMessage) error {
	return a.publishOn(ctx, a.ch.Publish(m, a.mode), m)
}

func (a *ShardedAdapter) publishOn(ctx context.Context, channel string, m *wire.ClusterMessage) error {
	m.UID, m.Nsp = a.uid, a.nspName
	payload, err := wire.EncodeClusterMessage(m)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: message not published",
			slog.String("type", m.Type.String()), slog.String("error", err.Error()))
		return fmt.Errorf("redisadapter: encode %v: %w", m.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.b.cfg.PublishTimeout)
	defer cancel()
	if err := a.b.cfg.Client.SPublish(ctx, channel, payload).Err(); err != nil {
		a.b.stats.publishErrors.Add(1)
		a.b.log.emit(slog.LevelError, "publish", "redisadapter: publish failed",
			slog.String("channel", channel), slog.String("error", err.Error()))
		return fmt.Errorf("redisadapter: publish to %s: %w", channel, err)
	}
	a.b.stats.published.Add(1)
	return nil
}

// respond sends an answer to the server that asked, on its response channel.
func (a *ShardedAdapter) respond(requester string, m *wire.ClusterMessage) {
	_ = a.publishOn(context.Background(), a.ch.Response(requester), m)
}

// wirePacket converts an outgoing packet, normalising its data in place (see
// normalizeArgs) so that local delivery sends what remote servers will.
func wirePacket(packet *parser.Packet, nsp string) (*wire.Packet, error) {
	t, err := toWireType(packet.Type)
	if err != nil {
		return nil, err
	}
	data, err := normalizeArgs(packet.Data)
	if err != nil {
		return nil, err
	}
	packet.Data = data
	return &wire.Packet{Type: t, Data: data, Nsp: nsp}, nil
}

// Broadcast sends packet to the matching sockets of this server and, unless the
// local flag is set, publishes it for the other servers.
func (a *ShardedAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if isLocal(opts) || !a.valid {
		a.memory.Broadcast(packet, opts)
		return
	}
	wp, err := wirePacket(packet, a.nspName)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: broadcast not published", slog.String("error", err.Error()))
	}
	a.memory.Broadcast(packet, opts)
	if err == nil {
		_ = a.publish(context.Background(), &wire.ClusterMessage{Type: wire.MessageBroadcast, Packet: wp, Opts: toWireOpts(opts)})
	}
}

// BroadcastWithAck broadcasts packet to every server and collects the clients'
// acknowledgements, as Broadcast does in classic mode.
func (a *ShardedAdapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCountCallback func(uint64), ack socket.Ack) {
	if isLocal(opts) || !a.valid {
		a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
		return
	}
	wp, err := wirePacket(packet, a.nspName)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: broadcast with ack not published", slog.String("error", err.Error()))
		a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
		return
	}
	id := randomID(12)
	timeout := a.b.cfg.RequestTimeout
	if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil {
		timeout = *opts.Flags.Timeout
	}
	a.reqs.register(id, &pending{kind: wire.RequestBroadcast, clientCount: clientCountCallback, onAck: ack, keep: true}, timeout)
	a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
	// Always the main channel: the count of answers is that of every server.
	m := &wire.ClusterMessage{Type: wire.MessageBroadcast, RequestID: id, Packet: wp, Opts: toWireOpts(opts)}
	if err := a.publishOn(context.Background(), a.ch.Main(), m); err != nil {
		a.reqs.unregister(id)
	}
}

// AddSockets makes the matching sockets of every server join rooms.
func (a *ShardedAdapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	_ = a.AddSocketsContext(context.Background(), opts, rooms)
}

// AddSocketsContext is AddSockets that reports a failed publish. The join is
// applied to this server's sockets before it returns.
func (a *ShardedAdapter) AddSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error {
	a.memory.AddSockets(opts, rooms)
	if isLocal(opts) || !a.valid {
		return nil
	}
	return a.publish(ctx, &wire.ClusterMessage{Type: wire.MessageSocketsJoin, Opts: toWireOpts(opts), Rooms: roomsOf(rooms)})
}

// DelSockets makes the matching sockets of every server leave rooms.
func (a *ShardedAdapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	_ = a.DelSocketsContext(context.Background(), opts, rooms)
}

// DelSocketsContext is DelSockets that reports a failed publish.
func (a *ShardedAdapter) DelSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error {
	a.memory.DelSockets(opts, rooms)
	if isLocal(opts) || !a.valid {
		return nil
	}
	return a.publish(ctx, &wire.ClusterMessage{Type: wire.MessageSocketsLeave, Opts: toWireOpts(opts), Rooms: roomsOf(rooms)})
}

// DisconnectSockets disconnects the matching sockets of every server; close also
// closes their connections.
func (a *ShardedAdapter) DisconnectSockets(opts *socket.BroadcastOptions, close bool) {
	_ = a.DisconnectSocketsContext(context.Background(), opts, close)
}

// DisconnectSocketsContext is DisconnectSockets that reports a failed publish.
func (a *ShardedAdapter) DisconnectSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, close bool) error {
	var err error
	if !isLocal(opts) && a.valid {
		err = a.publish(ctx, &wire.ClusterMessage{Type: wire.MessageDisconnectSockets, Opts: toWireOpts(opts), Close: close})
	}
	a.memory.DisconnectSockets(opts, close)
	return err
}

// ServerCount returns the number of servers subscribed to the namespace's main
// channel (PUBSUB SHARDNUMSUB), at least 1 (this one). Emitters never subscribe,
// so they are not counted.
func (a *ShardedAdapter) ServerCount() int64 {
	if !a.valid {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.RequestTimeout)
	defer cancel()
	res, err := a.b.cfg.Client.PubSubShardNumSub(ctx, a.ch.Main()).Result()
	if err != nil {
		a.b.log.emit(slog.LevelError, "numsub", "redisadapter: PUBSUB SHARDNUMSUB failed", slog.String("error", err.Error()))
		return 1
	}
	if n := res[a.ch.Main()]; n > 1 {
		return n
	}
	return 1
}

// ServerSideEmit sends [event, args...] to the other servers of the cluster. When
// the last element is a socket.Ack, it is called once every other server answered,
// or after RequestTimeout with the answers so far and an error.
func (a *ShardedAdapter) ServerSideEmit(packet []any) error {
	if len(packet) == 0 {
		return errors.New("redisadapter: server-side emit without an event name")
	}
	if !a.valid {
		return errors.New("redisadapter: namespace is local only")
	}
	ack, withAck := packet[len(packet)-1].(socket.Ack)
	if !withAck {
		return a.publish(context.Background(), &wire.ClusterMessage{Type: wire.MessageServerSideEmit, Args: packet})
	}
	data := packet[:len(packet)-1]
	expected := a.ServerCount() - 1
	if expected <= 0 {
		go ack([]any{}, nil)
		return nil
	}
	id := randomID(12)
	a.reqs.register(id, &pending{kind: wire.RequestServerSideEmit, expected: expected, acks: []any{},
		onAck: func(responses []any, err error) { ack(responses, err) }}, a.b.cfg.RequestTimeout)
	if err := a.publish(context.Background(), &wire.ClusterMessage{Type: wire.MessageServerSideEmit, RequestID: id, Args: data}); err != nil {
		a.reqs.unregister(id)
		return err
	}
	return nil
}

// FetchSockets returns the matching sockets of every server: this server's and
// the other servers' answers (an error after the timeout flag, or RequestTimeout,
// when some server did not answer). The callback runs on a goroutine of its own.
func (a *ShardedAdapter) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(cb func([]socket.SocketDetails, error)) {
		var local []socket.SocketDetails
		a.memory.FetchSockets(opts)(func(s []socket.SocketDetails, _ error) { local = s })
		if isLocal(opts) || !a.valid {
			cb(local, nil)
			return
		}
		expected := a.ServerCount() - 1
		if expected <= 0 {
			cb(local, nil)
			return
		}
		timeout := a.b.cfg.RequestTimeout
		if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil {
			timeout = *opts.Flags.Timeout
		}
		id := randomID(12)
		a.reqs.register(id, &pending{kind: wire.RequestRemoteFetch, expected: expected, sockets: local, onSockets: cb}, timeout)
		if err := a.publish(context.Background(), &wire.ClusterMessage{Type: wire.MessageFetchSockets, RequestID: id, Opts: toWireOpts(opts)}); err != nil {
			if a.reqs.unregister(id) != nil {
				go cb(nil, err)
			}
		}
	}
}
