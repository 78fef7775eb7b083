// Package transport is the engine.io layer of taskwire-server, in our own code
// around the dependency (github.com/zishang520/engine.io/v2 v2.5.0): it fixes
// two defects of that engine and makes websocket connections much cheaper.
//
// Websocket sessions. A session that is a websocket from its first request
// (transport=websocket, EIO=4, no sid) is served by [Handler] without the
// engine's machinery: no engine socket, transport object, websocket library
// connection or kept request, no goroutine per timer or per connection. A
// session (eiosession.go) is one small object that speaks engine.io itself (open
// packet, heartbeats, messages, close) and implements engine.Socket, so
// Socket.IO sees an ordinary engine connection (the engine's "connection" event,
// its client list). Sessions that start on polling stay with the engine.
//
// Websocket I/O (wsConn). Every websocket (sessions, and polling sessions that
// upgrade) does its own RFC 6455 framing on the hijacked connection. Writes never
// block the writer: a frame goes out at once with a non-blocking system call, or
// is queued for a writer goroutine that exists only while there is a backlog and
// sends the whole queue in one system call; a client that reads nothing is
// disconnected past a bound (maxQueuedBytes, writeTimeout). Reads need no
// goroutine per connection where epoll exists (reader.go): one poller waits for
// every connection, and a goroutine runs only while data is being read.
//
// Broadcasts. [Deliver] writes a broadcast's frames, encoded once, to a
// session's connection as they are: no copy, no engine bookkeeping per
// recipient. The Redis adapter delivers every broadcast this way.
//
// Lost broadcast frames (a defect of the dependency). Its websocket transport
// writes a batch of packets in one goroutine; when a packet carries a
// pre-encoded frame (every Socket.IO broadcast does) and per-message deflate is
// off, it writes that frame and returns, dropping the rest of the batch. Our
// websocket transport writes every packet of a batch, in order.
//
// Lost connect packets (a defect of the dependency). The engine sends the open
// packet, and its websocket reader runs, before Socket.IO has attached its
// "data" listener to the new engine socket (it does so in the engine's
// "connection" event, emitted after the socket was built). A Socket.IO CONNECT
// that arrives in that gap is dropped and the client never gets its connect
// reply. Sessions start reading only after the "connection" event. For the
// engine's own sessions, the upgrade has the same gap (the engine attaches the
// new transport's listeners after the transport exists), and so has the first
// POST of a polling session. The engine runs the handshake, the "connection"
// event and the upgrade synchronously inside its ServeHTTP, so [Handler] puts a
// gate in each request's context and opens it when the engine is done: our
// websocket transport starts reading only once the gate of its request is open,
// and our polling transport makes the POSTs of a session wait for the gate of
// the session's handshake request. Every wait is bounded by [GateTimeout]; a
// gate that never opens delays reading by that much and is counted (see
// [Stats]), it never blocks a goroutine for good.
//
// Protocol conformance. Five behaviours of the sessions (some inherited from
// the dependency's Socket.IO server) are corrected to match the Engine.IO v4
// and Socket.IO v5 specs and the Node reference: an empty handshake auth for a
// CONNECT without payload, NOOP for a poll pending when the client closes, the
// close of a websocket opened for an upgraded session, a deterministic 400 for
// polling after an upgrade, and refusals shaped and followed like Node's
// (protocol.go).
//
// A panic of the engine's or Socket.IO's handlers while handling a message
// closes that connection instead of the process, and is counted.
//
// [Install] puts our websocket and polling transports in place of the
// dependency's, process-wide (the engine looks transports up in a package-level
// map); call it once at start-up, before any engine serves a request.
//
// Files: eiosession.go holds the session (an engine.io session of this package,
// not to be confused with package session's signed identities),
// eiosession_poll.go its HTTP long-polling and its upgrade to websocket,
// listeners.go the list of event listeners a session has as an engine.Socket;
// websocket.go and enginepolling.go are the transports of the engine's own
// sessions (our websocket; the engine's polling with gated reads), wsconn.go, frame.go and reader*.go are the websocket I/O, gate.go the
// gates, protocol.go the protocol corrections.
package transport
