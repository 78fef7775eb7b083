package wire

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultKey is the default channel prefix of Node's adapter and emitter.
const DefaultKey = "socket.io"

// EmitterUID is the uid that emitters put in their messages. It never equals a
// server's uid, so servers always process emitter messages.
const EmitterUID = "emitter"

// ErrInvalidNamespace is returned for namespace names that cannot be sent.
var ErrInvalidNamespace = errors.New("wire: invalid namespace")

// NormalizeNamespace returns nsp with a leading slash ("" and "/" both give "/"),
// as Node's emitter does, and rejects names that would corrupt channel names.
func NormalizeNamespace(nsp string) (string, error) {
	if nsp == "" {
		return "/", nil
	}
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	for i := 0; i < len(nsp); i++ {
		c := nsp[i]
		if c == '#' || c == '*' || c == '?' || c == '[' || c == ']' || c == ',' || c < 0x20 || c == 0x7f {
			return "", ErrInvalidNamespace
		}
	}
	return nsp, nil
}

// Channels names the classic (pub/sub) channels of one namespace.
type Channels struct {
	// Key is the channel prefix ("socket.io" by default).
	Key string
	// Nsp is the namespace, with its leading slash.
	Nsp string
}

// Broadcast is the channel for a broadcast to rooms: the room's own channel when
// there is exactly one room, the namespace channel otherwise.
func (c Channels) Broadcast(rooms []string) string {
	if len(rooms) == 1 {
		return c.Key + "#" + c.Nsp + "#" + rooms[0] + "#"
	}
	return c.Key + "#" + c.Nsp + "#"
}

// BroadcastPattern is the pattern servers PSUBSCRIBE to for broadcasts.
func (c Channels) BroadcastPattern() string {
	return c.Key + "#" + c.Nsp + "#*"
}

// RoomOf returns the room named by a broadcast channel, "" for the namespace channel,
// and false when channel is not a broadcast channel of this namespace.
func (c Channels) RoomOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, c.Key+"#"+c.Nsp+"#")
	if !ok {
		return "", false
	}
	if rest == "" {
		return "", true
	}
	room, ok := strings.CutSuffix(rest, "#")
	return room, ok
}

// Request is the channel for cluster requests.
func (c Channels) Request() string {
	return c.Key + "-request#" + c.Nsp + "#"
}

// Response is the shared channel for cluster responses.
func (c Channels) Response() string {
	return c.Key + "-response#" + c.Nsp + "#"
}

// SpecificResponse is the response channel of one server, used when Node's adapter
// runs with publishOnSpecificResponseChannel.
func (c Channels) SpecificResponse(uid string) string {
	return c.Key + "-response#" + c.Nsp + "#" + uid + "#"
}

// ShardedChannels names the sharded (SPUBLISH) channels of one namespace, those of
// Node's createShardedAdapter.
type ShardedChannels struct {
	// Prefix is the channel prefix ("socket.io" by default).
	Prefix string
	// Nsp is the namespace, with its leading slash.
	Nsp string
}

// Main is the channel every sharded server subscribes to: requests, and every
// broadcast that does not go to a room channel.
func (c ShardedChannels) Main() string {
	return c.Prefix + "#" + c.Nsp + "#"
}

// Room is the channel of one room, read in the dynamic subscription modes by the
// servers that have the room.
func (c ShardedChannels) Room(room string) string {
	return c.Prefix + "#" + c.Nsp + "#" + room + "#"
}

// Response is the response channel of the server with the given uid.
func (c ShardedChannels) Response(uid string) string {
	return c.Prefix + "#" + c.Nsp + "#" + uid + "#"
}

// Publish returns the channel for m when the servers run subscription mode
// mode: the room's channel for a broadcast without acknowledgements to exactly one
// room that mode.roomChannel accepts, the main channel for everything else.
func (c ShardedChannels) Publish(m *ClusterMessage, mode SubscriptionMode) string {
	if m.Type == MessageBroadcast && m.RequestID == "" && m.Opts != nil && len(m.Opts.Rooms) == 1 &&
		mode.roomChannel(m.Opts.Rooms[0]) {
		return c.Room(m.Opts.Rooms[0])
	}
	return c.Main()
}

// SubscriptionMode is the subscriptionMode option of Node's sharded adapter: which
// room channels the servers of a sharded cluster subscribe to. Every server and
// every emitter of a cluster must use the same.
type SubscriptionMode string

// The subscription modes.
const (
	// SubscriptionStatic: servers read only the main channel and their response
	// channel, so every broadcast goes to the main channel. It is always safe for
	// a publisher: in every mode, every server reads the main channel.
	SubscriptionStatic SubscriptionMode = "static"
	// SubscriptionDynamic (Node's default): servers also subscribe to the channel
	// of each room they have, except a socket's own room; a broadcast to exactly
	// one room goes to the room's channel, unless the room looks like a socket id
	// (see nodeSocketIDLength).
	SubscriptionDynamic SubscriptionMode = "dynamic"
	// SubscriptionDynamicPrivate: like dynamic, socket rooms included.
	SubscriptionDynamicPrivate SubscriptionMode = "dynamic-private"
)

// nodeSocketIDLength is the length of a Node socket id. In dynamic mode a
// publisher sends a one-room broadcast to the room's channel unless the room has
// this length, which Node's adapter takes for a socket id (whose room nobody
// subscribes to).
const nodeSocketIDLength = 20

// ParseSubscriptionMode reads a mode by its name; "" is SubscriptionStatic.
func ParseSubscriptionMode(s string) (SubscriptionMode, error) {
	switch m := SubscriptionMode(s); m {
	case "":
		return SubscriptionStatic, nil
	case SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate:
		return m, nil
	}
	return "", fmt.Errorf("wire: unknown subscription mode %q (want static, dynamic or dynamic-private)", s)
}

// roomChannel reports whether a one-room broadcast to room goes to the room's
// channel in mode m: Node's rule, for publishers.
func (m SubscriptionMode) roomChannel(room string) bool {
	switch m {
	case SubscriptionDynamic:
		return len(room) != nodeSocketIDLength
	case SubscriptionDynamicPrivate:
		return true
	}
	return false
}

// SubscribeRoom reports whether a server in mode m subscribes to the channel of
// room, where socketRoom says that room is the id of one of its sockets. Node
// skips socket rooms in dynamic mode; taskwire's server skips only those that
// publishers send to the main channel (nodeSocketIDLength characters), since its
// socket ids are longer and publishers following Node's rule send to their room
// channel.
func (m SubscriptionMode) SubscribeRoom(room string, socketRoom bool) bool {
	switch m {
	case SubscriptionDynamic:
		return !socketRoom || len(room) != nodeSocketIDLength
	case SubscriptionDynamicPrivate:
		return true
	}
	return false
}
