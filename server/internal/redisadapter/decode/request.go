package decode

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/taskwire/taskwire/emitter/wire"
)

// Request decodes a message read on the request channel: JSON when it starts
// with '{', msgpack otherwise. Errors wrap ErrMalformed.
func Request(b []byte) (*wire.Request, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	t, ok := toInt64(m["type"])
	if !ok || t < 0 || t > int64(wire.RequestBroadcastAck) {
		return nil, malformed("request: bad type %v", m["type"])
	}
	r := &wire.Request{Type: wire.RequestType(t)}
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
	case wire.RequestRemoteJoin, wire.RequestRemoteLeave, wire.RequestRemoteDisconnect:
		if r.Opts == nil && r.Sid == "" {
			return nil, malformed("request %v: neither opts nor sid", r.Type)
		}
	case wire.RequestServerSideEmit:
		if len(r.Data) == 0 {
			return nil, malformed("request %v: no data", r.Type)
		}
		if _, ok := r.Data[0].(string); !ok {
			return nil, malformed("request %v: event name is %T", r.Type, r.Data[0])
		}
	case wire.RequestBroadcast:
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

// Reply is a response as read from the response channel. Responses to
// SOCKETS, ALL_ROOMS and REMOTE_FETCH carry no type; the requester knows what it
// asked. Sockets holds either socket ids (SOCKETS) or socket objects (REMOTE_FETCH).
type Reply struct {
	Type        *wire.RequestType
	RequestID   string
	Sockets     []any
	Rooms       []string
	Data        any
	ClientCount int64
	Packet      any
	// Has lists the keys present, so a requester can tell an empty list from none.
	Has map[string]bool
}

// Response decodes a message read on a response channel. Errors wrap
// ErrMalformed.
func Response(b []byte) (*Reply, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	r := &Reply{Has: make(map[string]bool, len(m))}
	for k := range m {
		r.Has[k] = true
	}
	if v, ok := m["type"]; ok && v != nil {
		t, ok := toInt64(v)
		if !ok {
			return nil, malformed("response: bad type %v", v)
		}
		rt := wire.RequestType(t)
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
