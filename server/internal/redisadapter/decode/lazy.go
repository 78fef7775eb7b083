package decode

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/taskwire/taskwire/emitter/wire"
)

// Decoding broadcasts for delivery. A server that receives a broadcast does not
// need the event's arguments as Go values: it needs them as the JSON its clients
// receive. Lazy reads everything but the arguments, which it keeps
// in msgpack form; AppendJSON then writes them as JSON straight from msgpack, and
// Data decodes them only for a caller that wants the values after all.

// LazyBroadcast is a broadcast message [uid, packet, opts] whose event data is
// decoded only on demand.
type LazyBroadcast struct {
	UID  string
	Type wire.PacketType
	// Nsp is the namespace ("/" when the message has none).
	Nsp  string
	ID   *uint64
	Opts wire.Opts

	raw     []byte // the data array in msgpack form, or nil
	data    []any  // the data, when decoded
	decoded bool
}

// errSlow says that a message has a shape the lazy decoder leaves to
// Broadcast, which then decides (and reports errors) as always.
var errSlow = errors.New("decode: not a common shape")

// Lazy decodes a broadcast message like Broadcast, except
// for the contents of its event data, which are checked when they are used (see
// LazyBroadcast.AppendJSON and LazyBroadcast.Data): a message Broadcast
// accepts gives the same fields here and the same Data, and one it rejects is
// rejected here too, or by Data. The message must not change while the result is
// in use.
func Lazy(b []byte) (*LazyBroadcast, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, malformed("broadcast: %v", err)
	}
	if lb, err := scanBroadcast(b); err == nil {
		return lb, nil
	}
	full, err := Broadcast(b)
	if err != nil {
		return nil, err
	}
	return &LazyBroadcast{UID: full.UID, Type: full.Packet.Type, Nsp: full.Packet.Nsp, ID: full.Packet.ID,
		Opts: full.Opts, data: full.Packet.Data, decoded: true}, nil
}

// Data returns the event data ([event, args...]) as Broadcast gives it in
// Packet.Data (nil when the message has none). It decodes it on the first call.
func (lb *LazyBroadcast) Data() ([]any, error) {
	if !lb.decoded && lb.raw == nil {
		lb.decoded = true
	}
	if !lb.decoded {
		r := mpReader{b: lb.raw}
		v, err := r.value(0)
		if err != nil {
			// Binary, dates, other extensions: the msgpack library's decoding.
			if v, err = newDecoder(lb.raw).DecodeInterface(); err != nil {
				return nil, malformed("packet data: %v", err)
			}
		}
		lb.data, _ = v.([]any)
		lb.decoded = true
	}
	return lb.data, nil
}

// value decodes the value at r into the Go values the msgpack library's
// DecodeInterface gives (integers in the type of their encoding, float32 and
// float64, strings, []any, map[string]any), or fails with errSlow for what it
// leaves to that library (binary, extensions, map keys that are not strings).
func (r *mpReader) value(depth int) (any, error) {
	if depth > wire.MaxDepth {
		return nil, errSlow
	}
	c := r.b[r.pos]
	switch {
	case c <= 0x7f || c >= 0xe0:
		r.pos++
		return int8(c), nil
	case c >= 0xa0 && c <= 0xbf, c == 0xd9, c == 0xda, c == 0xdb:
		s, _ := r.str()
		return s, nil
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, _, _ := r.containerLen(r.byte())
		out := make([]any, 0, n)
		for range n {
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		n, _, _ := r.containerLen(r.byte())
		m := make(map[string]any, n)
		for range n {
			k, ok := r.str()
			if !ok {
				return nil, errSlow
			}
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	r.pos++
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xca:
		return math.Float32frombits(binary.BigEndian.Uint32(r.n(4))), nil
	case 0xcb:
		return math.Float64frombits(binary.BigEndian.Uint64(r.n(8))), nil
	case 0xcc:
		return r.byte(), nil
	case 0xcd:
		return binary.BigEndian.Uint16(r.n(2)), nil
	case 0xce:
		return binary.BigEndian.Uint32(r.n(4)), nil
	case 0xcf:
		return binary.BigEndian.Uint64(r.n(8)), nil
	case 0xd0:
		return int8(r.byte()), nil
	case 0xd1:
		return int16(binary.BigEndian.Uint16(r.n(2))), nil
	case 0xd2:
		return int32(binary.BigEndian.Uint32(r.n(4))), nil
	case 0xd3:
		return int64(binary.BigEndian.Uint64(r.n(8))), nil
	}
	return nil, errSlow
}

// ErrNotJSON is returned by AppendJSON for data that JSON cannot carry as a
// Socket.IO client receives it: binary (sent as attachments), numbers that are
// not finite, and msgpack extensions other than dates.
var ErrNotJSON = errors.New("decode: data not expressible as plain JSON")

// AppendJSON appends the event data as JSON (the array a Socket.IO client
// receives in an EVENT packet, as Node's JSON.stringify writes it: see the value
// rules) to dst, or fails with ErrNotJSON (dst unchanged in length), in which
// case the caller encodes the values of Data instead. Missing data is an empty
// array.
func (lb *LazyBroadcast) AppendJSON(dst []byte) ([]byte, error) {
	if lb.decoded {
		if lb.data == nil {
			return append(dst, "[]"...), nil
		}
		return dst, ErrNotJSON
	}
	if lb.raw == nil {
		return append(dst, "[]"...), nil
	}
	r := mpReader{b: lb.raw}
	out, err := r.appendJSON(dst, 0)
	if err != nil {
		return dst, ErrNotJSON
	}
	return out, nil
}

// mpReader reads msgpack that checkMsgpack accepted: lengths are known to fit,
// so reads need no bounds errors beyond what the checks guarantee.
type mpReader struct {
	b   []byte
	pos int
}

func (r *mpReader) byte() byte {
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *mpReader) n(k int) []byte {
	p := r.b[r.pos : r.pos+k]
	r.pos += k
	return p
}

// length reads the element count of an array (isMap false) or map header c.
func (r *mpReader) containerLen(c byte) (int, bool, bool) {
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), false, true
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), true, true
	case c == 0xdc:
		return int(binary.BigEndian.Uint16(r.n(2))), false, true
	case c == 0xdd:
		return int(binary.BigEndian.Uint32(r.n(4))), false, true
	case c == 0xde:
		return int(binary.BigEndian.Uint16(r.n(2))), true, true
	case c == 0xdf:
		return int(binary.BigEndian.Uint32(r.n(4))), true, true
	}
	return 0, false, false
}

// strBytes reads a str value; ok is false (nothing read) for anything else.
func (r *mpReader) strBytes() ([]byte, bool) {
	c := r.b[r.pos]
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		r.pos++
		n = int(c & 0x1f)
	case c == 0xd9:
		r.pos++
		n = int(r.byte())
	case c == 0xda:
		r.pos++
		n = int(binary.BigEndian.Uint16(r.n(2)))
	case c == 0xdb:
		r.pos++
		n = int(binary.BigEndian.Uint32(r.n(4)))
	default:
		return nil, false
	}
	return r.n(n), true
}

func (r *mpReader) str() (string, bool) {
	b, ok := r.strBytes()
	if !ok {
		return "", false
	}
	return string(b), true
}

// integer reads an integer value (any msgpack integer code, as toInt64 accepts
// it); ok is false (nothing read) for anything else.
func (r *mpReader) integer() (int64, bool) {
	c := r.b[r.pos]
	switch {
	case c <= 0x7f:
		r.pos++
		return int64(c), true
	case c >= 0xe0:
		r.pos++
		return int64(int8(c)), true
	}
	switch c {
	case 0xcc:
		r.pos++
		return int64(r.byte()), true
	case 0xcd:
		r.pos++
		return int64(binary.BigEndian.Uint16(r.n(2))), true
	case 0xce:
		r.pos++
		return int64(binary.BigEndian.Uint32(r.n(4))), true
	case 0xcf:
		u := binary.BigEndian.Uint64(r.b[r.pos+1 : r.pos+9])
		if u > math.MaxInt64 {
			return 0, false
		}
		r.pos += 9
		return int64(u), true
	case 0xd0:
		r.pos++
		return int64(int8(r.byte())), true
	case 0xd1:
		r.pos++
		return int64(int16(binary.BigEndian.Uint16(r.n(2)))), true
	case 0xd2:
		r.pos++
		return int64(int32(binary.BigEndian.Uint32(r.n(4)))), true
	case 0xd3:
		r.pos++
		return int64(binary.BigEndian.Uint64(r.n(8))), true
	}
	return 0, false
}

func (r *mpReader) isNil() bool {
	if r.b[r.pos] == 0xc0 {
		r.pos++
		return true
	}
	return false
}

// skipScalar steps over a nil, boolean, integer or string and reports true, or
// reports false for anything else (left to Broadcast, which decodes
// every value, even of keys it does not use).
func (r *mpReader) skipScalar() bool {
	if _, ok := r.strBytes(); ok {
		return true
	}
	if _, ok := r.integer(); ok {
		return true
	}
	switch r.b[r.pos] {
	case 0xc0, 0xc2, 0xc3:
		r.pos++
		return true
	}
	return false
}

// skip steps over one value.
func (r *mpReader) skip() {
	for pending := 1; pending > 0; pending-- {
		c := r.byte()
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			r.pos += int(c & 0x1f)
		case c >= 0x90 && c <= 0x9f:
			pending += int(c & 0x0f)
		case c >= 0x80 && c <= 0x8f:
			pending += 2 * int(c&0x0f)
		default:
			switch c {
			case 0xcc, 0xd0:
				r.pos++
			case 0xcd, 0xd1:
				r.pos += 2
			case 0xca, 0xce, 0xd2:
				r.pos += 4
			case 0xcb, 0xcf, 0xd3:
				r.pos += 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
				r.pos += 1 + 1<<(c-0xd4)
			case 0xc4, 0xd9:
				r.pos += 1 + int(r.b[r.pos])
			case 0xc5, 0xda:
				r.pos += 2 + int(binary.BigEndian.Uint16(r.b[r.pos:]))
			case 0xc6, 0xdb:
				r.pos += 4 + int(binary.BigEndian.Uint32(r.b[r.pos:]))
			case 0xc7:
				r.pos += 2 + int(r.b[r.pos])
			case 0xc8:
				r.pos += 3 + int(binary.BigEndian.Uint16(r.b[r.pos:]))
			case 0xc9:
				r.pos += 5 + int(binary.BigEndian.Uint32(r.b[r.pos:]))
			case 0xdc:
				pending += int(binary.BigEndian.Uint16(r.n(2)))
			case 0xdd:
				pending += int(binary.BigEndian.Uint32(r.n(4)))
			case 0xde:
				pending += 2 * int(binary.BigEndian.Uint16(r.n(2)))
			case 0xdf:
				pending += 2 * int(binary.BigEndian.Uint32(r.n(4)))
			}
		}
	}
}

// scanBroadcast reads the common shape of a broadcast message (checked by
// checkMsgpack): an array of at least 3 elements, a str uid, a packet map and an
// opts map with str keys and values of the expected kinds. Anything else gives
// errSlow.
func scanBroadcast(b []byte) (*LazyBroadcast, error) {
	r := mpReader{b: b}
	n, isMap, ok := r.containerLen(r.byte())
	if !ok || isMap || n < 3 {
		return nil, errSlow
	}
	lb := &LazyBroadcast{Nsp: "/"}
	if lb.UID, ok = r.str(); !ok {
		return nil, errSlow
	}
	if err := r.scanPacket(lb); err != nil {
		return nil, err
	}
	if err := r.scanOpts(&lb.Opts); err != nil {
		return nil, err
	}
	return lb, nil
}

func (r *mpReader) scanPacket(lb *LazyBroadcast) error {
	n, isMap, ok := r.containerLen(r.byte())
	if !ok || !isMap {
		return errSlow
	}
	haveType := false
	for range n {
		k, ok := r.strBytes()
		if !ok {
			return errSlow
		}
		switch string(k) {
		case "type":
			t, ok := r.integer()
			if !ok || t < 0 || t > 6 {
				return errSlow
			}
			lb.Type, haveType = wire.PacketType(t), true
		case "nsp":
			if r.isNil() {
				lb.Nsp = "/"
				continue
			}
			if lb.Nsp, ok = r.str(); !ok {
				return errSlow
			}
		case "data":
			if r.isNil() {
				lb.raw = nil
				continue
			}
			start := r.pos
			if _, isMap, ok := r.containerLen(r.b[r.pos]); !ok || isMap {
				return errSlow
			}
			r.skip()
			lb.raw = r.b[start:r.pos]
		case "id":
			if r.isNil() {
				lb.ID = nil
				continue
			}
			id, ok := r.integer()
			if !ok || id < 0 {
				return errSlow
			}
			u := uint64(id)
			lb.ID = &u
		default:
			if !r.skipScalar() {
				return errSlow
			}
		}
	}
	if !haveType {
		return errSlow
	}
	return nil
}

func (r *mpReader) scanOpts(o *wire.Opts) error {
	n, isMap, ok := r.containerLen(r.byte())
	if !ok || !isMap {
		return errSlow
	}
	for range n {
		k, ok := r.strBytes()
		if !ok {
			return errSlow
		}
		switch string(k) {
		case "rooms":
			if o.Rooms, ok = r.rooms(); !ok {
				return errSlow
			}
		case "except":
			if o.Except, ok = r.rooms(); !ok {
				return errSlow
			}
		case "flags":
			if r.isNil() {
				o.Flags = wire.Flags{}
				continue
			}
			if !r.scanFlags(&o.Flags) {
				return errSlow
			}
		default:
			if !r.skipScalar() {
				return errSlow
			}
		}
	}
	return nil
}

// rooms reads a list of room names (strings or integers, as roomList accepts
// them) or nil.
func (r *mpReader) rooms() ([]string, bool) {
	if r.isNil() {
		return nil, true
	}
	n, isMap, ok := r.containerLen(r.b[r.pos])
	if !ok || isMap {
		return nil, false
	}
	r.containerLen(r.byte())
	out := make([]string, 0, n)
	for range n {
		if s, ok := r.str(); ok {
			out = append(out, s)
			continue
		}
		i, ok := r.integer()
		if !ok {
			return nil, false
		}
		out = append(out, strconv.FormatInt(i, 10))
	}
	return out, true
}

// scanFlags reads a flags map as decodeFlags does (later keys win), with bool
// (or nil) flags and an integer timeout.
func (r *mpReader) scanFlags(f *wire.Flags) bool {
	n, isMap, ok := r.containerLen(r.byte())
	if !ok || !isMap {
		return false
	}
	*f = wire.Flags{}
	for range n {
		k, ok := r.strBytes()
		if !ok {
			return false
		}
		name := string(k)
		var target **bool
		switch name {
		case "volatile":
			target = &f.Volatile
		case "compress":
			target = &f.Compress
		case "local":
			target = &f.Local
		case "broadcast":
			target = &f.Broadcast
		case "binary":
			target = &f.Binary
		case "expectSingleResponse":
			target = &f.ExpectSingleResponse
		case "timeout":
			if r.isNil() {
				f.Timeout = nil
				continue
			}
			ms, ok := r.integer()
			if !ok {
				return false
			}
			f.Timeout = &ms
			continue
		default:
			if !r.skipScalar() {
				return false
			}
			continue
		}
		switch c := r.byte(); c {
		case 0xc0:
			*target = nil
		case 0xc2, 0xc3:
			b := c == 0xc3
			*target = &b
		default:
			return false
		}
	}
	return true
}

// appendJSON writes the value at r as JSON (see AppendJSON).
func (r *mpReader) appendJSON(b []byte, depth int) ([]byte, error) {
	if depth > wire.MaxDepth {
		return b, ErrNotJSON
	}
	c := r.b[r.pos]
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3 && c != 0xcf):
		i, _ := r.integer()
		return strconv.AppendInt(b, i, 10), nil
	case c >= 0xa0 && c <= 0xbf, c == 0xd9, c == 0xda, c == 0xdb:
		s, _ := r.strBytes()
		return wire.AppendJSString(b, unsafe.String(unsafe.SliceData(s), len(s))), nil
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, _, _ := r.containerLen(r.byte())
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = r.appendJSON(b, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		n, _, _ := r.containerLen(r.byte())
		b = append(b, '{')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			k, ok := r.strBytes()
			if !ok {
				return b, ErrNotJSON // JavaScript objects have string keys
			}
			b = wire.AppendJSString(b, unsafe.String(unsafe.SliceData(k), len(k)))
			b = append(b, ':')
			var err error
			if b, err = r.appendJSON(b, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	r.pos++
	switch c {
	case 0xc0:
		return append(b, "null"...), nil
	case 0xc2:
		return append(b, "false"...), nil
	case 0xc3:
		return append(b, "true"...), nil
	case 0xcf:
		return strconv.AppendUint(b, binary.BigEndian.Uint64(r.n(8)), 10), nil
	case 0xca:
		f := float64(math.Float32frombits(binary.BigEndian.Uint32(r.n(4))))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return b, ErrNotJSON
		}
		return wire.AppendJSNumber(b, f, 32), nil
	case 0xcb:
		f := math.Float64frombits(binary.BigEndian.Uint64(r.n(8)))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return b, ErrNotJSON
		}
		return wire.AppendJSNumber(b, f, 64), nil
	case 0xd6, 0xd7, 0xc7:
		// The timestamp extension (-1), what Node's Dates become.
		var p []byte
		switch c {
		case 0xd6:
			p = r.n(5)
		case 0xd7:
			p = r.n(9)
		default:
			n := int(r.byte())
			p = r.n(n + 1)
		}
		if int8(p[0]) != -1 {
			return b, ErrNotJSON
		}
		t, ok := timestampOf(p[1:])
		if !ok || t.Unix() > maxDateSeconds || t.Unix() < -maxDateSeconds {
			// JavaScript has no such Date: left to the generic path.
			return b, ErrNotJSON
		}
		return wire.AppendJSDate(b, t), nil
	}
	// Binary and the other extensions.
	return b, ErrNotJSON
}

// maxDateSeconds bounds the dates of JavaScript (100 000 000 days either side
// of 1970).
const maxDateSeconds = 8_640_000_000_000

// timestampOf reads the payload of a msgpack timestamp extension (4, 8 or 12
// bytes).
func timestampOf(p []byte) (time.Time, bool) {
	switch len(p) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0), true
	case 8:
		v := binary.BigEndian.Uint64(p)
		nsec := int64(v >> 34)
		if nsec > 999_999_999 {
			return time.Time{}, false
		}
		return time.Unix(int64(v&(1<<34-1)), nsec), true
	case 12:
		nsec := int64(binary.BigEndian.Uint32(p))
		if nsec > 999_999_999 {
			return time.Time{}, false
		}
		return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), nsec), true
	}
	return time.Time{}, false
}
