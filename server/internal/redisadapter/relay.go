package redisadapter

import (
	"time"

	"github.com/zishang520/socket.io-go-parser/v2/parser"
)

// Relayed is one broadcast of another server or an emitter that this server
// read from Redis and wrote to its local sockets, as Config.OnRelay sees it.
type Relayed struct {
	// Rooms are the rooms it was sent to (none: every socket).
	Rooms []string
	// Recipients is how many local sockets it was written to; -1 when not
	// counted (the sharded mode).
	Recipients int
	// Received is when the message was read; Delivered when the last local
	// socket had it.
	Received, Delivered time.Time

	packet func() *parser.Packet
}

// Event returns the event's name and arguments, decoded once for every local
// socket's outgoing listeners too (so that asking costs nothing more when the
// server has such listeners, as it does for its metrics). The arguments must be
// neither changed nor kept. ok is false when the packet is not an event.
func (r *Relayed) Event() (name string, args []any, ok bool) {
	if r.packet == nil {
		return "", nil, false
	}
	p := r.packet()
	if p == nil || (p.Type != parser.EVENT && p.Type != parser.BINARY_EVENT) {
		return "", nil, false
	}
	data, _ := p.Data.([]any)
	if len(data) == 0 {
		return "", nil, false
	}
	name, ok = data[0].(string)
	return name, data[1:], ok
}

// relayed tells Config.OnRelay about a broadcast delivered since received; it
// does nothing (and costs a nil check) without one.
func (a *Adapter) relayed(rooms []string, n int, received time.Time, packet func() *parser.Packet) {
	fn := a.b.cfg.OnRelay
	if fn == nil {
		return
	}
	fn(&Relayed{Rooms: rooms, Recipients: n, Received: received, Delivered: time.Now(), packet: packet})
}

// now returns the time when Config.OnRelay wants it, and the zero time
// otherwise (no clock read on the relay's path when nobody asks).
func (a *Adapter) now() time.Time {
	if a.b.cfg.OnRelay == nil {
		return time.Time{}
	}
	return time.Now()
}
