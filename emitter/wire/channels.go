package wire

import (
	"errors"
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

// ShardedChannels names the sharded (SPUBLISH) channels of one namespace.
type ShardedChannels struct {
	// Prefix is the channel prefix ("socket.io" by default).
	Prefix string
	// Nsp is the namespace, with its leading slash.
	Nsp string
}

// Main is the channel every sharded server subscribes to.
func (c ShardedChannels) Main() string {
	return c.Prefix + "#" + c.Nsp + "#"
}

// Room is the dynamic channel of one room.
func (c ShardedChannels) Room(room string) string {
	return c.Prefix + "#" + c.Nsp + "#" + room + "#"
}

// Response is the response channel of the server with the given uid.
func (c ShardedChannels) Response(uid string) string {
	return c.Prefix + "#" + c.Nsp + "#" + uid + "#"
}
