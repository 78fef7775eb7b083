package emitter

import (
	"context"
	"fmt"

	"github.com/taskwire/taskwire/emitter/wire"
)

// BroadcastOperator targets a set of sockets: those in any of its rooms (every
// socket of the namespace when it has none) and in none of its except rooms. Its
// methods return new operators; the zero value is not usable, get one from an
// Emitter.
type BroadcastOperator struct {
	e      *Emitter
	rooms  []string
	except []string
	flags  wire.Flags
}

// Message is one encoded message, ready to be published.
type Message struct {
	// Channel is the Redis channel to publish on.
	Channel string
	// Payload is the message body.
	Payload []byte
	// Sharded is true when the message must be sent with SPUBLISH.
	Sharded bool
}

// addRooms returns list with rooms appended, keeping the first occurrence of each
// room, like the Set Node's operators use. It never modifies list.
func addRooms(list []string, rooms []string) []string {
	out := make([]string, len(list), len(list)+len(rooms))
	copy(out, list)
	for _, r := range rooms {
		dup := false
		for _, x := range out {
			if x == r {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

// To returns an operator that also targets the sockets in rooms.
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.rooms = addRooms(b.rooms, rooms)
	return b
}

// In is the same as To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except returns an operator that also leaves out the sockets in rooms.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.except = addRooms(b.except, rooms)
	return b
}

// Volatile returns an operator whose events may be dropped by servers whose client
// is not ready to receive them.
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b.flags = b.flags.WithVolatile(true)
	return b
}

// Compress returns an operator with the compress flag set to compress.
func (b BroadcastOperator) Compress(compress bool) BroadcastOperator {
	b.flags = b.flags.WithCompress(compress)
	return b
}

// Encode returns the message Emit would publish, without publishing it. It lets a
// caller publish the event together with other Redis commands (for example in a
// MULTI or a script that also updates the state the event describes).
func (b BroadcastOperator) Encode(event string, args ...any) (Message, error) {
	if b.e.err != nil {
		return Message{}, b.e.err
	}
	if err := checkEvent(event); err != nil {
		return Message{}, err
	}
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	payload, err := wire.EncodeBroadcast(wire.EmitterUID,
		&wire.Packet{Type: wire.PacketEvent, Data: data, Nsp: b.e.nsp},
		&wire.Opts{Rooms: b.rooms, Except: b.except, Flags: b.flags})
	if err != nil {
		return Message{}, fmt.Errorf("emitter: encode %q: %w", event, err)
	}
	return Message{Channel: b.e.ch.Broadcast(b.rooms), Payload: payload}, nil
}

// Emit sends event with args to the targeted sockets. It returns once Redis has
// accepted the message (or ctx is done); delivery to browsers is then up to the
// servers, at most once, like Socket.IO itself.
func (b BroadcastOperator) Emit(ctx context.Context, event string, args ...any) error {
	m, err := b.Encode(event, args...)
	if err != nil {
		return err
	}
	return b.e.publish(ctx, m)
}

// SocketsJoin makes the targeted sockets join rooms, on whichever server they are.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.request(ctx, &wire.Request{Type: wire.RequestRemoteJoin, Rooms: rooms})
}

// SocketsLeave makes the targeted sockets leave rooms.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.request(ctx, &wire.Request{Type: wire.RequestRemoteLeave, Rooms: rooms})
}

// DisconnectSockets disconnects the targeted sockets; close also closes the
// underlying connections.
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.request(ctx, &wire.Request{Type: wire.RequestRemoteDisconnect, Close: close})
}

func (b BroadcastOperator) request(ctx context.Context, r *wire.Request) error {
	if b.e.err != nil {
		return b.e.err
	}
	r.Opts = &wire.Opts{Rooms: b.rooms, Except: b.except}
	payload, err := wire.EncodeRequest(r)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	return b.e.publish(ctx, Message{Channel: b.e.ch.Request(), Payload: payload})
}
