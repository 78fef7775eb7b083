package redisadapter

import (
	"runtime"
	"strconv"
	"sync"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
	"github.com/taskwire/taskwire/server/internal/transport"
)

// Local delivery of broadcasts. The in-memory adapter of socket.io-go encodes a
// broadcast once, then hands every recipient a copy through the engine, which
// does its bookkeeping (events, buffers, callbacks) per packet and recipient.
// Here the encoded packet becomes websocket frames once, written as they are to
// every recipient on a websocket (transport.Deliver); only the others (polling)
// go through the engine. What a client receives is the same.

// outgoing is one broadcast packet, encoded for clients.
type outgoing struct {
	// packet is the packet as Socket.IO's outgoing listeners see it; nil until
	// needed when the broadcast came encoded from Redis (see decode).
	packet     *parser.Packet
	decode     func() *parser.Packet
	decodeOnce sync.Once
	// frames are the websocket frames of the packet: a text frame, then one
	// binary frame per attachment.
	frames [][]byte
	// encoded is the packet for the engine (engine.io message payloads), and
	// wopts its write options; made when the first recipient needs them.
	encoded   []types.BufferInterface
	encode    func() []types.BufferInterface
	wopts     *socket.WriteOptions
	woptsOnce sync.Once
	volatile  bool
	compress  bool
	one       [1][]byte // frames' array when there is one frame
}

// target is who a broadcast reaches: the local sockets in any of rooms (every
// socket when there is none) and in none of except.
type target struct {
	rooms, except []string
}

func targetOf(opts *socket.BroadcastOptions) target {
	if opts == nil {
		return target{}
	}
	return target{rooms: roomStrings(opts.Rooms), except: roomStrings(opts.Except)}
}

// outgoingFromWire prepares a broadcast read from Redis. An event whose data is
// plain JSON (no binary: nearly every event) is written straight from the
// message as the Socket.IO packet text, without Go values in between; anything
// else is decoded and encoded like a local broadcast. The error is a malformed
// message.
func outgoingFromWire(mem *memory, lb *decode.LazyBroadcast) (*outgoing, error) {
	volatile, compress := lb.Opts.Flags.IsVolatile(), lb.Opts.Flags.ShouldCompress()
	if lb.Type == wire.PacketEvent {
		// The websocket frame is built in one buffer: room for its header,
		// the engine.io message type ("4"), then the text form of
		// socket.io-parser: type, namespace unless "/", id, data.
		const room = 10 // the longest frame header
		buf := make([]byte, room, 256)
		buf = append(buf, '4', '0'+byte(wire.PacketEvent))
		if lb.Nsp != "/" {
			buf = append(buf, lb.Nsp...)
			buf = append(buf, ',')
		}
		if lb.ID != nil {
			buf = strconv.AppendUint(buf, *lb.ID, 10)
		}
		if out, err := lb.AppendJSON(buf); err == nil {
			frame := transport.FrameInPlace(out, room)
			text := out[room+1:] // the Socket.IO packet, for the engine
			o := &outgoing{
				volatile: volatile,
				compress: compress,
				encode: func() []types.BufferInterface {
					return []types.BufferInterface{types.NewStringBuffer(text)}
				},
				decode: func() *parser.Packet {
					data, _ := lb.Data()
					return toParserPacket(&wire.Packet{Type: lb.Type, Data: data, Nsp: lb.Nsp, ID: lb.ID})
				},
			}
			o.one[0] = frame
			o.frames = o.one[:]
			return o, nil
		}
	}
	data, err := lb.Data()
	if err != nil {
		return nil, err
	}
	packet := toParserPacket(&wire.Packet{Type: lb.Type, Data: data, Nsp: lb.Nsp, ID: lb.ID})
	return outgoingPacket(mem, packet, volatile, compress), nil
}

// outgoingPacket encodes packet with the namespace's encoder.
func outgoingPacket(mem *memory, packet *parser.Packet, volatile, compress bool) *outgoing {
	packet.Nsp = mem.Nsp().Name()
	encoded := mem.encoder.Encode(packet)
	o := &outgoing{packet: packet, encoded: encoded, volatile: volatile, compress: compress}
	o.frames = make([][]byte, len(encoded))
	for i, e := range encoded {
		if _, text := e.(*types.StringBuffer); text {
			o.frames[i] = transport.MessageFrame(e.Bytes())
		} else {
			o.frames[i] = transport.Frame(false, e.Bytes())
		}
	}
	return o
}

func (o *outgoing) writeOptions() *socket.WriteOptions {
	o.woptsOnce.Do(func() {
		if o.encoded == nil {
			o.encoded = o.encode()
		}
		w := &socket.WriteOptions{PreEncoded: true, Volatile: o.volatile}
		w.Compress = o.compress
		if len(o.encoded) == 1 {
			if p, ok := o.encoded[0].(*types.StringBuffer); ok {
				// "4" is the engine.io message type: the whole message, for
				// the engine's websocket transports.
				f := types.NewStringBufferString("4")
				f.Write(p.Bytes())
				w.WsPreEncodedFrame = f
			}
		}
		o.wopts = w
	})
	return o.wopts
}

func (o *outgoing) parserPacket() *parser.Packet {
	o.decodeOnce.Do(func() {
		if o.packet == nil {
			o.packet = o.decode()
		}
	})
	return o.packet
}

// send writes o to one socket, as the in-memory adapter's Broadcast does: its
// outgoing listeners see the packet, then the client gets it.
func (o *outgoing) send(s *socket.Socket) {
	if len(s.ListenersAnyOutgoing()) > 0 {
		s.NotifyOutgoingListeners()(o.parserPacket())
	}
	if transport.Deliver(s.Client().Conn(), o.frames, o.volatile) {
		return
	}
	wopts := o.writeOptions()
	s.Client().WriteToEngine(o.encoded, wopts)
}

func flagsOf(opts *socket.BroadcastOptions) *socket.BroadcastFlags {
	if opts != nil && opts.Flags != nil {
		return opts.Flags
	}
	return &socket.BroadcastFlags{}
}

// parallelMin is the number of recipients from which a broadcast is written by
// several goroutines: each write is a system call, and with many recipients
// the last one waits for all the others.
const parallelMin = 256

// deliverLocal sends o to every local socket that t selects. Large broadcasts
// are written by up to GOMAXPROCS goroutines, each taking a share of the
// recipients; it returns once all are written, so that the next broadcast never
// overtakes this one on any socket. It returns the number of recipients.
func deliverLocal(mem *memory, o *outgoing, t target) int {
	list := mem.recipients(t)
	workers := min(runtime.GOMAXPROCS(0), len(list)/(parallelMin/2))
	if len(list) < parallelMin || workers < 2 {
		for _, s := range list {
			o.send(s)
		}
		return len(list)
	}
	var wg sync.WaitGroup
	share := (len(list) + workers - 1) / workers
	for start := share; start < len(list); start += share {
		part := list[start:min(start+share, len(list))]
		wg.Go(func() {
			for _, s := range part {
				o.send(s)
			}
		})
	}
	for _, s := range list[:share] {
		o.send(s)
	}
	wg.Wait()
	return len(list)
}
