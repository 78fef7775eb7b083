// Package msgpacktest reads msgpack for the emitter's tests, which check what the
// encoder wrote without a msgpack library.
package msgpacktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Read reads b as exactly one msgpack value, for tests that look at what
// the encoder wrote: nil, bool, int64, uint64 (above MaxInt64), float32, float64,
// string, []byte, time.Time (the timestamp extension), []any and map[string]any.
// It is small and strict, not fast; the server's decoder is the one for real
// traffic.
func Read(b []byte) (any, error) {
	r := mpRead{b: b}
	v, err := r.next(0)
	if err == nil && r.pos != len(b) {
		err = fmt.Errorf("msgpack: %d trailing bytes", len(b)-r.pos)
	}
	return v, err
}

// mpSizes are the sizes of the length or value that follow the codes 0xc4..0xdf.
var mpSizes = map[byte]int{0xc4: 1, 0xc5: 2, 0xc6: 4, 0xc7: 1, 0xc8: 2, 0xc9: 4, 0xca: 4, 0xcb: 8,
	0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
	0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4}

var errShort = errors.New("msgpack: truncated")

type mpRead struct {
	b   []byte
	pos int
}

// take returns the next n bytes.
func (r *mpRead) take(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, errShort
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p, nil
}

// uint reads a big-endian unsigned integer of n bytes (1, 2, 4 or 8).
func (r *mpRead) uint(n int) (uint64, error) {
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, c := range p {
		u = u<<8 | uint64(c)
	}
	return u, nil
}

func (r *mpRead) next(depth int) (any, error) {
	if depth > 512 {
		return nil, errors.New("msgpack: nested too deeply")
	}
	p, err := r.take(1)
	if err != nil {
		return nil, err
	}
	c := p[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xe0 == 0xa0:
		return r.text(int(c & 0x1f))
	case c&0xf0 == 0x90:
		return r.list(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return r.object(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2, 0xc3:
		return c == 0xc3, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return r.ext(1 << (c - 0xd4))
	}
	n, ok := mpSizes[c]
	if !ok {
		return nil, fmt.Errorf("msgpack: code %#x", c)
	}
	u, err := r.uint(n)
	if err != nil {
		return nil, err
	}
	switch c {
	case 0xc4, 0xc5, 0xc6:
		p, err := r.take(int(u))
		return append([]byte{}, p...), err
	case 0xc7, 0xc8, 0xc9:
		return r.ext(int(u))
	case 0xca:
		return math.Float32frombits(uint32(u)), nil
	case 0xcb:
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0:
		return int64(int8(u)), nil
	case 0xd1:
		return int64(int16(u)), nil
	case 0xd2:
		return int64(int32(u)), nil
	case 0xd3:
		return int64(u), nil
	case 0xd9, 0xda, 0xdb:
		return r.text(int(u))
	case 0xdc, 0xdd:
		return r.list(int(u), depth)
	}
	return r.object(int(u), depth)
}

func (r *mpRead) text(n int) (any, error) {
	p, err := r.take(n)
	return string(p), err
}

func (r *mpRead) list(n, depth int) (any, error) {
	if n > len(r.b)-r.pos {
		return nil, errShort
	}
	out := make([]any, n)
	for i := range out {
		v, err := r.next(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (r *mpRead) object(n, depth int) (any, error) {
	if n > len(r.b)-r.pos {
		return nil, errShort
	}
	out := make(map[string]any, n)
	for range n {
		k, err := r.next(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := r.next(depth + 1)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprint(k)] = v
	}
	return out, nil
}

// ext reads an extension of n data bytes; only the timestamp (-1) is known.
func (r *mpRead) ext(n int) (any, error) {
	p, err := r.take(n + 1)
	if err != nil {
		return nil, err
	}
	if int8(p[0]) != -1 {
		return nil, fmt.Errorf("msgpack: extension type %d", int8(p[0]))
	}
	p = p[1:]
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0), nil
	case 8:
		u := binary.BigEndian.Uint64(p)
		return time.Unix(int64(u&(1<<34-1)), int64(u>>34)), nil
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), int64(binary.BigEndian.Uint32(p))), nil
	}
	return nil, fmt.Errorf("msgpack: timestamp of %d bytes", n)
}

// Broadcast is a classic broadcast [uid, {type, data, nsp}, {rooms, except,
// flags}] as Read gives its parts.
type Broadcast struct {
	UID           string
	Nsp           string
	Data          []any
	Rooms, Except []string
	Flags         map[string]any
}

// Volatile reports whether the volatile flag is set and true.
func (b *Broadcast) Volatile() bool { return b.Flags["volatile"] == true }

// Compress reports how a receiver reads the compress flag: only false turns it off.
func (b *Broadcast) Compress() bool { return b.Flags["compress"] != false }

// ReadBroadcast reads a classic broadcast message.
func ReadBroadcast(p []byte) (*Broadcast, error) {
	v, err := Read(p)
	if err != nil {
		return nil, err
	}
	msg, ok := v.([]any)
	if !ok || len(msg) != 3 {
		return nil, fmt.Errorf("msgpack: not a broadcast: %#v", v)
	}
	pkt, _ := msg[1].(map[string]any)
	opts, _ := msg[2].(map[string]any)
	b := &Broadcast{}
	b.UID, _ = msg[0].(string)
	b.Nsp, _ = pkt["nsp"].(string)
	b.Data, _ = pkt["data"].([]any)
	b.Rooms, b.Except = strings(opts["rooms"]), strings(opts["except"])
	b.Flags, _ = opts["flags"].(map[string]any)
	if pkt == nil || opts == nil || b.Data == nil {
		return nil, fmt.Errorf("msgpack: not a broadcast: %#v", v)
	}
	return b, nil
}

// strings returns the strings of a list (nil when v is not a list).
func strings(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
