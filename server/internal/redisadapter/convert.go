package redisadapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

// socket.io-go-parser keeps packet types as ASCII digits ('2' for EVENT); on the
// wire they are numbers (2), as Node writes them.

func toWireType(t parser.PacketType) (wire.PacketType, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("redisadapter: packet type %d", t)
	}
	return wire.PacketType(t - '0'), nil
}

// fromWireType maps a wire packet type to the parser's. BINARY_EVENT and
// BINARY_ACK become EVENT and ACK: the parser's encoder decides on binary framing
// itself, from the data, and would write a broken packet for a type it did not
// choose.
func fromWireType(t wire.PacketType) parser.PacketType {
	switch t {
	case wire.PacketBinaryEvent:
		return parser.EVENT
	case wire.PacketBinaryAck:
		return parser.ACK
	}
	return parser.PacketType('0' + byte(t))
}

func roomStrings(s *types.Set[socket.Room]) []string {
	if s == nil || s.Len() == 0 {
		return []string{}
	}
	keys := s.Keys()
	out := make([]string, len(keys))
	for i, r := range keys {
		out[i] = string(r)
	}
	return out
}

// roomSet returns rooms as a set, or nil when there are none: the in-memory
// adapter reads a nil set as an empty one, and most messages have no except list.
func roomSet(rooms []string) *types.Set[socket.Room] {
	if len(rooms) == 0 {
		return nil
	}
	s := types.NewSet[socket.Room]()
	for _, r := range rooms {
		s.Add(socket.Room(r))
	}
	return s
}

func roomList(rooms []string) []socket.Room {
	out := make([]socket.Room, len(rooms))
	for i, r := range rooms {
		out[i] = socket.Room(r)
	}
	return out
}

func roomsOf(rooms []socket.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

func isLocal(opts *socket.BroadcastOptions) bool {
	return opts != nil && opts.Flags != nil && opts.Flags.Local
}

// wireFlags writes only flags that are set, as Node does: Go's zero values
// cannot tell "false" from "not set", and Node reads an absent compress as true.
func wireFlags(f *socket.BroadcastFlags) wire.Flags {
	var w wire.Flags
	if f == nil {
		return w
	}
	if f.Volatile {
		w = w.WithVolatile(true)
	}
	if f.Compress {
		w = w.WithCompress(true)
	}
	if f.Timeout != nil {
		w = w.WithTimeout(f.Timeout.Milliseconds())
	}
	if f.ExpectSingleResponse {
		t := true
		w.ExpectSingleResponse = &t
	}
	return w
}

func toWireOpts(opts *socket.BroadcastOptions) *wire.Opts {
	o := &wire.Opts{Rooms: []string{}, Except: []string{}}
	if opts == nil {
		return o
	}
	o.Rooms = roomStrings(opts.Rooms)
	o.Except = roomStrings(opts.Except)
	o.Flags = wireFlags(opts.Flags)
	return o
}

func fromWireOpts(o *wire.Opts) *socket.BroadcastOptions {
	if o == nil {
		return &socket.BroadcastOptions{Flags: &socket.BroadcastFlags{}}
	}
	flags := &socket.BroadcastFlags{}
	flags.Volatile = o.Flags.IsVolatile()
	flags.Compress = o.Flags.ShouldCompress()
	if o.Flags.Timeout != nil {
		d := time.Duration(*o.Flags.Timeout) * time.Millisecond
		flags.Timeout = &d
	}
	if o.Flags.ExpectSingleResponse != nil {
		flags.ExpectSingleResponse = *o.Flags.ExpectSingleResponse
	}
	return &socket.BroadcastOptions{Rooms: roomSet(o.Rooms), Except: roomSet(o.Except), Flags: flags}
}

// normalizeArgs returns event data in the shapes both the wire codec and the
// Socket.IO encoder handle the same way: binary as []byte, text readers as
// strings, nested []any and map[string]any copied, and anything else (structs,
// typed maps and slices, json.Marshaler, json.RawMessage) as wire.Normalize gives
// it: the value rules the emitter encodes with too (what encoding/json shows,
// except that []byte stays binary and time.Time a date), so a client receives the
// same whether the event came from this server, another one or an emitter.
// Readers are consumed, so the caller must use the result for local delivery too.
func normalizeArgs(data any) ([]any, error) {
	arr, ok := data.([]any)
	if !ok {
		return nil, fmt.Errorf("redisadapter: packet data is %T, not an array", data)
	}
	out := make([]any, len(arr))
	for i, v := range arr {
		n, err := normalize(v, 0)
		if err != nil {
			return nil, fmt.Errorf("redisadapter: argument %d: %w", i, err)
		}
		out[i] = n
	}
	return out, nil
}

func normalize(v any, depth int) (any, error) {
	if depth > wire.MaxDepth {
		return nil, fmt.Errorf("nested deeper than %d", wire.MaxDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, []byte,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case *types.StringBuffer:
		return x.String(), nil
	case *strings.Reader:
		b, err := io.ReadAll(x)
		return string(b), err
	case json.RawMessage:
		return wire.Normalize(x)
	case interface{ Bytes() []byte }: // engine buffers, bytes.Buffer
		return bytes.Clone(x.Bytes()), nil
	case io.Reader:
		return io.ReadAll(x)
	}
	return wire.Normalize(v)
}

// redactedHeaders are never sent to other servers in REMOTE_FETCH answers: they
// carry credentials, and every server subscribed to the response channel reads
// every answer.
var redactedHeaders = map[string]bool{"cookie": true, "authorization": true, "proxy-authorization": true}

// nodeHandshake converts a Go handshake to the shape of Node's (headers and query
// values are strings, header names lower case), without credentials: no cookie or
// authorization header and an empty auth object.
func nodeHandshake(h *socket.Handshake) map[string]any {
	if h == nil {
		return map[string]any{}
	}
	headers := make(map[string]any, len(h.Headers))
	for k, vs := range h.Headers {
		name := strings.ToLower(k)
		if redactedHeaders[name] || len(vs) == 0 {
			continue
		}
		if name == "set-cookie" {
			headers[name] = vs
			continue
		}
		headers[name] = strings.Join(vs, ", ")
	}
	query := make(map[string]any, len(h.Query))
	for k, vs := range h.Query {
		switch len(vs) {
		case 0:
		case 1:
			query[k] = vs[0]
		default:
			query[k] = vs
		}
	}
	return map[string]any{
		"headers": headers,
		"time":    h.Time,
		"address": h.Address,
		"xdomain": h.Xdomain,
		"secure":  h.Secure,
		"issued":  h.Issued,
		"url":     h.Url,
		"query":   query,
		"auth":    map[string]any{},
	}
}

// goHandshake reads a handshake object from another server (Node's shape, or a
// Go server's) into socket.io-go's type. Unknown shapes give what could be read.
func goHandshake(v any) *socket.Handshake {
	m, _ := v.(map[string]any)
	h := &socket.Handshake{Headers: map[string][]string{}, Query: map[string][]string{}}
	if m == nil {
		return h
	}
	for k, vs := range stringsMap(m["headers"]) {
		h.Headers[textproto.CanonicalMIMEHeaderKey(k)] = vs
	}
	h.Query = stringsMap(m["query"])
	h.Time, _ = m["time"].(string)
	h.Address, _ = m["address"].(string)
	h.Xdomain, _ = m["xdomain"].(bool)
	h.Secure, _ = m["secure"].(bool)
	h.Url, _ = m["url"].(string)
	switch n := m["issued"].(type) {
	case int64:
		h.Issued = n
	case float64:
		h.Issued = int64(n)
	}
	h.Auth = m["auth"]
	return h
}

func stringsMap(v any) map[string][]string {
	out := map[string][]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		switch x := x.(type) {
		case string:
			out[k] = []string{x}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out[k] = append(out[k], s)
				}
			}
		}
	}
	return out
}

// remoteSocket is a socket of another server, as a REMOTE_FETCH answer
// describes it.
type remoteSocket struct {
	id        socket.SocketId
	handshake *socket.Handshake
	rooms     *types.Set[socket.Room]
	data      any
}

func (r *remoteSocket) Id() socket.SocketId            { return r.id }
func (r *remoteSocket) Handshake() *socket.Handshake   { return r.handshake }
func (r *remoteSocket) Rooms() *types.Set[socket.Room] { return r.rooms }
func (r *remoteSocket) Data() any                      { return r.data }

func remoteSocketFrom(v any) (*remoteSocket, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	id, ok := m["id"].(string)
	if !ok || id == "" {
		return nil, false
	}
	r := &remoteSocket{id: socket.SocketId(id), handshake: goHandshake(m["handshake"]), rooms: types.NewSet[socket.Room](), data: m["data"]}
	if rooms, ok := m["rooms"].([]any); ok {
		for _, x := range rooms {
			if s, ok := x.(string); ok {
				r.rooms.Add(socket.Room(s))
			}
		}
	}
	return r, true
}

// socketInfo describes a local socket for a REMOTE_FETCH answer. Data that cannot
// be encoded as JSON is left out rather than failing the whole answer.
func socketInfo(s socket.SocketDetails) wire.SocketInfo {
	data := s.Data()
	if data != nil {
		if _, err := json.Marshal(data); err != nil {
			data = nil
		}
	}
	return wire.SocketInfo{
		ID:        string(s.Id()),
		Handshake: nodeHandshake(s.Handshake()),
		Rooms:     roomStrings(s.Rooms()),
		Data:      data,
	}
}
