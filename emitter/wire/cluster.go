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
