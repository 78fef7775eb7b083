// Package decode reads the messages that Socket.IO servers exchange through Redis,
// in the format of Node's @socket.io/redis-adapter 8.x and @socket.io/redis-emitter
// 5.x: the receive side of the server's Redis adapter. The send side, the one that
// writes these messages (channel names, message layout, the value rules), is the
// emitter's package wire, which the adapter publishes with; its types (Packet, Opts,
// Request, ClusterMessage...) are what this package decodes into. The golden vectors
// of Node's emitter (emitter/wire/testdata/golden.json) prove both: wire writes
// their bytes, and what this package reads from them wire writes back unchanged.
//
//   - Broadcast, Request, Response and ClusterMessage decode a classic broadcast, a
//     cluster request, a cluster response and a sharded message into Go values.
//   - Lazy decodes a broadcast but its event data, which LazyBroadcast.AppendJSON
//     turns into the JSON clients receive straight from msgpack: the hot path of a
//     server relaying events.
//
// Every decoder checks its input first (a msgpack value nested at most
// wire.MaxDepth deep, no trailing bytes, no more elements than bytes), so no
// message can crash the process or make it allocate more than its size suggests;
// every failure wraps ErrMalformed.
package decode
