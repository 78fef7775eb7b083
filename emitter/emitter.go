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

// Options configure an Emitter. The zero value (and nil) means the defaults.
type Options struct {
	// Key is the prefix of the Redis channels. It must match the key of the servers'
	// adapter. Default: "socket.io".
	Key string
}

// Emitter publishes events to the sockets of one namespace of a Socket.IO cluster.
// It is safe for concurrent use.
type Emitter struct {
	pub Publisher
	key string
	nsp string
	err error
	ch  wire.Channels
}

// New returns an Emitter for the main namespace ("/") that publishes through pub.
func New(pub Publisher, opts *Options) *Emitter {
	key := wire.DefaultKey
	if opts != nil && opts.Key != "" {
		key = opts.Key
	}
	return &Emitter{pub: pub, key: key, nsp: "/", ch: wire.Channels{Key: key, Nsp: "/"}}
}

// Of returns an Emitter for the namespace nsp ("/admin"; the leading slash may be
// left out). An invalid name makes every call of the returned Emitter fail with
// ErrInvalidNamespace.
func (e *Emitter) Of(nsp string) *Emitter {
	c := *e
	name, err := wire.NormalizeNamespace(nsp)
	if err != nil {
		c.err = fmt.Errorf("emitter: namespace %q: %w", nsp, err)
		return &c
	}
	c.nsp, c.err = name, nil
	c.ch = wire.Channels{Key: c.key, Nsp: name}
	return &c
}

// WithPublisher returns a copy of e that publishes through pub, for example a
// redis.Pipeliner to send many messages in one round trip, or a transaction that
// also updates application state.
func (e *Emitter) WithPublisher(pub Publisher) *Emitter {
	c := *e
	c.pub = pub
	return &c
}

// Namespace returns the namespace e emits to.
func (e *Emitter) Namespace() string { return e.nsp }

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

// Emit sends event with args to every socket of the namespace.
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

// ServerSideEmit sends event with args to the other servers of the cluster, where
// io.of(nsp).on(event, ...) handlers receive it. Acknowledgements are not supported.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if e.err != nil {
		return e.err
	}
	if err := checkEvent(event); err != nil {
		return err
	}
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	payload, err := wire.EncodeRequest(&wire.Request{UID: wire.EmitterUID, Type: wire.RequestServerSideEmit, Data: data})
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	return e.publish(ctx, Message{Channel: e.ch.Request(), Payload: payload})
}

func (e *Emitter) publish(ctx context.Context, m Message) error {
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
