// Package redisadapter is a Socket.IO adapter for github.com/zishang520/socket.io/v2
// that connects the servers of a cluster through Redis pub/sub, in the formats of
// Node's @socket.io/redis-adapter 8.x: Go and Node servers can share one cluster,
// and @socket.io/redis-emitter (or taskwire's own emitter) can reach the sockets of
// both. Every message is written by the emitter/wire package, the one the emitter
// publishes with, and read by the decode package.
//
// One Adapter does the work of a namespace in both of Node's modes; what differs
// is its bus (see bus): the classic one (createAdapter: PUBLISH/PSUBSCRIBE,
// broadcasts in msgpack, requests and answers in JSON on their own channels) or the
// sharded one (createShardedAdapter: SPUBLISH/SSUBSCRIBE, ClusterMessages on the
// namespace's channel, answers on the requester's), chosen by Config.Sharded.
//
// Each namespace gets an Adapter that keeps its local rooms in a compact index of
// its own (see memory; socket.io-go's in-memory adapter costs three times as much
// per socket) and
//
//   - publishes broadcasts, room joins and leaves, disconnections and server-side
//     emits, and applies them locally too;
//   - reads, on one dedicated connection and one goroutine (so in publish order),
//     the broadcasts and requests of other servers and emitters, and answers the
//     requests Node servers wait for (ALL_ROOMS, REMOTE_FETCH, SOCKETS, acks).
//
// Bad messages are counted (see Stats), logged at a limited rate and dropped; they
// never stop the messages after them. The subscription survives Redis restarts
// (go-redis reconnects and subscribes again); publishing while Redis is away fails
// after Config.PublishTimeout with an error that is logged.
package redisadapter

import (
	"context"
	"crypto/rand"
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

// Config configures a Builder.
type Config struct {
	// Client is the Redis client used to publish and to create the subscription
	// connections (one per namespace). Required.
	Client redis.UniversalClient
	// Key is the channel prefix; it must match the other servers' and emitters'.
	// Default "socket.io".
	Key string
	// RequestTimeout bounds cluster requests (fetchSockets, serverSideEmit with
	// an acknowledgement, broadcasts with acknowledgements) and the wait for the
	// subscription at start. Default 5s.
	RequestTimeout time.Duration
	// PublishTimeout bounds every publish. Default 3s.
	PublishTimeout time.Duration
	// MaxMessageBytes drops larger messages unread. Default 16 MiB.
	MaxMessageBytes int
	// PublishOnSpecificResponseChannel answers requests on the requester's own
	// response channel (<key>-response#<nsp>#<uid>#) instead of the shared one,
	// like Node's option of that name. Node 8.x servers listen on both.
	PublishOnSpecificResponseChannel bool
	// Sharded selects the sharded mode (Redis 7 SPUBLISH/SSUBSCRIBE), compatible
	// with Node's createShardedAdapter, instead of the classic pub/sub one; Key is
	// then its channelPrefix. See shardedBus.
	Sharded bool
	// SubscriptionMode is the subscriptionMode of the sharded mode; default
	// wire.SubscriptionDynamic, Node's default. Every server of a cluster must use
	// the same.
	SubscriptionMode wire.SubscriptionMode
	// Logger receives warnings and errors. Default slog.Default().
	Logger *slog.Logger
	// OnResubscribe, when set, is called (on a goroutine of its own) with the
	// namespace name each time the adapter's subscriptions are established again
	// after the connection to Redis was lost. Messages published while the
	// subscription was down never reach this server, so this is the moment to
	// resend state to the local sockets.
	OnResubscribe func(nsp string)
	// OnRelay, when set, is called on the subscription's goroutine after each
	// broadcast read from Redis was written to the local sockets (for traces).
	// It must be quick: the next message waits for it. Nil costs nothing.
	OnRelay func(r *Relayed)
}

const (
	defaultRequestTimeout  = 5 * time.Second
	defaultPublishTimeout  = 3 * time.Second
	defaultMaxMessageBytes = 16 << 20
	logInterval            = time.Second
	// sseQueue is the buffer of server-side emits waiting for their handlers.
	sseQueue = 256
)

// Builder creates the Adapter of each namespace; it is the
// socket.AdapterConstructor to put in the server options.
type Builder struct {
	cfg   Config
	stats counters
	log   *limitedLogger

	mu       sync.Mutex
	adapters map[*Adapter]struct{}
	closed   bool
}

// New validates cfg and returns a Builder.
func New(cfg Config) (*Builder, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisadapter: a Redis client is required")
	}
	if cfg.Key == "" {
		cfg.Key = wire.DefaultKey
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = defaultMaxMessageBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Sharded && cfg.SubscriptionMode == "" {
		cfg.SubscriptionMode = wire.SubscriptionDynamic
	}
	if _, err := wire.ParseSubscriptionMode(string(cfg.SubscriptionMode)); err != nil {
		return nil, fmt.Errorf("redisadapter: %w", err)
	}
	return &Builder{
		cfg:      cfg,
		log:      &limitedLogger{logger: cfg.Logger, interval: logInterval, kinds: map[string]*logKind{}},
		adapters: map[*Adapter]struct{}{},
	}, nil
}

// Stats returns the counters of every namespace's adapter.
func (b *Builder) Stats() Stats { return b.stats.snapshot() }

// Close closes every adapter of b (their subscriptions and pending requests).
// Adapters created afterwards work locally only.
func (b *Builder) Close() error {
	b.mu.Lock()
	b.closed = true
	list := make([]*Adapter, 0, len(b.adapters))
	for a := range b.adapters {
		list = append(list, a)
	}
	b.mu.Unlock()
	for _, a := range list {
		a.Close()
	}
	return nil
}

// New returns the adapter of nsp and starts its subscription, waiting (at most
// RequestTimeout) until Redis confirmed it, so that a server that starts serving
// right after receives what is published from then on.
func (b *Builder) New(nsp socket.Namespace) socket.Adapter {
	a := &Adapter{memory: newMemory(), b: b}
	if b.cfg.Sharded {
		a.bus = &shardedBus{a: a, mode: b.cfg.SubscriptionMode}
	} else {
		a.bus = &classicBus{a: a}
	}
	a.Prototype(a)
	a.Construct(nsp)

	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.adapters[a] = struct{}{}
	}
	b.mu.Unlock()
	if closed {
		a.valid = false
	}
	if !a.valid {
		return a
	}
	a.start()
	t := time.NewTimer(b.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case <-a.subscribed:
	case <-t.C:
		b.cfg.Logger.Warn("redisadapter: subscription not confirmed yet; it will be retried in the background",
			"namespace", a.nspName, "timeout", b.cfg.RequestTimeout, "sharded", b.cfg.Sharded)
	}
	return a
}

// NamespaceAdapter is what the adapter of a namespace offers besides
// socket.Adapter: its uid, the context-aware variants of the calls that publish,
// which report errors, and cheap questions about the local rooms.
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
	// AwaitRooms returns once messages published to rooms reach this server.
	AwaitRooms(ctx context.Context, rooms ...socket.Room) error
}

var _ NamespaceAdapter = (*Adapter)(nil)

// Adapter is the adapter of one namespace, in either mode. It keeps the local
// rooms (memory), applies every operation locally, and sends it to the other
// servers through its bus: one cluster message (wire.ClusterMessage) per
// operation, which the bus writes in its format. Besides socket.Adapter it offers
// context-aware variants of the calls that publish, which report errors.
type Adapter struct {
	*memory

	b       *Builder
	bus     bus
	uid     string
	nspName string
	// valid is false when the namespace name cannot be used in channel names;
	// the adapter then works locally only.
	valid bool

	ps         *redis.PubSub
	subscribed chan struct{}
	done       chan struct{}
	loopDone   chan struct{}
	closeOnce  sync.Once
	sse        chan func()

	reqs requests // our requests waiting for answers
}

// Construct sets a up for nsp (called by Builder.New).
func (a *Adapter) Construct(nsp socket.Namespace) {
	a.memory.Construct(nsp)
	a.uid = a.bus.newUID()
	a.nspName = nsp.Name()
	name, err := wire.NormalizeNamespace(a.nspName)
	if err != nil || name != a.nspName {
		a.b.cfg.Logger.Error("redisadapter: namespace name unusable in Redis channels; it works on this server only",
			"namespace", a.nspName)
	} else {
		a.valid = true
	}
	a.bus.init(a.b.cfg.Key, a.nspName, a.uid)
	a.subscribed = make(chan struct{})
	a.done = make(chan struct{})
	a.loopDone = make(chan struct{})
	a.sse = make(chan func(), sseQueue)
}

// UID returns the id this server uses in its messages.
func (a *Adapter) UID() string { return a.uid }

// Close stops the subscriptions and fails pending requests.
func (a *Adapter) Close() {
	a.closeOnce.Do(func() {
		close(a.done)
		if a.ps != nil {
			a.bus.stop()
			_ = a.ps.Close()
			<-a.loopDone
		}
		a.reqs.failAll(errors.New("redisadapter: adapter closed"))
		a.b.mu.Lock()
		delete(a.b.adapters, a)
		a.b.mu.Unlock()
	})
}

// AwaitRooms returns once the messages for rooms published from now on reach
// this server: at once with the classic bus and the sharded bus's static mode
// (one subscription carries every room); in the dynamic modes, once Redis has
// confirmed the subscription to each room's channel (joining a room only asks
// for it). A handler that joins a socket to a room and then reads what was sent
// to that room before (a task's record and history, say) calls it between the
// two, or an event published in between could reach neither. It returns ctx's
// error if ctx ends first; rooms no local socket is in are not waited for.
func (a *Adapter) AwaitRooms(ctx context.Context, rooms ...socket.Room) error {
	s, ok := a.bus.(*shardedBus)
	if !ok || s.mode == wire.SubscriptionStatic {
		return nil
	}
	for _, room := range rooms {
		c := s.await(string(room))
		if c == nil {
			continue
		}
		select {
		case <-c:
		case <-ctx.Done():
			return fmt.Errorf("redisadapter: subscription to room %q not confirmed: %w", room, ctx.Err())
		}
	}
	return nil
}

// RoomChannels returns the room channels this adapter asked to subscribe to
// (sharded bus, dynamic modes), for tests and diagnostics.
func (a *Adapter) RoomChannels() []string {
	if s, ok := a.bus.(*shardedBus); ok {
		return s.roomChannels()
	}
	return nil
}

func randomID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// send writes m in the bus's format and publishes it.
func (a *Adapter) send(ctx context.Context, m *wire.ClusterMessage) error {
	channel, payload, err := a.bus.encode(m)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: message not published",
			slog.String("type", m.Type.String()), slog.String("error", err.Error()))
		return fmt.Errorf("redisadapter: encode %v: %w", m.Type, err)
	}
	return a.publish(ctx, channel, payload)
}

// publish sends payload on channel, bounded by PublishTimeout.
func (a *Adapter) publish(ctx context.Context, channel string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.b.cfg.PublishTimeout)
	defer cancel()
	if err := a.bus.publish(ctx, channel, payload); err != nil {
		a.b.stats.publishErrors.Add(1)
		a.b.log.emit(slog.LevelError, "publish", "redisadapter: publish failed",
			slog.String("channel", channel), slog.String("error", err.Error()))
		return fmt.Errorf("redisadapter: publish to %s: %w", channel, err)
	}
	a.b.stats.published.Add(1)
	return nil
}

// wirePacket converts an outgoing packet, normalising its data in place (see
// normalizeArgs) so that local delivery sends what remote servers will.
func (a *Adapter) wirePacket(packet *parser.Packet) (wire.Packet, error) {
	t, err := toWireType(packet.Type)
	if err != nil {
		return wire.Packet{}, err
	}
	data, err := normalizeArgs(packet.Data)
	if err != nil {
		return wire.Packet{}, err
	}
	packet.Data = data
	return wire.Packet{Type: t, Data: data, Nsp: a.nspName}, nil
}

// outgoingBroadcast is the message and packet of one outgoing broadcast. They are reused
// (see outgoings): handed to the bus, an interface, fresh ones would be put on the
// heap for every broadcast.
type outgoingBroadcast struct {
	m wire.ClusterMessage
	p wire.Packet
}

var outgoings = sync.Pool{New: func() any { return new(outgoingBroadcast) }}

// requestTimeout is the timeout flag of opts, or RequestTimeout.
func (a *Adapter) requestTimeout(opts *socket.BroadcastOptions) time.Duration {
	if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil {
		return *opts.Flags.Timeout
	}
	return a.b.cfg.RequestTimeout
}

// Broadcast sends packet to the matching sockets of this server and, unless
// the local flag is set, publishes it for the other servers.
func (a *Adapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if isLocal(opts) || !a.valid {
		a.memory.Broadcast(packet, opts)
		return
	}
	payload, channel, err := a.encodeBroadcast(packet, opts)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: broadcast not published", slog.String("error", err.Error()))
	}
	// Local delivery first: it does not wait for Redis. It also encodes the
	// packet for the clients, which changes it, so the wire form was made before.
	a.memory.Broadcast(packet, opts)
	if err == nil {
		_ = a.publish(context.Background(), channel, payload)
	}
}

// encodeBroadcast returns the message for packet in the bus's format and the
// channel for it. It normalises packet.Data in place (see normalizeArgs).
func (a *Adapter) encodeBroadcast(packet *parser.Packet, opts *socket.BroadcastOptions) ([]byte, string, error) {
	wp, err := a.wirePacket(packet)
	if err != nil {
		return nil, "", err
	}
	o := outgoings.Get().(*outgoingBroadcast)
	o.p = wp
	o.p.ID = packet.Id
	o.m = wire.ClusterMessage{Type: wire.MessageBroadcast, Packet: &o.p, Opts: toWireOpts(opts)}
	channel, payload, err := a.bus.encode(&o.m)
	*o = outgoingBroadcast{} // keeps nothing of this broadcast
	outgoings.Put(o)
	return payload, channel, err
}

// BroadcastWithAck broadcasts packet to every server and collects the
// acknowledgements of the clients: every server reports how many clients it
// reached (clientCountCallback), and every client's answer is passed to ack.
func (a *Adapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCountCallback func(uint64), ack socket.Ack) {
	if isLocal(opts) || !a.valid {
		a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
		return
	}
	wp, err := a.wirePacket(packet)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: broadcast with ack not published", slog.String("error", err.Error()))
		a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
		return
	}
	id := randomID(12)
	// The request goes where every server reads it: the count of answers is
	// that of every server.
	channel, payload, encErr := a.bus.encode(&wire.ClusterMessage{Type: wire.MessageBroadcast, RequestID: id, Packet: &wp, Opts: toWireOpts(opts)})
	if encErr == nil {
		// Registered before publishing, so that no answer can come first.
		a.reqs.register(id, &pending{kind: wire.RequestBroadcast, clientCount: clientCountCallback, onAck: ack, keep: true}, a.requestTimeout(opts))
	} else {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: broadcast with ack not published", slog.String("error", encErr.Error()))
	}
	a.memory.BroadcastWithAck(packet, opts, clientCountCallback, ack)
	if encErr == nil {
		if err := a.publish(context.Background(), channel, payload); err != nil {
			a.reqs.unregister(id)
		}
	}
}

// AddSockets makes the matching sockets of every server join rooms. It returns
// once the join is applied here and published (or publishing failed).
func (a *Adapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	_ = a.AddSocketsContext(context.Background(), opts, rooms)
}

// AddSocketsContext is AddSockets that reports a failed publish. The join is
// applied to this server's sockets before it returns; other servers apply it when
// they read it, in order with everything published after it.
func (a *Adapter) AddSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error {
	a.memory.AddSockets(opts, rooms)
	return a.sendRooms(ctx, wire.MessageSocketsJoin, opts, rooms)
}

// DelSockets makes the matching sockets of every server leave rooms.
func (a *Adapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	_ = a.DelSocketsContext(context.Background(), opts, rooms)
}

// DelSocketsContext is DelSockets that reports a failed publish.
func (a *Adapter) DelSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, rooms []socket.Room) error {
	a.memory.DelSockets(opts, rooms)
	return a.sendRooms(ctx, wire.MessageSocketsLeave, opts, rooms)
}

// sendRooms publishes a join or a leave already applied here.
func (a *Adapter) sendRooms(ctx context.Context, t wire.MessageType, opts *socket.BroadcastOptions, rooms []socket.Room) error {
	if isLocal(opts) || !a.valid {
		return nil
	}
	return a.send(ctx, &wire.ClusterMessage{Type: t, Opts: toWireOpts(opts), Rooms: roomsOf(rooms)})
}

// DisconnectSockets disconnects the matching sockets of every server; close also
// closes their connections.
func (a *Adapter) DisconnectSockets(opts *socket.BroadcastOptions, close bool) {
	_ = a.DisconnectSocketsContext(context.Background(), opts, close)
}

// DisconnectSocketsContext is DisconnectSockets that reports a failed publish.
func (a *Adapter) DisconnectSocketsContext(ctx context.Context, opts *socket.BroadcastOptions, close bool) error {
	var err error
	if !isLocal(opts) && a.valid {
		// Published first: disconnecting may take long (handlers run), and the
		// other servers need not wait for it.
		err = a.send(ctx, &wire.ClusterMessage{Type: wire.MessageDisconnectSockets, Opts: toWireOpts(opts), Close: close})
	}
	a.memory.DisconnectSockets(opts, close)
	return err
}

// ServerCount returns the number of servers of this namespace, as the bus counts
// them (subscribers of a channel every server subscribes to and no emitter
// does), at least 1 (this one).
func (a *Adapter) ServerCount() int64 {
	if !a.valid {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.RequestTimeout)
	defer cancel()
	n, err := a.bus.countServers(ctx)
	if err != nil {
		a.b.log.emit(slog.LevelError, "numsub", "redisadapter: counting the servers failed", slog.String("error", err.Error()))
		return 1
	}
	return max(n, 1)
}

// ServerSideEmit sends [event, args...] to the other servers of the cluster,
// where the namespace's listeners for event receive args. When the last element
// is a socket.Ack, it is called once every other server answered, or after
// RequestTimeout with the answers so far and an error.
func (a *Adapter) ServerSideEmit(packet []any) error {
	if len(packet) == 0 {
		return errors.New("redisadapter: server-side emit without an event name")
	}
	if !a.valid {
		return errors.New("redisadapter: namespace is local only")
	}
	ack, withAck := packet[len(packet)-1].(socket.Ack)
	if !withAck {
		return a.send(context.Background(), &wire.ClusterMessage{Type: wire.MessageServerSideEmit, Args: packet})
	}
	data := packet[:len(packet)-1]
	expected := a.ServerCount() - 1
	if expected <= 0 {
		go ack([]any{}, nil)
		return nil
	}
	id := randomID(12)
	p := &pending{kind: wire.RequestServerSideEmit, expected: expected, acks: []any{},
		onAck: func(responses []any, err error) { ack(responses, err) }}
	a.reqs.register(id, p, a.b.cfg.RequestTimeout)
	if err := a.send(context.Background(), &wire.ClusterMessage{Type: wire.MessageServerSideEmit, RequestID: id, Args: data}); err != nil {
		a.reqs.unregister(id)
		return err
	}
	return nil
}

// FetchSockets returns the matching sockets of every server: this server's
// sockets and the other servers' answers (an error after the timeout flag, or
// RequestTimeout, when some server did not answer). The callback runs on a
// goroutine of its own.
func (a *Adapter) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
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
		id := randomID(12)
		a.reqs.register(id, &pending{kind: wire.RequestRemoteFetch, expected: expected, sockets: local, onSockets: cb}, a.requestTimeout(opts))
		if err := a.send(context.Background(), &wire.ClusterMessage{Type: wire.MessageFetchSockets, RequestID: id, Opts: toWireOpts(opts)}); err != nil {
			if a.reqs.unregister(id) != nil {
				go cb(nil, err)
			}
		}
	}
}
