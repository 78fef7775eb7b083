package wire

import (
	"fmt"
	"strconv"
)

// RequestType is the type of a cluster request of the classic adapter.
type RequestType int

// The request types of @socket.io/redis-adapter 8.x.
const (
	RequestSockets              RequestType = 0 // legacy: socket ids in rooms
	RequestAllRooms             RequestType = 1
	RequestRemoteJoin           RequestType = 2
	RequestRemoteLeave          RequestType = 3
	RequestRemoteDisconnect     RequestType = 4
	RequestRemoteFetch          RequestType = 5
	RequestServerSideEmit       RequestType = 6
	RequestBroadcast            RequestType = 7 // a broadcast that expects acknowledgements
	RequestBroadcastClientCount RequestType = 8 // response only
	RequestBroadcastAck         RequestType = 9 // response only
)

// String returns the name @socket.io/redis-adapter gives t (REMOTE_JOIN, ...).
func (t RequestType) String() string {
	names := [...]string{"SOCKETS", "ALL_ROOMS", "REMOTE_JOIN", "REMOTE_LEAVE", "REMOTE_DISCONNECT",
		"REMOTE_FETCH", "SERVER_SIDE_EMIT", "BROADCAST", "BROADCAST_CLIENT_COUNT", "BROADCAST_ACK"}
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return "RequestType(" + strconv.Itoa(int(t)) + ")"
}

// Request is a cluster request published on the request channel. Which fields are
// used depends on Type:
//
//	SOCKETS            UID, RequestID, Rooms
//	ALL_ROOMS          UID, RequestID
//	REMOTE_JOIN/LEAVE  UID, Opts (which sockets), Rooms (rooms to join or leave)
//	                   legacy form: UID, RequestID, Sid, Room
//	REMOTE_DISCONNECT  UID, Opts, Close; legacy form: Sid, Close, RequestID
//	REMOTE_FETCH       UID, RequestID, Opts
//	SERVER_SIDE_EMIT   UID, Data ([event, args...]); RequestID when an ack is wanted
//	BROADCAST          UID, RequestID, Packet, Opts (with Flags)
//
// Emitters leave UID empty except for SERVER_SIDE_EMIT, where it is "emitter".
type Request struct {
	UID       string
	RequestID string
	Type      RequestType
	Opts      *Opts
	Rooms     []string
	Close     bool
	Data      []any
	Packet    *Packet
	Sid       string
	Room      string
}

// writeOpts writes {rooms, except} (requests) or {rooms, except, flags} (the
// opts of a broadcast or of a cluster message), arrays even when empty.
func writeOpts(s sink, o *Opts, withFlags bool) {
	n := 2
	if withFlags {
		n++
	}
	s.beginObject(n)
	var rooms, except []string
	var flags Flags
	if o != nil {
		rooms, except, flags = o.Rooms, o.Except, o.Flags
	}
	s.key("rooms")
	writeStrings(s, rooms)
	s.key("except")
	writeStrings(s, except)
	if withFlags {
		s.key("flags")
		flags.write(s)
	}
	s.endObject()
}

// encodeJSON runs write on a JSON writer. Binary is written as Node's JSON.stringify
// writes a Buffer, since Node sends these messages as JSON whatever they hold.
func encodeJSON(write func(w *jsonWriter) error) ([]byte, error) {
	w := getJSON(true)
	if err := write(w); err != nil {
		w.release()
		return nil, err
	}
	return w.done(), nil
}

// EncodeJSON encodes v as JSON the way a JavaScript client would write the value
// it receives when v is sent in an event (JSON.stringify of what the Socket.IO
// parser decoded): the same field rules as the event encoder, numbers and
// strings as JavaScript writes them, binary as Node writes a Buffer. It is the
// event encoder's own writer, about twice as fast as encoding/json for event
// payloads (which is why the worker's history uses it).
func EncodeJSON(v any) ([]byte, error) {
	return encodeJSON(func(w *jsonWriter) error { return writeValue(w, v, 0) })
}

// EncodeRequest encodes r as Node does: JSON for every type except BROADCAST, which
// is a msgpack map because its packet may hold binary. Key orders are Node's, so
// the bytes are those of @socket.io/redis-emitter and @socket.io/redis-adapter.
func EncodeRequest(r *Request) ([]byte, error) {
	switch r.Type {
	case RequestRemoteJoin, RequestRemoteLeave, RequestRemoteDisconnect:
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(4)
			if r.UID != "" {
				w.key("uid")
				w.str(r.UID)
			}
			w.key("type")
			w.integer(int64(r.Type))
			w.key("opts")
			writeOpts(w, r.Opts, false)
			if r.Type == RequestRemoteDisconnect {
				w.key("close")
				w.boolean(r.Close)
			} else {
				w.key("rooms")
				writeStrings(w, nonNil(r.Rooms))
			}
			w.endObject()
			return nil
		})
	case RequestServerSideEmit:
		if len(r.Data) == 0 {
			return nil, fmt.Errorf("wire: SERVER_SIDE_EMIT needs an event name")
		}
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(4)
			w.key("uid")
			w.str(r.UID)
			if r.RequestID != "" {
				w.key("requestId")
				w.str(r.RequestID)
			}
			w.key("type")
			w.integer(int64(r.Type))
			w.key("data")
			if err := writeArgs(w, r.Data); err != nil {
				return fmt.Errorf("wire: %w", err)
			}
			w.endObject()
			return nil
		})
	case RequestSockets, RequestAllRooms, RequestRemoteFetch:
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(5)
			w.key("uid")
			w.str(r.UID)
			w.key("requestId")
			w.str(r.RequestID)
			w.key("type")
			w.integer(int64(r.Type))
			if len(r.Rooms) > 0 {
				w.key("rooms")
				writeStrings(w, r.Rooms)
			}
			if r.Type == RequestRemoteFetch {
				w.key("opts")
				writeOpts(w, r.Opts, false)
			}
			w.endObject()
			return nil
		})
	case RequestBroadcast:
		if r.Packet == nil || r.Opts == nil {
			return nil, fmt.Errorf("wire: BROADCAST needs a packet and opts")
		}
		w := getMP()
		w.beginObject(5)
		w.key("uid")
		w.str(r.UID)
		w.key("requestId")
		w.str(r.RequestID)
		w.key("type")
		w.integer(int64(r.Type))
		w.key("packet")
		if err := writePacket(w, r.Packet, true); err != nil {
			w.release()
			return nil, fmt.Errorf("wire: %w", err)
		}
		w.key("opts")
		writeOpts(w, r.Opts, true)
		w.endObject()
		return w.done(), nil
	}
	return nil, fmt.Errorf("wire: cannot encode request of type %v", r.Type)
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// SocketInfo describes one socket in a REMOTE_FETCH response.
type SocketInfo struct {
	ID        string   `json:"id"`
	Handshake any      `json:"handshake"`
	Rooms     []string `json:"rooms"`
	Data      any      `json:"data"`
}

// Response is a cluster response, published on the response channel. Which fields
// are used depends on the request it answers (Type):
//
//	SOCKETS                 RequestID, SocketIDs
//	ALL_ROOMS               RequestID, Rooms
//	REMOTE_FETCH            RequestID, Sockets
//	SERVER_SIDE_EMIT        RequestID, Data (the first acknowledgement argument)
//	BROADCAST_CLIENT_COUNT  RequestID, ClientCount
//	BROADCAST_ACK           RequestID, Packet (the first acknowledgement argument)
type Response struct {
	Type        RequestType
	RequestID   string
	SocketIDs   []string
	Rooms       []string
	Sockets     []SocketInfo
	Data        any
	ClientCount int64
	Packet      any
}

// EncodeResponse encodes r the way Node's adapter does for r.Type.
func EncodeResponse(r *Response) ([]byte, error) {
	switch r.Type {
	case RequestSockets, RequestAllRooms:
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(2)
			w.key("requestId")
			w.str(r.RequestID)
			if r.Type == RequestSockets {
				w.key("sockets")
				writeStrings(w, nonNil(r.SocketIDs))
			} else {
				w.key("rooms")
				writeStrings(w, nonNil(r.Rooms))
			}
			w.endObject()
			return nil
		})
	case RequestRemoteFetch:
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(2)
			w.key("requestId")
			w.str(r.RequestID)
			w.key("sockets")
			return writeSockets(w, r.Sockets)
		})
	case RequestServerSideEmit, RequestBroadcastClientCount:
		return encodeJSON(func(w *jsonWriter) error {
			w.beginObject(3)
			w.key("type")
			w.integer(int64(r.Type))
			w.key("requestId")
			w.str(r.RequestID)
			if r.Type == RequestServerSideEmit {
				w.key("data")
				if err := writeValue(w, r.Data, 1); err != nil {
					return fmt.Errorf("wire: answer: %w", err)
				}
			} else {
				w.key("clientCount")
				w.integer(r.ClientCount)
			}
			w.endObject()
			return nil
		})
	case RequestBroadcastAck:
		w := getMP()
		w.beginObject(3)
		w.key("type")
		w.integer(int64(r.Type))
		w.key("requestId")
		w.str(r.RequestID)
		w.key("packet")
		if err := writeValue(w, r.Packet, 1); err != nil {
			w.release()
			return nil, fmt.Errorf("wire: answer: %w", err)
		}
		w.endObject()
		return w.done(), nil
	}
	return nil, fmt.Errorf("wire: cannot encode response of type %v", r.Type)
}

// writeSockets writes the sockets of a REMOTE_FETCH or FETCH_SOCKETS_RESPONSE
// answer and closes the enclosing object.
func writeSockets(s sink, list []SocketInfo) error {
	s.beginArray(len(list))
	for _, x := range list {
		s.beginObject(4)
		s.key("id")
		s.str(x.ID)
		s.key("handshake")
		if err := writeValue(s, x.Handshake, 2); err != nil {
			return fmt.Errorf("wire: socket %s: handshake: %w", x.ID, err)
		}
		s.key("rooms")
		writeStrings(s, nonNil(x.Rooms))
		s.key("data")
		if err := writeValue(s, x.Data, 2); err != nil {
			return fmt.Errorf("wire: socket %s: data: %w", x.ID, err)
		}
		s.endObject()
	}
	s.endArray()
	s.endObject()
	return nil
}
