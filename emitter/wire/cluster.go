package wire

import (
	"errors"
	"fmt"
	"strconv"
)

// MessageType is the type of a ClusterMessage: socket.io-adapter's MessageType,
// used by Node's cluster adapters (createShardedAdapter among them).
type MessageType int

// The message types of socket.io-adapter 2.5. The sharded adapter never sends the
// heartbeat types (1, 2, 13); they exist for adapters that count servers by
// heartbeat.
const (
	MessageInitialHeartbeat       MessageType = 1
	MessageHeartbeat              MessageType = 2
	MessageBroadcast              MessageType = 3
	MessageSocketsJoin            MessageType = 4
	MessageSocketsLeave           MessageType = 5
	MessageDisconnectSockets      MessageType = 6
	MessageFetchSockets           MessageType = 7
	MessageFetchSocketsResponse   MessageType = 8
	MessageServerSideEmit         MessageType = 9
	MessageServerSideEmitResponse MessageType = 10
	MessageBroadcastClientCount   MessageType = 11
	MessageBroadcastAck           MessageType = 12
	MessageAdapterClose           MessageType = 13
)

// String returns the name socket.io-adapter gives t (BROADCAST, ...).
func (t MessageType) String() string {
	names := [...]string{"", "INITIAL_HEARTBEAT", "HEARTBEAT", "BROADCAST", "SOCKETS_JOIN", "SOCKETS_LEAVE",
		"DISCONNECT_SOCKETS", "FETCH_SOCKETS", "FETCH_SOCKETS_RESPONSE", "SERVER_SIDE_EMIT",
		"SERVER_SIDE_EMIT_RESPONSE", "BROADCAST_CLIENT_COUNT", "BROADCAST_ACK", "ADAPTER_CLOSE"}
	if t >= 1 && int(t) < len(names) {
		return names[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// IsResponse reports whether t answers a request (FETCH_SOCKETS_RESPONSE,
// SERVER_SIDE_EMIT_RESPONSE, BROADCAST_CLIENT_COUNT, BROADCAST_ACK).
func (t MessageType) IsResponse() bool {
	switch t {
	case MessageFetchSocketsResponse, MessageServerSideEmitResponse, MessageBroadcastClientCount, MessageBroadcastAck:
		return true
	}
	return false
}

// mayHoldBinary lists the types whose data Node encodes with msgpack when it holds
// binary (and as JSON otherwise).
func (t MessageType) mayHoldBinary() bool {
	switch t {
	case MessageBroadcast, MessageBroadcastAck, MessageFetchSocketsResponse, MessageServerSideEmit, MessageServerSideEmitResponse:
		return true
	}
	return false
}

// ClusterMessage is a message of a cluster adapter, as published on sharded
// channels: {type, data, uid, nsp}. Which fields make its data depends on Type:
//
//	BROADCAST                  Packet, Opts (with Flags); RequestID for a broadcast
//	                           with acknowledgements
//	SOCKETS_JOIN/LEAVE         Opts, Rooms (the rooms to join or leave)
//	DISCONNECT_SOCKETS         Opts, Close
//	FETCH_SOCKETS              Opts, RequestID
//	FETCH_SOCKETS_RESPONSE     RequestID, Sockets
//	SERVER_SIDE_EMIT           Args ([event, args...]); RequestID when an ack is wanted
//	SERVER_SIDE_EMIT_RESPONSE  RequestID, Value (the first acknowledgement argument)
//	BROADCAST_CLIENT_COUNT     RequestID, ClientCount
//	BROADCAST_ACK              RequestID, Value (a client's acknowledgement)
//
// Emitters send uid "emitter" (EmitterUID) and types 3 to 6 and 9 without
// requestId.
type ClusterMessage struct {
	Type MessageType
	UID  string
	// Nsp is the namespace, with its leading slash; receivers drop messages of
	// other namespaces.
	Nsp         string
	RequestID   string
	Packet      *Packet
	Opts        *Opts
	Rooms       []string
	Close       bool
	Args        []any
	Value       any
	Sockets     []SocketInfo
	ClientCount int64
}

// EncodeClusterMessage encodes m as Node's sharded adapter does: JSON, unless the
// type may carry binary and its data does, in which case the whole message is a
// msgpack map (same keys, same order). The packet of a broadcast is written
// without its namespace, as Node's cluster adapters write it.
func EncodeClusterMessage(m *ClusterMessage) ([]byte, error) {
	if m.Type == MessageBroadcast && m.Packet == nil {
		return nil, errors.New("wire: BROADCAST needs a packet")
	}
	if m.Type == MessageServerSideEmit && len(m.Args) == 0 {
		return nil, errors.New("wire: SERVER_SIDE_EMIT needs an event name")
	}
	j := getJSON(false)
	err := writeClusterMessage(j, m)
	if err == nil {
		return j.done(), nil
	}
	j.release()
	if !errors.Is(err, errBinary) {
		return nil, fmt.Errorf("wire: %v: %w", m.Type, err)
	}
	if !m.Type.mayHoldBinary() {
		// Node would write JSON here whatever the data holds; these types carry
		// rooms and flags only, so this is not reached with valid input.
		return nil, fmt.Errorf("wire: %v cannot carry binary", m.Type)
	}
	w := getMP()
	if err := writeClusterMessage(w, m); err != nil {
		w.release()
		return nil, fmt.Errorf("wire: %v: %w", m.Type, err)
	}
	return w.done(), nil
}

func writeClusterMessage(s sink, m *ClusterMessage) error {
	hasData := m.Type != MessageInitialHeartbeat && m.Type != MessageHeartbeat && m.Type != MessageAdapterClose
	n := 3
	if hasData {
		n++
	}
	s.beginObject(n)
	s.key("type")
	s.integer(int64(m.Type))
	if hasData {
		s.key("data")
		if err := writeClusterData(s, m); err != nil {
			return err
		}
	}
	s.key("uid")
	s.str(m.UID)
	s.key("nsp")
	s.str(m.Nsp)
	s.endObject()
	return nil
}

// writeClusterData writes the data object with Node's key orders.
func writeClusterData(s sink, m *ClusterMessage) error {
	switch m.Type {
	case MessageBroadcast:
		n := 2
		if m.RequestID != "" {
			n++
		}
		s.beginObject(n)
		s.key("packet")
		if err := writePacket(s, m.Packet, false); err != nil {
			return err
		}
		if m.RequestID != "" {
			s.key("requestId")
			s.str(m.RequestID)
		}
		s.key("opts")
		writeOpts(s, m.Opts, true)
	case MessageSocketsJoin, MessageSocketsLeave:
		s.beginObject(2)
		s.key("opts")
		writeOpts(s, m.Opts, true)
		s.key("rooms")
		writeStrings(s, nonNil(m.Rooms))
	case MessageDisconnectSockets:
		s.beginObject(2)
		s.key("opts")
		writeOpts(s, m.Opts, true)
		s.key("close")
		s.boolean(m.Close)
	case MessageFetchSockets:
		s.beginObject(2)
		s.key("opts")
		writeOpts(s, m.Opts, true)
		s.key("requestId")
		s.str(m.RequestID)
	case MessageFetchSocketsResponse:
		s.beginObject(2)
		s.key("requestId")
		s.str(m.RequestID)
		s.key("sockets")
		return writeSockets(s, m.Sockets)
	case MessageServerSideEmit:
		n := 1
		if m.RequestID != "" {
			n++
		}
		s.beginObject(n)
		if m.RequestID != "" {
			s.key("requestId")
			s.str(m.RequestID)
		}
		s.key("packet")
		if err := writeArgs(s, m.Args); err != nil {
			return err
		}
	case MessageServerSideEmitResponse, MessageBroadcastAck:
		s.beginObject(2)
		s.key("requestId")
		s.str(m.RequestID)
		s.key("packet")
		if err := writeValue(s, m.Value, 2); err != nil {
			return err
		}
	case MessageBroadcastClientCount:
		s.beginObject(2)
		s.key("requestId")
		s.str(m.RequestID)
		s.key("clientCount")
		s.integer(m.ClientCount)
	default:
		return fmt.Errorf("cannot encode message type %v", m.Type)
	}
	s.endObject()
	return nil
}

// DecodeClusterMessage decodes a message read on a sharded channel: JSON when it
// starts with '{', a msgpack map otherwise. Every way the input can be wrong gives
// an error wrapping ErrMalformed, including a missing nsp (receivers need it to
// drop other namespaces' messages) and data of the wrong shape for its type. A
// packet without nsp gets the message's.
func DecodeClusterMessage(b []byte) (*ClusterMessage, error) {
	top, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	t, ok := toInt64(top["type"])
	if !ok || t < int64(MessageInitialHeartbeat) || t > int64(MessageAdapterClose) {
		return nil, malformed("cluster message: bad type %v", top["type"])
	}
	m := &ClusterMessage{Type: MessageType(t)}
	if m.UID, err = optString(top, "uid"); err != nil {
		return nil, err
	}
	nsp, ok := top["nsp"].(string)
	if !ok {
		return nil, malformed("cluster message %v: nsp is %T, not a string", m.Type, top["nsp"])
	}
	m.Nsp = nsp
	if m.Type == MessageInitialHeartbeat || m.Type == MessageHeartbeat || m.Type == MessageAdapterClose {
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
	case MessageBroadcast:
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
	case MessageSocketsJoin, MessageSocketsLeave:
		if m.Rooms, err = roomList(data["rooms"], "rooms"); err != nil {
			return nil, err
		}
	case MessageDisconnectSockets:
		if v, ok := data["close"]; ok && v != nil {
			c, ok := v.(bool)
			if !ok {
				return nil, malformed("DISCONNECT_SOCKETS: close is %T, not a boolean", v)
			}
			m.Close = c
		}
	case MessageFetchSocketsResponse:
		list, ok := data["sockets"].([]any)
		if !ok {
			return nil, malformed("FETCH_SOCKETS_RESPONSE: sockets is %T, not an array", data["sockets"])
		}
		for _, x := range list {
			if s, ok := socketInfoFrom(x); ok {
				m.Sockets = append(m.Sockets, s)
			}
		}
	case MessageServerSideEmit:
		args, ok := data["packet"].([]any)
		if !ok || len(args) == 0 {
			return nil, malformed("SERVER_SIDE_EMIT: packet is %T, not [event, ...args]", data["packet"])
		}
		if _, ok := args[0].(string); !ok {
			return nil, malformed("SERVER_SIDE_EMIT: event name is %T", args[0])
		}
		m.Args = args
	case MessageServerSideEmitResponse, MessageBroadcastAck:
		m.Value = data["packet"]
	case MessageBroadcastClientCount:
		n, ok := toInt64(data["clientCount"])
		if !ok {
			return nil, malformed("BROADCAST_CLIENT_COUNT: clientCount is %T", data["clientCount"])
		}
		m.ClientCount = n
	}
	switch m.Type {
	case MessageBroadcast, MessageSocketsJoin, MessageSocketsLeave, MessageDisconnectSockets, MessageFetchSockets:
		if m.Opts == nil {
			return nil, malformed("%v: no opts", m.Type)
		}
	}
	switch m.Type {
	case MessageFetchSockets, MessageFetchSocketsResponse, MessageServerSideEmitResponse,
		MessageBroadcastClientCount, MessageBroadcastAck:
		if m.RequestID == "" {
			return nil, malformed("%v: no requestId", m.Type)
		}
	}
	return m, nil
}

// socketInfoFrom reads one socket of a fetch answer; entries without an id are
// skipped.
func socketInfoFrom(v any) (SocketInfo, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return SocketInfo{}, false
	}
	id, ok := m["id"].(string)
	if !ok || id == "" {
		return SocketInfo{}, false
	}
	s := SocketInfo{ID: id, Handshake: m["handshake"], Data: m["data"]}
	if rooms, ok := m["rooms"].([]any); ok {
		for _, r := range rooms {
			if r, ok := r.(string); ok {
				s.Rooms = append(s.Rooms, r)
			}
		}
	}
	return s, true
}
