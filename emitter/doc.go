// Package emitter sends Socket.IO events to browsers from any Go process, through
// Redis, without running a Socket.IO server. It is the Go counterpart of Node's
// @socket.io/redis-emitter: the messages it publishes are byte for byte those of the
// Node emitter for the same calls, so they reach every server that runs
// @socket.io/redis-adapter's createAdapter (or taskwire's server). With
// Options.Sharded it also reaches servers that use createShardedAdapter (Redis 7
// sharded pub/sub), which Node's emitter cannot do.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	em := emitter.New(rdb, nil)
//	err := em.To("task:42").Emit(ctx, "task:progress", map[string]any{"percent": 50})
//
// The API follows Node's: New (options may be nil), Of, To/In, Except, Volatile,
// Compress, Emit, SocketsJoin, SocketsLeave, DisconnectSockets and ServerSideEmit,
// each returning an error instead of throwing. Operators return new values and
// never change the one they are called on, so a prepared operator can be shared
// between goroutines. Any go-redis client works (*redis.Client,
// *redis.ClusterClient, *redis.Ring, redis.UniversalClient, a redis.Pipeliner);
// the emitter never closes it.
//
// Emit returns once Redis accepted the message, or with an error once its context
// is done, even when the client would wait longer (go-redis bounds its reads by
// its own timeouts unless ContextTimeoutEnabled is set; with it set, the emitter
// need not watch the deadline itself, which saves a goroutine per call). To
// publish many
// messages in one round trip, use Batch; to publish in a transaction with other
// commands, WithPublisher(pipe) or BroadcastOperator.Encode.
//
// # Arguments
//
// What a client receives is what encoding/json shows for the arguments (json
// tags, omitempty, MarshalJSON, MarshalText, json.RawMessage, at any depth),
// except that []byte arrives as binary and time.Time as a date; see package wire.
//
// # Wire format
//
// Classic (the default, for createAdapter): a broadcast is PUBLISHed as the msgpack
// array ["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}]
// on "<key>#<nsp>#", or "<key>#<nsp>#<room>#" when there is exactly one room.
// SocketsJoin, SocketsLeave, DisconnectSockets and ServerSideEmit publish JSON
// requests on "<key>-request#<nsp>#".
//
// Sharded (Options.Sharded, for createShardedAdapter): every call SPUBLISHes a
// ClusterMessage {type, data, uid: "emitter", nsp}, JSON unless its data holds
// binary (then msgpack), with type 3 (broadcast), 4 and 5 (sockets join, leave),
// 6 (disconnect) or 9 (server-side emit), on the namespace's main channel
// "<key>#<nsp>#", which every server reads whatever its subscription mode. When
// all servers run the dynamic subscription mode, SubscriptionMode lets a broadcast
// to exactly one room go to "<key>#<nsp>#<room>#" instead, where only the servers
// that have the room listen.
//
// Package wire has the details; it is also the codec of taskwire's server.
package emitter
