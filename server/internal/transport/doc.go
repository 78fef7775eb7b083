// Package transport neutralises two defects of the engine.io layer
// (github.com/zishang520/engine.io/v2 v2.5.0) under the Socket.IO server, with
// code of ours around the dependency rather than a patched copy of it.
//
// Lost broadcast frames. The dependency's websocket transport writes a batch of
// packets in one goroutine; when a packet carries a pre-encoded frame (every
// Socket.IO broadcast does) and per-message deflate is off, it writes that frame and
// returns, dropping the rest of the batch. It also builds a gorilla PreparedMessage
// per socket per packet. Our websocket transport writes every packet of a batch, in
// order, and writes a pre-encoded frame's bytes as they are.
//
// Lost connect packets. The engine sends the open packet, and its websocket reader
// runs, before Socket.IO has attached its "data" listener to the new engine socket
// (it does so in the engine's "connection" event, emitted after the socket was
// built). A Socket.IO CONNECT that arrives in that gap is dropped and the client
// never gets its connect reply. The websocket upgrade has the same gap (the engine
// attaches the new transport's "packet" listener after the transport's reader
// started), and so has the first POST of a polling session (net/http happens to
// hide that one while the client reuses its HTTP/1.1 connection, since it flushes
// the handshake response only when the handler returns; a client on another
// connection, HTTP/2 or an early flush exposes it). The engine runs the
// handshake, the "connection" event and the upgrade synchronously inside its
// ServeHTTP, so [Handler] puts a gate in each request's context and opens it when
// the engine's ServeHTTP returns: our websocket transport starts reading only once
// the gate of the request that created it is open, and our polling transport makes
// the POSTs of a session wait for the gate of the session's handshake request.
// Every wait is bounded by [GateTimeout]; a gate that never opens delays reading by
// that much and is counted (see [Stats]), it never blocks a goroutine for good.
//
// The websocket reader also recovers a panic of the engine's handlers (it would
// otherwise kill the process from the reader goroutine), closes that connection
// and counts it.
//
// [Install] puts both transports in place of the dependency's, process-wide (the
// engine looks transports up in a package-level map); call it once at start-up,
// before any engine serves a request.
package transport
