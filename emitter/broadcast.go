package emitter

import (
	"context"
	"fmt"
	"slices"

	"github.com/taskwire/taskwire/emitter/wire"
)

// BroadcastOperator targets a set of sockets: those in any of its rooms (every
// socket of the namespace when it has none) and in none of its except rooms. Its
// methods return new operators and never change the one they are called on, so an
// operator can be prepared once and used from many goroutines. The zero value is
// not usable: get one from an Emitter.
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
// room, like the Set Node's operators use. It never modifies list: the result has
// its own backing array. Short lists are deduplicated by scanning; long ones are
// first checked for duplicates on a sorted copy (they rarely have any).
func addRooms(list []string, rooms []string) []string {
	out := make([]string, len(list), len(list)+len(rooms))
	copy(out, list)
	if len(out)+len(rooms) > 16 {
		all := append(out, rooms...)
		sorted := slices.Clone(all)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) == len(all) {
			return all
		}
		out = out[:len(list)]
		seen := make(map[string]struct{}, len(all))
		for _, r := range out {
			seen[r] = struct{}{}
		}
		for _, r := range rooms {
			if _, dup := seen[r]; !dup {
				seen[r] = struct{}{}
				out = append(out, r)
			}
		}
		return out
	}
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
// MULTI or a script that also updates the state the event describes); Message
// says whether to use PUBLISH or SPUBLISH.
func (b BroadcastOperator) Encode(event string, args ...any) (Message, error) {
	if err := b.e.check(); err != nil {
		return Message{}, err
	}
	if err := checkEvent(event, args); err != nil {
		return Message{}, err
	}
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	packet := &wire.Packet{Type: wire.PacketEvent, Data: data, Nsp: b.e.nsp}
	if b.e.sharded {
		return b.e.encodeCluster(&wire.ClusterMessage{Type: wire.MessageBroadcast, UID: wire.EmitterUID, Nsp: b.e.nsp,
			Packet: packet, Opts: &wire.Opts{Rooms: nonNil(b.rooms), Except: nonNil(b.except), Flags: b.flags}}, event)
	}
	payload, err := wire.EncodeBroadcast(wire.EmitterUID, packet, &wire.Opts{Rooms: b.rooms, Except: b.except, Flags: b.flags})
	if err != nil {
		return Message{}, fmt.Errorf("emitter: encode %q: %w", event, err)
	}
	return Message{Channel: b.e.ch.Broadcast(b.rooms), Payload: payload}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Emit sends event with args to the targeted sockets. The arguments follow the
// value rules of package wire: what a client receives is what encoding/json shows
// for them, except that []byte arrives as binary and time.Time as a date.
//
// Emit returns once Redis has accepted the message, or with an error once ctx is
// done (the message may still be published after that); delivery to browsers is
// then up to the servers, at most once, like Socket.IO itself. Inside Batch it
// only queues the message. A function as the last argument (an acknowledgement
// callback) gives ErrAckNotSupported, a reserved event name ErrReservedEvent.
func (b BroadcastOperator) Emit(ctx context.Context, event string, args ...any) error {
	m, err := b.Encode(event, args...)
	if err != nil {
		return err
	}
	return b.e.publish(ctx, m)
}

// SocketsJoin makes the targeted sockets join rooms, on whichever server they are.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.request(ctx, wire.RequestRemoteJoin, wire.MessageSocketsJoin, rooms, false)
}

// SocketsLeave makes the targeted sockets leave rooms.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.request(ctx, wire.RequestRemoteLeave, wire.MessageSocketsLeave, rooms, false)
}

// DisconnectSockets disconnects the targeted sockets; close also closes the
// underlying connections (and so the sockets of every namespace on them).
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.request(ctx, wire.RequestRemoteDisconnect, wire.MessageDisconnectSockets, nil, close)
}

func (b BroadcastOperator) request(ctx context.Context, rt wire.RequestType, mt wire.MessageType, rooms []string, close bool) error {
	if err := b.e.check(); err != nil {
		return err
	}
	var m Message
	if b.e.sharded {
		var err error
		m, err = b.e.encodeCluster(&wire.ClusterMessage{Type: mt, UID: wire.EmitterUID, Nsp: b.e.nsp,
			Opts: &wire.Opts{Rooms: nonNil(b.rooms), Except: nonNil(b.except), Flags: b.flags}, Rooms: nonNil(rooms), Close: close}, mt.String())
		if err != nil {
			return err
		}
	} else {
		// Node's emitter sends neither uid nor flags with these requests.
		payload, err := wire.EncodeRequest(&wire.Request{Type: rt, Opts: &wire.Opts{Rooms: b.rooms, Except: b.except}, Rooms: rooms, Close: close})
		if err != nil {
			return fmt.Errorf("emitter: %w", err)
		}
		m = Message{Channel: b.e.ch.Request(), Payload: payload}
	}
	return b.e.publish(ctx, m)
}
