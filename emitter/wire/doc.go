// Package wire writes the messages that Socket.IO servers exchange through Redis, in
// the format of Node's @socket.io/redis-adapter 8.x and @socket.io/redis-emitter
// 5.x: channel names, message layout and a msgpack writer byte-identical to
// notepack.io's. It is the one place where taskwire writes that format: the
// emitter publishes with it, and so does the server's Redis adapter, so the two
// cannot drift apart. Reading the format is the server's business (its adapter has
// the decoders); this package needs no msgpack library. Its types (Packet, Opts,
// Request, ClusterMessage...) are what both sides speak of.
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
// byte ('{' means JSON). The server answers requests with EncodeResponse.
//
// # Sharded format
//
// Servers built on Node's createShardedAdapter (Redis 7 SPUBLISH/SSUBSCRIBE) use one
// main channel per namespace, <key>#<nsp>#, plus one per server for answers,
// <key>#<nsp>#<uid>#, and in the dynamic subscription modes one per room,
// <key>#<nsp>#<room># (see ShardedChannels and SubscriptionMode). They exchange a
// ClusterMessage, {type, data, uid, nsp}, whose type is a MessageType: JSON, or a
// msgpack map of the same keys when the data of a type that may carry binary
// (broadcast, server-side emit and the answers) holds binary:
//
//	{"type":3,"data":{"packet":{"type":2,"data":["hello","world",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}
//
// The packet of a broadcast carries no nsp there; receivers drop messages whose
// nsp is not theirs, and their own messages by uid.
//
// # Values
//
// Event arguments follow one set of rules in every encoding (value.go): what a
// client receives is what encoding/json shows for them (json tags, omitempty,
// omitzero, string, embedded structs, MarshalJSON, MarshalText, json.RawMessage,
// maps with sorted keys), except that []byte and [N]byte are binary and time.Time
// a date. In msgpack they are written as notepack.io writes the equivalent
// JavaScript value; in JSON as JSON.stringify writes it (dates as ISO strings,
// NaN as null, and in classic requests binary as Node's Buffer objects; the
// AppendJS functions are that JSON writer). Normalize gives the same values as the
// generic Go values a decoder returns, for a server's local delivery of what it
// publishes. Values nest at most MaxDepth deep.
package wire
