package transport

import (
	"github.com/zishang520/engine.io/v2/engine"
)

// Deliver writes frames (complete websocket frames, see Frame; shared by every
// recipient and never changed) to the websocket of session s, in order, and
// reports true; the frames then follow whatever the session was sent before.
// It reports false, writing nothing, when s is not on one of this package's
// websocket transports ready for direct writes (a polling session, one in the
// middle of its upgrade); the caller then writes through the engine
// (s.Write), which keeps the order.
//
// A session that is closing drops the frames, as the engine does. A volatile
// message is dropped when the connection has a backlog, as Socket.IO drops
// volatile packets for a transport that is not writable.
//
// This is the path of broadcasts: one encoding for every recipient, no copy and
// no engine bookkeeping per recipient.
func Deliver(s engine.Socket, frames [][]byte, volatile bool) bool {
	if ls, ok := s.(*session); ok {
		return ls.deliver(frames, volatile)
	}
	w, ok := s.Transport().(*websocket)
	if !ok || !w.direct.Load() {
		return false
	}
	if st := s.ReadyState(); st != "open" {
		return true
	}
	if volatile && w.ws.backlogged() {
		return true
	}
	// An error means the connection is failing; its reader reports the close.
	_ = w.ws.writeFrames(frames)
	return true
}
