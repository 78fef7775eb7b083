// Package emitter sends Socket.IO events to browsers from any Go process, through
// Redis, without running a Socket.IO server. It is the Go counterpart of Node's
// @socket.io/redis-emitter: the messages it publishes are byte for byte those of the
// Node emitter for the same calls, so they reach every server that runs
// @socket.io/redis-adapter (or taskwire's server) on the same Redis.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	em := emitter.New(rdb, nil)
//	err := em.To("task:42").Emit(ctx, "task:progress", map[string]any{"percent": 50})
//
// Operators (To, In, Except, Volatile, Compress, Of) return new values and never
// change the one they are called on, so a prepared operator can be shared.
//
// # Wire format
//
// A broadcast is PUBLISHed as the msgpack array
// ["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}] on
// "<key>#<nsp>#" (or "<key>#<nsp>#<room>#" when there is exactly one room).
// SocketsJoin, SocketsLeave, DisconnectSockets and ServerSideEmit publish JSON
// requests on "<key>-request#<nsp>#". Package wire has the details.
//
// Arguments are encoded with msgpack: []byte arrives in JavaScript as binary, structs
// are encoded with the field names of their json tags, maps with sorted keys.
//
// The emitter never reads from Redis and never closes the client it is given.
package emitter
