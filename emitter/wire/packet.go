package wire

import (
	"errors"
	"fmt"
	"slices"
)

// PacketType is a Socket.IO protocol (v5) packet type, as the number Node writes.
type PacketType int

// The Socket.IO packet types.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

// Packet is a Socket.IO packet as it travels through Redis: not the text form sent to
// clients, but the object every server encodes for its own clients.
type Packet struct {
	Type PacketType
	// Data is [event, args...] for an EVENT.
	Data []any
	// Nsp is the namespace, with its leading slash. A missing nsp decodes as "/".
	Nsp string
	// ID is set when the sender wants acknowledgements.
	ID *uint64
}

// Flags are the broadcast flags that travel with a broadcast. Only flags that were
// set are written, in the order they were first set, like Node's emitter does.
type Flags struct {
	Volatile             *bool
	Compress             *bool
	Local                *bool
	Broadcast            *bool
	Binary               *bool
	Timeout              *int64 // milliseconds
	ExpectSingleResponse *bool

	order []string
}

// Flag names as written on the wire.
const (
	flagVolatile             = "volatile"
	flagCompress             = "compress"
	flagLocal                = "local"
	flagBroadcast            = "broadcast"
	flagBinary               = "binary"
	flagTimeout              = "timeout"
	flagExpectSingleResponse = "expectSingleResponse"
)

var flagNames = []string{flagVolatile, flagCompress, flagLocal, flagBroadcast, flagBinary, flagTimeout, flagExpectSingleResponse}

// WithVolatile returns a copy of f with the volatile flag set to v.
func (f Flags) WithVolatile(v bool) Flags {
	f.Volatile = &v
	return f.touch(flagVolatile)
}

// WithCompress returns a copy of f with the compress flag set to v.
func (f Flags) WithCompress(v bool) Flags {
	f.Compress = &v
	return f.touch(flagCompress)
}

// WithTimeout returns a copy of f with the acknowledgement timeout set, in milliseconds.
func (f Flags) WithTimeout(ms int64) Flags {
	f.Timeout = &ms
	return f.touch(flagTimeout)
}

// touch records name as set, keeping the position of a flag that was set before.
func (f Flags) touch(name string) Flags {
	for _, n := range f.order {
		if n == name {
			return f
		}
	}
	order := make([]string, len(f.order), len(f.order)+1)
	copy(order, f.order)
	f.order = append(order, name)
	return f
}

func (f *Flags) get(name string) (any, bool) {
	var p any
	switch name {
	case flagVolatile:
		p = f.Volatile
	case flagCompress:
		p = f.Compress
	case flagLocal:
		p = f.Local
	case flagBroadcast:
		p = f.Broadcast
	case flagBinary:
		p = f.Binary
	case flagTimeout:
		if f.Timeout == nil {
			return nil, false
		}
		return *f.Timeout, true
	case flagExpectSingleResponse:
		p = f.ExpectSingleResponse
	}
	if b, ok := p.(*bool); ok && b != nil {
		return *b, true
	}
	return nil, false
}

// IsVolatile reports whether the volatile flag is set and true.
func (f *Flags) IsVolatile() bool { return f.Volatile != nil && *f.Volatile }

// ShouldCompress reports how a receiver treats the compress flag: only an explicit
// false turns compression off.
func (f *Flags) ShouldCompress() bool { return f.Compress == nil || *f.Compress }

// names returns the names of the flags that are set, in the order they were
// first set, then the others in their standard order.
func (f *Flags) names(buf []string) []string {
	list := buf[:0]
	for _, n := range f.order {
		if _, ok := f.get(n); ok {
			list = append(list, n)
		}
	}
	for _, n := range flagNames {
		if _, ok := f.get(n); ok && !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

func (f *Flags) write(s sink) {
	if f.order == nil && f.Volatile == nil && f.Compress == nil && f.Local == nil && f.Broadcast == nil &&
		f.Binary == nil && f.Timeout == nil && f.ExpectSingleResponse == nil {
		s.beginObject(0)
		s.endObject()
		return
	}
	var buf [8]string
	list := f.names(buf[:])
	s.beginObject(len(list))
	for _, n := range list {
		s.key(n)
		switch v, _ := f.get(n); v := v.(type) {
		case bool:
			s.boolean(v)
		case int64:
			s.integer(v)
		}
	}
	s.endObject()
}

// Opts says which sockets a broadcast or a cluster request reaches: the sockets in
// any of Rooms (every socket when Rooms is empty) that are in none of Except.
type Opts struct {
	Rooms  []string
	Except []string
	Flags  Flags
}

// Broadcast is a broadcast message [uid, packet, opts], as a receiver decodes it.
type Broadcast struct {
	UID    string
	Packet Packet
	Opts   Opts
}

// EncodeBroadcast encodes the broadcast message [uid, packet, opts].
func EncodeBroadcast(uid string, p *Packet, o *Opts) ([]byte, error) {
	w := getMP()
	if err := writeBroadcast(w, uid, p, o); err != nil {
		w.release()
		return nil, err
	}
	return w.done(), nil
}

func writeBroadcast(s sink, uid string, p *Packet, o *Opts) error {
	s.beginArray(3)
	s.str(uid)
	if err := writePacket(s, p, true); err != nil {
		return err
	}
	// Key order of Node's emitter: rooms, flags, except.
	s.beginObject(3)
	s.key("rooms")
	writeStrings(s, o.Rooms)
	s.key("flags")
	o.Flags.write(s)
	s.key("except")
	writeStrings(s, o.Except)
	s.endObject()
	s.endArray()
	return nil
}

// writePacket writes {type, data, nsp, id}: nsp only when withNsp (cluster
// adapters leave it out), id only when set.
func writePacket(s sink, p *Packet, withNsp bool) error {
	n := 2
	if withNsp {
		n++
	}
	if p.ID != nil {
		n++
	}
	s.beginObject(n)
	s.key("type")
	s.integer(int64(p.Type))
	s.key("data")
	if err := writeArgs(s, p.Data); err != nil {
		return err
	}
	if withNsp {
		s.key("nsp")
		s.str(p.Nsp)
	}
	if p.ID != nil {
		s.key("id")
		s.unsigned(*p.ID)
	}
	s.endObject()
	return nil
}

// writeArgs writes event data (an array) by the value rules, naming the argument
// that fails.
func writeArgs(s sink, args []any) error {
	s.beginArray(len(args))
	for i, v := range args {
		if err := writeValue(s, v, 1); err != nil {
			if errors.Is(err, errBinary) {
				return err
			}
			return fmt.Errorf("argument %d: %w", i, err)
		}
	}
	s.endArray()
	return nil
}

func writeStrings(s sink, list []string) {
	s.beginArray(len(list))
	for _, x := range list {
		s.str(x)
	}
	s.endArray()
}
