package decode

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/taskwire/taskwire/emitter/wire"
)

// ErrMalformed wraps every decoding failure, so callers can count them apart from
// other errors.
var ErrMalformed = errors.New("decode: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Broadcast decodes a broadcast message [uid, packet, opts]. Every way the
// input can be wrong gives an error wrapping ErrMalformed; it never panics.
func Broadcast(b []byte) (*wire.Broadcast, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, malformed("broadcast: %v", err)
	}
	d := newDecoder(b)
	n, err := d.DecodeArrayLen()
	if err != nil {
		return nil, malformed("broadcast: %v", err)
	}
	if n < 3 {
		return nil, malformed("broadcast: want an array of 3 elements, got %d", n)
	}
	uid, err := d.DecodeString()
	if err != nil {
		return nil, malformed("broadcast uid: %v", err)
	}
	pm, err := d.DecodeMap()
	if err != nil {
		return nil, malformed("broadcast packet: %v", err)
	}
	pkt, err := packetFromMap(pm)
	if err != nil {
		return nil, err
	}
	om, err := d.DecodeMap()
	if err != nil {
		return nil, malformed("broadcast opts: %v", err)
	}
	opts, err := optsFromMap(om)
	if err != nil {
		return nil, err
	}
	return &wire.Broadcast{UID: uid, Packet: *pkt, Opts: opts}, nil
}

func packetFromMap(m map[string]any) (*wire.Packet, error) {
	if m == nil {
		return nil, malformed("packet: missing")
	}
	t, ok := toInt64(m["type"])
	if !ok || t < 0 || t > 6 {
		return nil, malformed("packet: bad type %v", m["type"])
	}
	p := &wire.Packet{Type: wire.PacketType(t), Nsp: "/"}
	if nsp, ok := m["nsp"]; ok && nsp != nil {
		s, ok := nsp.(string)
		if !ok {
			return nil, malformed("packet: nsp is %T, not a string", nsp)
		}
		p.Nsp = s
	}
	if data, ok := m["data"]; ok && data != nil {
		arr, ok := data.([]any)
		if !ok {
			return nil, malformed("packet: data is %T, not an array", data)
		}
		p.Data = arr
	}
	if id, ok := m["id"]; ok && id != nil {
		n, ok := toInt64(id)
		if !ok || n < 0 {
			return nil, malformed("packet: bad id %v", id)
		}
		u := uint64(n)
		p.ID = &u
	}
	return p, nil
}

func optsFromMap(m map[string]any) (wire.Opts, error) {
	var o wire.Opts
	var err error
	if o.Rooms, err = roomList(m["rooms"], "rooms"); err != nil {
		return o, err
	}
	if o.Except, err = roomList(m["except"], "except"); err != nil {
		return o, err
	}
	if fm, ok := m["flags"]; ok && fm != nil {
		mm, ok := fm.(map[string]any)
		if !ok {
			return o, malformed("opts.flags is %T, not a map", fm)
		}
		if o.Flags, err = flagsFromMap(mm); err != nil {
			return o, malformed("opts.%v", err)
		}
	}
	return o, nil
}

// roomList accepts an array of room names; numbers are accepted as their decimal
// form, as Node looks numeric rooms up both ways.
func roomList(v any, field string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, malformed("opts.%s is %T, not an array", field, v)
	}
	out := make([]string, 0, len(arr))
	for _, r := range arr {
		switch r := r.(type) {
		case string:
			out = append(out, r)
		default:
			n, ok := toInt64(r)
			if !ok {
				return nil, malformed("opts.%s: room is %T", field, r)
			}
			out = append(out, strconv.FormatInt(n, 10))
		}
	}
	return out, nil
}

// Int64 returns the whole number v as the decoders deliver it (a msgpack
// integer in the Go type of its encoding: int8 for a fixint, uint16 for a
// uint 16, ...; a float that holds an integer), and false for anything else.
func Int64(v any) (int64, bool) { return toInt64(v) }

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) || n > math.MaxInt64 || n < math.MinInt64 {
			return 0, false
		}
		return int64(n), true
	case float32:
		return toInt64(float64(n))
	}
	return 0, false
}

// flagNames are the broadcast flags as written on the wire.
var flagNames = [...]string{"volatile", "compress", "local", "broadcast", "binary", "timeout", "expectSingleResponse"}

// flagsFromMap reads the flags of opts. Unknown flags are ignored; known ones
// must have their type (a number of milliseconds for timeout, booleans else).
func flagsFromMap(m map[string]any) (wire.Flags, error) {
	var f wire.Flags
	for _, n := range flagNames {
		v, ok := m[n]
		if !ok || v == nil {
			continue
		}
		if n == "timeout" {
			ms, ok := toInt64(v)
			if !ok {
				return f, fmt.Errorf("flags.timeout: not a number: %T", v)
			}
			f.Timeout = &ms
			continue
		}
		b, ok := v.(bool)
		if !ok {
			return f, fmt.Errorf("flags.%s: not a boolean: %T", n, v)
		}
		switch n {
		case "volatile":
			f.Volatile = &b
		case "compress":
			f.Compress = &b
		case "local":
			f.Local = &b
		case "broadcast":
			f.Broadcast = &b
		case "binary":
			f.Binary = &b
		default:
			f.ExpectSingleResponse = &b
		}
	}
	return f, nil
}

// newDecoder returns a msgpack decoder for untrusted input: maps decode to
// map[string]any and structs are matched by json tag names.
func newDecoder(b []byte) *msgpack.Decoder {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.SetCustomStructTag("json")
	return d
}
