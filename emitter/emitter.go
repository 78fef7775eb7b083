package emitter

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter/wire"
)

// Publisher is the part of a go-redis client the emitter uses. *redis.Client,
// *redis.ClusterClient, *redis.Ring, redis.UniversalClient and redis.Pipeliner all
// satisfy it; a Pipeliner queues the messages until the pipeline is executed.
type Publisher interface {
	Publish(ctx context.Context, channel string, message any) *redis.IntCmd
	SPublish(ctx context.Context, channel string, message any) *redis.IntCmd
}

// SubscriptionMode says which room channels the servers of a sharded cluster
// subscribe to (the subscriptionMode option of Node's createShardedAdapter), and
// so where a sharded emitter may publish a broadcast to one room.
type SubscriptionMode = wire.SubscriptionMode

// The subscription modes. With SubscriptionStatic every message goes to the
// namespace's main channel, which every server reads in every mode: it is the
// default and is always safe. SubscriptionDynamic and SubscriptionDynamicPrivate
// send a broadcast to exactly one room to that room's channel, so that only the
// servers that have the room receive it; use them only when every server runs
// that mode, and know that a room created an instant before (a socketsJoin just
// published, say) may not be subscribed to yet when the event arrives.
const (
	SubscriptionStatic         = wire.SubscriptionStatic
	SubscriptionDynamic        = wire.SubscriptionDynamic
	SubscriptionDynamicPrivate = wire.SubscriptionDynamicPrivate
)

// Options configure an Emitter. The zero value (and nil) means the defaults.
type Options struct {
	// Key is the prefix of the Redis channels (the key option of Node's
	// createAdapter, the channelPrefix option of createShardedAdapter). It must
	// match the servers'. Default: "socket.io".
	Key string
	// Sharded publishes with SPUBLISH (Redis 7) in the format of Node's
	// createShardedAdapter, for servers that use it (or taskwire's server with
	// SOCKETIO_ADAPTER=sharded), instead of PUBLISH in the format of createAdapter.
	Sharded bool
	// SubscriptionMode is the subscription mode of the sharded servers; it only
	// matters with Sharded. Default: SubscriptionStatic.
	SubscriptionMode SubscriptionMode
}

// Emitter publishes events to the sockets of one namespace of a Socket.IO cluster.
// It is safe for concurrent use. It never closes the client it publishes through.
type Emitter struct {
	pub     Publisher
	batch   *batch // set inside Batch: messages are queued there
	bounded bool   // pub returns by the context's deadline on its own
	key     string
	nsp     string
	sharded bool
	mode    wire.SubscriptionMode
	optErr  error // a bad option given to New
	nspErr  error // a bad namespace given to Of
	ch      wire.Channels
	sch     wire.ShardedChannels
}

// New returns an Emitter for the main namespace ("/") that publishes through pub,
// usually a go-redis client (*redis.Client, *redis.ClusterClient, *redis.Ring, any
// redis.UniversalClient). opts may be nil. An invalid option makes every call of
// the Emitter fail with an error that says so.
func New(pub Publisher, opts *Options) *Emitter {
	e := &Emitter{pub: pub, bounded: boundsContext(pub), key: wire.DefaultKey, nsp: "/", mode: wire.SubscriptionStatic}
	if opts != nil {
		if opts.Key != "" {
			e.key = opts.Key
		}
		e.sharded = opts.Sharded
		mode, err := wire.ParseSubscriptionMode(string(opts.SubscriptionMode))
		if err != nil {
			e.optErr = fmt.Errorf("emitter: %w", err)
		}
		e.mode = mode
	}
	e.setChannels()
	return e
}

func (e *Emitter) setChannels() {
	e.ch = wire.Channels{Key: e.key, Nsp: e.nsp}
	e.sch = wire.ShardedChannels{Prefix: e.key, Nsp: e.nsp}
}

// boundsContext reports whether pub returns by its context's deadline on its own:
// go-redis clients do only with ContextTimeoutEnabled (otherwise their read and
// write timeouts apply), and a pipeline only queues.
func boundsContext(pub Publisher) bool {
	switch c := pub.(type) {
	case redis.Pipeliner:
		return true
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Of returns an Emitter for the namespace nsp ("/admin"; the leading slash may be
// left out), with the same options. An invalid name makes every call of the
// returned Emitter fail with ErrInvalidNamespace.
func (e *Emitter) Of(nsp string) *Emitter {
	c := *e
	name, err := wire.NormalizeNamespace(nsp)
	if err != nil {
		c.nspErr = fmt.Errorf("emitter: namespace %q: %w", nsp, err)
		return &c
	}
	c.nsp, c.nspErr = name, nil
	c.setChannels()
	return &c
}

// check returns the error that every call of e returns, if any.
func (e *Emitter) check() error {
	if e.optErr != nil {
		return e.optErr
	}
	return e.nspErr
}

// WithPublisher returns a copy of e that publishes through pub, for example a
// redis.Pipeliner (pipe := rdb.TxPipeline()) to publish events in the same
// transaction as the state they describe. The caller executes the pipeline. To
// publish many events in one round trip, Batch is simpler.
func (e *Emitter) WithPublisher(pub Publisher) *Emitter {
	c := *e
	c.pub = pub
	c.bounded = boundsContext(pub)
	c.batch = nil
	return &c
}

// Namespace returns the namespace e emits to.
func (e *Emitter) Namespace() string { return e.nsp }

// Sharded reports whether e publishes in the sharded format (SPUBLISH).
func (e *Emitter) Sharded() bool { return e.sharded }

func (e *Emitter) operator() BroadcastOperator { return BroadcastOperator{e: e} }

// To returns an operator that targets the sockets in any of rooms. A socket id is a
// room too: To(socketID) reaches one socket.
func (e *Emitter) To(rooms ...string) BroadcastOperator { return e.operator().To(rooms...) }

// In is the same as To.
func (e *Emitter) In(rooms ...string) BroadcastOperator { return e.operator().In(rooms...) }

// Except returns an operator that leaves out the sockets in any of rooms.
func (e *Emitter) Except(rooms ...string) BroadcastOperator { return e.operator().Except(rooms...) }

// Volatile returns an operator whose events may be dropped by servers whose client
// is not ready to receive them.
func (e *Emitter) Volatile() BroadcastOperator { return e.operator().Volatile() }

// Compress returns an operator with the compress flag set.
func (e *Emitter) Compress(compress bool) BroadcastOperator { return e.operator().Compress(compress) }

// Emit sends event with args to every socket of the namespace. See
// BroadcastOperator.Emit.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	return e.operator().Emit(ctx, event, args...)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.operator().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.operator().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace; close also closes
// the underlying connections.
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.operator().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends event with args to the servers of the cluster, where the
// namespace's server-side handlers for event receive args (io.of(nsp).on(event,
// ...) in Node). Acknowledgements are not supported: a function as the last
// argument gives ErrAckNotSupported.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	m, err := e.EncodeServerSideEmit(event, args...)
	if err != nil {
		return err
	}
	return e.publish(ctx, m)
}

// EncodeServerSideEmit returns the message ServerSideEmit would publish, without
// publishing it.
func (e *Emitter) EncodeServerSideEmit(event string, args ...any) (Message, error) {
	if err := e.check(); err != nil {
		return Message{}, err
	}
	if err := checkEvent(event, args); err != nil {
		return Message{}, err
	}
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	if e.sharded {
		cm := &wire.ClusterMessage{Type: wire.MessageServerSideEmit, UID: wire.EmitterUID, Nsp: e.nsp, Args: data}
		return e.encodeCluster(cm, event)
	}
	payload, err := wire.EncodeRequest(&wire.Request{UID: wire.EmitterUID, Type: wire.RequestServerSideEmit, Data: data})
	if err != nil {
		return Message{}, fmt.Errorf("emitter: encode %q: %w", event, err)
	}
	return Message{Channel: e.ch.Request(), Payload: payload}, nil
}

func (e *Emitter) encodeCluster(cm *wire.ClusterMessage, what string) (Message, error) {
	payload, err := wire.EncodeClusterMessage(cm)
	if err != nil {
		return Message{}, fmt.Errorf("emitter: encode %q: %w", what, err)
	}
	return Message{Channel: e.sch.Publish(cm, e.mode), Payload: payload, Sharded: true}, nil
}

// publish sends m, or queues it inside Batch.
func (e *Emitter) publish(ctx context.Context, m Message) error {
	if e.batch != nil {
		return e.batch.add(m)
	}
	if e.pub == nil {
		return ErrNoPublisher
	}
	return e.bound(ctx, func() error { return e.send(ctx, m) })
}

func (e *Emitter) send(ctx context.Context, m Message) error {
	var err error
	if m.Sharded {
		err = e.pub.SPublish(ctx, m.Channel, m.Payload).Err()
	} else {
		err = e.pub.Publish(ctx, m.Channel, m.Payload).Err()
	}
	if err != nil {
		return fmt.Errorf("emitter: publish to %s: %w", m.Channel, err)
	}
	return nil
}

// bound runs fn and returns its error, or ctx's error once ctx is done if the
// publisher does not return by then on its own (fn then finishes in the
// background). A message may still be published after such an error.
func (e *Emitter) bound(ctx context.Context, fn func() error) error {
	if e.bounded || ctx.Done() == nil {
		return fn()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("emitter: %w", ctx.Err())
	}
}
