package decode

import (
	"github.com/taskwire/taskwire/emitter/wire"
)

// ClusterMessage decodes a message read on a sharded channel: JSON when it
// starts with '{', a msgpack map otherwise. Every way the input can be wrong gives
// an error wrapping ErrMalformed, including a missing nsp (receivers need it to
// drop other namespaces' messages) and data of the wrong shape for its type. A
// packet without nsp gets the message's.
func ClusterMessage(b []byte) (*wire.ClusterMessage, error) {
	top, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	t, ok := toInt64(top["type"])
	if !ok || t < int64(wire.MessageInitialHeartbeat) || t > int64(wire.MessageAdapterClose) {
		return nil, malformed("cluster message: bad type %v", top["type"])
	}
	m := &wire.ClusterMessage{Type: wire.MessageType(t)}
	if m.UID, err = optString(top, "uid"); err != nil {
		return nil, err
	}
	nsp, ok := top["nsp"].(string)
	if !ok {
		return nil, malformed("cluster message %v: nsp is %T, not a string", m.Type, top["nsp"])
	}
	m.Nsp = nsp
	if m.Type == wire.MessageInitialHeartbeat || m.Type == wire.MessageHeartbeat || m.Type == wire.MessageAdapterClose {
		return m, nil
	}
	data, ok := top["data"].(map[string]any)
	if !ok {
		return nil, malformed("cluster message %v: data is %T, not an object", m.Type, top["data"])
	}
	if m.RequestID, err = optID(data, "requestId"); err != nil {
		return nil, err
	}
	if v, ok := data["opts"]; ok && v != nil {
		om, ok := v.(map[string]any)
		if !ok {
			return nil, malformed("cluster message %v: opts is %T, not an object", m.Type, v)
		}
		o, err := optsFromMap(om)
		if err != nil {
			return nil, err
		}
		m.Opts = &o
	}
	switch m.Type {
	case wire.MessageBroadcast:
		pm, ok := data["packet"].(map[string]any)
		if !ok {
			return nil, malformed("BROADCAST: packet is %T, not an object", data["packet"])
		}
		if m.Packet, err = packetFromMap(pm); err != nil {
			return nil, err
		}
		if _, ok := pm["nsp"]; !ok {
			m.Packet.Nsp = m.Nsp
		}
	case wire.MessageSocketsJoin, wire.MessageSocketsLeave:
		if m.Rooms, err = roomList(data["rooms"], "rooms"); err != nil {
			return nil, err
		}
	case wire.MessageDisconnectSockets:
		if v, ok := data["close"]; ok && v != nil {
			c, ok := v.(bool)
			if !ok {
				return nil, malformed("DISCONNECT_SOCKETS: close is %T, not a boolean", v)
			}
			m.Close = c
		}
	case wire.MessageFetchSocketsResponse:
		list, ok := data["sockets"].([]any)
		if !ok {
			return nil, malformed("FETCH_SOCKETS_RESPONSE: sockets is %T, not an array", data["sockets"])
		}
		for _, x := range list {
			if s, ok := socketInfoFrom(x); ok {
				m.Sockets = append(m.Sockets, s)
			}
		}
	case wire.MessageServerSideEmit:
		args, ok := data["packet"].([]any)
		if !ok || len(args) == 0 {
			return nil, malformed("SERVER_SIDE_EMIT: packet is %T, not [event, ...args]", data["packet"])
		}
		if _, ok := args[0].(string); !ok {
			return nil, malformed("SERVER_SIDE_EMIT: event name is %T", args[0])
		}
		m.Args = args
	case wire.MessageServerSideEmitResponse, wire.MessageBroadcastAck:
		m.Value = data["packet"]
	case wire.MessageBroadcastClientCount:
		n, ok := toInt64(data["clientCount"])
		if !ok {
			return nil, malformed("BROADCAST_CLIENT_COUNT: clientCount is %T", data["clientCount"])
		}
		m.ClientCount = n
	}
	switch m.Type {
	case wire.MessageBroadcast, wire.MessageSocketsJoin, wire.MessageSocketsLeave, wire.MessageDisconnectSockets, wire.MessageFetchSockets:
		if m.Opts == nil {
			return nil, malformed("%v: no opts", m.Type)
		}
	}
	switch m.Type {
	case wire.MessageFetchSockets, wire.MessageFetchSocketsResponse, wire.MessageServerSideEmitResponse,
		wire.MessageBroadcastClientCount, wire.MessageBroadcastAck:
		if m.RequestID == "" {
			return nil, malformed("%v: no requestId", m.Type)
		}
	}
	return m, nil
}

// socketInfoFrom reads one socket of a fetch answer; entries without an id are
// skipped.
func socketInfoFrom(v any) (wire.SocketInfo, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return wire.SocketInfo{}, false
	}
	id, ok := m["id"].(string)
	if !ok || id == "" {
		return wire.SocketInfo{}, false
	}
	s := wire.SocketInfo{ID: id, Handshake: m["handshake"], Data: m["data"]}
	if rooms, ok := m["rooms"].([]any); ok {
		for _, r := range rooms {
			if r, ok := r.(string); ok {
				s.Rooms = append(s.Rooms, r)
			}
		}
	}
	return s, true
}
