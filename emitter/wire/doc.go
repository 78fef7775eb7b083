// Package wire encodes and decodes the messages that Socket.IO servers exchange
// through Redis, in the format of Node's @socket.io/redis-adapter 8.x and
// @socket.io/redis-emitter 5.x. It is the one place where taskwire writes and reads
// that format: the emitter publishes with it and the server's Redis adapter both
// publishes and subscribes with it, so the two cannot drift apart.
//
// # Classic (pub/sub) format
//
// With key "socket.io" (the default) and namespace "/":
//
//	broadcast to all, to 2+ rooms, or except only   PUBLISH socket.io#/#
//	broadcast to exactly one room R                 PUBLISH socket.io#/#R#
//	cluster requests                                PUBLISH socket.io-request#/#
//	cluster responses                               PUBLISH socket.io-response#/#
//
// A broadcast is a msgpack array of three elements, [uid, packet, opts]:
//
//	["emitter", {type: 2, data: [event, ...args], nsp: "/"}, {rooms: [...], flags: {...}, except: [...]}]
//
// where uid is the sender's id ("emitter" for emitters), type is the Socket.IO packet
// type as a number (2 = EVENT), rooms and except are always arrays, and flags holds
// only the flags that were set (volatile, compress; timeout in milliseconds for a
// broadcast with acknowledgements). Binary arguments stay msgpack bin values.
//
// Requests and responses are JSON objects with a numeric type (RequestType), except
// BROADCAST and BROADCAST_ACK which are msgpack maps; a receiver looks at the first
// byte ('{' means JSON).
//
// # Sharded format
//
// Servers built on Node's createShardedAdapter (Redis 7 SPUBLISH/SSUBSCRIBE) use one
// channel per namespace, socket.io#/#, plus one per server and optionally one per
// room, and exchange a ClusterMessage: a JSON object {type, data, uid, nsp} whose
// type is a MessageType, or a msgpack map of the same when the data holds binary.
package wire
