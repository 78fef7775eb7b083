package wire

import (
	"bytes"
	"encoding/json"
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

// Field orders of Node's adapter and emitter, so the bytes match.
type (
	jsonOpts struct {
		Rooms  []string `json:"rooms"`
		Except []string `json:"except"`
	}
	jsonJoin struct {
		UID   string   `json:"uid,omitempty"`
		Type  int      `json:"type"`
		Opts  jsonOpts `json:"opts"`
		Rooms []string `json:"rooms"`
	}
	jsonDisconnect struct {
		UID   string   `json:"uid,omitempty"`
		Type  int      `json:"type"`
		Opts  jsonOpts `json:"opts"`
		Close bool     `json:"close"`
	}
	jsonServerSideEmit struct {
		UID       string `json:"uid"`
		RequestID string `json:"requestId,omitempty"`
		Type      int    `json:"type"`
		Data      []any  `json:"data"`
	}
	jsonQuery struct {
		UID       string    `json:"uid"`
		RequestID string    `json:"requestId"`
		Type      int       `json:"type"`
		Rooms     []string  `json:"rooms,omitempty"`
		Opts      *jsonOpts `json:"opts,omitempty"`
	}
)

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func optsJSON(o *Opts) jsonOpts {
	if o == nil {
		return jsonOpts{Rooms: []string{}, Except: []string{}}
	}
	return jsonOpts{Rooms: nonNil(o.Rooms), Except: nonNil(o.Except)}
}

// marshalJSON encodes v like JSON.stringify: no HTML escaping, U+2028 and U+2029
// written as themselves, no trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeLineSeparators(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// unescapeLineSeparators replaces the escapes \u2028 and \u2029, which encoding/json
// always writes, with the characters themselves, as JSON.stringify writes them. In
// encoding/json's output every backslash starts an escape, so walking escape by
// escape never mistakes an escaped backslash followed by "u2028" for one.
func unescapeLineSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) && string(b[i+2:i+5]) == "202" && (b[i+5] == '8' || b[i+5] == '9') {
			out = append(out, 0xe2, 0x80, 0xa8+(b[i+5]-'8'))
			i += 5
			continue
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}

// EncodeRequest encodes r as Node does: JSON for every type except BROADCAST, which
// is a msgpack map because its packet may hold binary.
func EncodeRequest(r *Request) ([]byte, error) {
	switch r.Type {
	case RequestRemoteJoin, RequestRemoteLeave:
		return marshalJSON(jsonJoin{UID: r.UID, Type: int(r.Type), Opts: optsJSON(r.Opts), Rooms: nonNil(r.Rooms)})
	case RequestRemoteDisconnect:
		return marshalJSON(jsonDisconnect{UID: r.UID, Type: int(r.Type), Opts: optsJSON(r.Opts), Close: r.Close})
	case RequestServerSideEmit:
		if len(r.Data) == 0 {
			return nil, fmt.Errorf("wire: SERVER_SIDE_EMIT needs an event name")
		}
		return marshalJSON(jsonServerSideEmit{UID: r.UID, RequestID: r.RequestID, Type: int(r.Type), Data: r.Data})
	case RequestSockets, RequestAllRooms:
		return marshalJSON(jsonQuery{UID: r.UID, RequestID: r.RequestID, Type: int(r.Type), Rooms: r.Rooms})
	case RequestRemoteFetch:
		o := optsJSON(r.Opts)
		return marshalJSON(jsonQuery{UID: r.UID, RequestID: r.RequestID, Type: int(r.Type), Opts: &o})
	case RequestBroadcast:
		if r.Packet == nil || r.Opts == nil {
			return nil, fmt.Errorf("wire: BROADCAST needs a packet and opts")
		}
		e := getEncoder()
		if err := encodeBroadcastRequest(e, r); err != nil {
			e.release()
			return nil, err
		}
		return e.finish(), nil
	}
	return nil, fmt.Errorf("wire: cannot encode request of type %v", r.Type)
}

func encodeBroadcastRequest(e *encoder, r *Request) error {
	if err := e.enc.EncodeMapLen(5); err != nil {
		return err
	}
	for _, step := range []func() error{
		func() error { return e.str("uid") },
		func() error { return e.str(r.UID) },
		func() error { return e.str("requestId") },
		func() error { return e.str(r.RequestID) },
		func() error { return e.str("type") },
		func() error { return e.enc.EncodeInt(int64(r.Type)) },
		func() error { return e.str("packet") },
		func() error { return encodePacket(e, r.Packet) },
		func() error { return e.str("opts") },
		func() error { return encodeOptsMap(e, r.Opts) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// encodeOptsMap writes {rooms, except, flags} (the adapter's order).
func encodeOptsMap(e *encoder, o *Opts) error {
	if err := e.enc.EncodeMapLen(3); err != nil {
		return err
	}
	if err := e.str("rooms"); err != nil {
		return err
	}
	if err := e.strings(o.Rooms); err != nil {
		return err
	}
	if err := e.str("except"); err != nil {
		return err
	}
	if err := e.strings(o.Except); err != nil {
		return err
	}
	if err := e.str("flags"); err != nil {
		return err
	}
	return o.Flags.encode(e)
}

// DecodeRequest decodes a message read on the request channel: JSON when it starts
// with '{', msgpack otherwise. Errors wrap ErrMalformed.
func DecodeRequest(b []byte) (*Request, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	t, ok := toInt64(m["type"])
	if !ok || t < 0 || t > int64(RequestBroadcastAck) {
		return nil, malformed("request: bad type %v", m["type"])
	}
	r := &Request{Type: RequestType(t)}
	if r.UID, err = optString(m, "uid"); err != nil {
		return nil, err
	}
	if r.RequestID, err = optID(m, "requestId"); err != nil {
		return nil, err
	}
	if r.Sid, err = optString(m, "sid"); err != nil {
		return nil, err
	}
	if r.Room, err = optString(m, "room"); err != nil {
		return nil, err
	}
	if v, ok := m["close"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, malformed("request: close is %T, not a boolean", v)
		}
		r.Close = b
	}
	if r.Rooms, err = roomList(m["rooms"], "rooms"); err != nil {
		return nil, err
	}
	if v, ok := m["opts"]; ok && v != nil {
		om, ok := v.(map[string]any)
		if !ok {
			return nil, malformed("request: opts is %T, not an object", v)
		}
		o, err := optsFromMap(om)
		if err != nil {
			return nil, err
		}
		r.Opts = &o
	}
	if v, ok := m["data"]; ok && v != nil {
		arr, ok := v.([]any)
		if !ok {
			return nil, malformed("request: data is %T, not an array", v)
		}
		r.Data = arr
	}
	if v, ok := m["packet"]; ok && v != nil {
		pm, ok := v.(map[string]any)
		if !ok {
			return nil, malformed("request: packet is %T, not an object", v)
		}
		if r.Packet, err = packetFromMap(pm); err != nil {
			return nil, err
		}
	}
	switch r.Type {
	case RequestRemoteJoin, RequestRemoteLeave, RequestRemoteDisconnect:
		if r.Opts == nil && r.Sid == "" {
			return nil, malformed("request %v: neither opts nor sid", r.Type)
		}
	case RequestServerSideEmit:
		if len(r.Data) == 0 {
			return nil, malformed("request %v: no data", r.Type)
		}
		if _, ok := r.Data[0].(string); !ok {
			return nil, malformed("request %v: event name is %T", r.Type, r.Data[0])
		}
	case RequestBroadcast:
		if r.Packet == nil || r.Opts == nil || r.RequestID == "" {
			return nil, malformed("request %v: needs packet, opts and requestId", r.Type)
		}
	}
	return r, nil
}

// decodeObject reads a JSON object or a msgpack map into a generic map. Numbers from
// JSON stay json.Number so large integers keep their value.
func decodeObject(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, malformed("empty message")
	}
	if b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, malformed("json: %v", err)
		}
		return normalizeJSON(m).(map[string]any), nil
	}
	if err := checkMsgpack(b); err != nil {
		return nil, malformed("msgpack: %v", err)
	}
	m, err := newDecoder(b).DecodeMap()
	if err != nil {
		return nil, malformed("msgpack: %v", err)
	}
	if m == nil {
		return nil, malformed("msgpack: nil map")
	}
	return m, nil
}

// normalizeJSON turns json.Number into int64 when integral and float64 otherwise, so
// decoded JSON looks like decoded msgpack to the rest of the package.
func normalizeJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = normalizeJSON(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = normalizeJSON(x)
		}
		return v
	}
	return v
}

func optString(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", malformed("%s is %T, not a string", key, v)
	}
	return s, nil
}

// optID reads a request id, which Node writes as a string but which older versions
// wrote as a number.
func optID(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	if n, ok := toInt64(v); ok {
		return strconv.FormatInt(n, 10), nil
	}
	return "", malformed("%s is %T", key, v)
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
	case RequestSockets:
		return marshalJSON(struct {
			RequestID string   `json:"requestId"`
			Sockets   []string `json:"sockets"`
		}{r.RequestID, nonNil(r.SocketIDs)})
	case RequestAllRooms:
		return marshalJSON(struct {
			RequestID string   `json:"requestId"`
			Rooms     []string `json:"rooms"`
		}{r.RequestID, nonNil(r.Rooms)})
	case RequestRemoteFetch:
		s := r.Sockets
		if s == nil {
			s = []SocketInfo{}
		}
		for i := range s {
			s[i].Rooms = nonNil(s[i].Rooms)
		}
		return marshalJSON(struct {
			RequestID string       `json:"requestId"`
			Sockets   []SocketInfo `json:"sockets"`
		}{r.RequestID, s})
	case RequestServerSideEmit:
		return marshalJSON(struct {
			Type      int    `json:"type"`
			RequestID string `json:"requestId"`
			Data      any    `json:"data"`
		}{int(r.Type), r.RequestID, r.Data})
	case RequestBroadcastClientCount:
		return marshalJSON(struct {
			Type        int    `json:"type"`
			RequestID   string `json:"requestId"`
			ClientCount int64  `json:"clientCount"`
		}{int(r.Type), r.RequestID, r.ClientCount})
	case RequestBroadcastAck:
		e := getEncoder()
		err := func() error {
			if err := e.enc.EncodeMapLen(3); err != nil {
				return err
			}
			if err := e.str("type"); err != nil {
				return err
			}
			if err := e.enc.EncodeInt(int64(r.Type)); err != nil {
				return err
			}
			if err := e.str("requestId"); err != nil {
				return err
			}
			if err := e.str(r.RequestID); err != nil {
				return err
			}
			if err := e.str("packet"); err != nil {
				return err
			}
			return e.value(r.Packet)
		}()
		if err != nil {
			e.release()
			return nil, err
		}
		return e.finish(), nil
	}
	return nil, fmt.Errorf("wire: cannot encode response of type %v", r.Type)
}

// DecodedResponse is a response as read from the response channel. Responses to
// SOCKETS, ALL_ROOMS and REMOTE_FETCH carry no type; the requester knows what it
// asked. Sockets holds either socket ids (SOCKETS) or socket objects (REMOTE_FETCH).
type DecodedResponse struct {
	Type        *RequestType
	RequestID   string
	Sockets     []any
	Rooms       []string
	Data        any
	ClientCount int64
	Packet      any
	// Has lists the keys present, so a requester can tell an empty list from none.
	Has map[string]bool
}

// DecodeResponse decodes a message read on a response channel. Errors wrap
// ErrMalformed.
func DecodeResponse(b []byte) (*DecodedResponse, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	r := &DecodedResponse{Has: make(map[string]bool, len(m))}
	for k := range m {
		r.Has[k] = true
	}
	if v, ok := m["type"]; ok && v != nil {
		t, ok := toInt64(v)
		if !ok {
			return nil, malformed("response: bad type %v", v)
		}
		rt := RequestType(t)
		r.Type = &rt
	}
	if r.RequestID, err = optID(m, "requestId"); err != nil {
		return nil, err
	}
	if r.RequestID == "" {
		return nil, malformed("response: no requestId")
	}
	if v, ok := m["sockets"]; ok && v != nil {
		arr, ok := v.([]any)
		if !ok {
			return nil, malformed("response: sockets is %T", v)
		}
		r.Sockets = arr
	}
	if r.Rooms, err = roomList(m["rooms"], "rooms"); err != nil {
		return nil, err
	}
	r.Data = m["data"]
	r.Packet = m["packet"]
	if v, ok := m["clientCount"]; ok && v != nil {
		n, ok := toInt64(v)
		if !ok {
			return nil, malformed("response: clientCount is %T", v)
		}
		r.ClientCount = n
	}
	return r, nil
}
