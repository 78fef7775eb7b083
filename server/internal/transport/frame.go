package transport

import (
	"encoding/binary"
	"errors"
)

// Websocket frame opcodes and bits (RFC 6455, section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa

	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80

	// maxFrameHeader is the longest header of a server frame (unmasked).
	maxFrameHeader = 10
	// maxControlPayload is the longest payload of a control frame.
	maxControlPayload = 125
)

// Close status codes (RFC 6455, section 7.4.1).
const (
	closeNormal          = 1000
	closeGoingAway       = 1001
	closeProtocolError   = 1002
	closeNoStatus        = 1005
	closeMessageTooBig   = 1009
	closeInternalError   = 1011
	closeInvalidPayload  = 1007
	closeUnsupportedData = 1003
)

var (
	errProtocol   = errors.New("transport: websocket protocol error")
	errTooBig     = errors.New("transport: websocket message too big")
	errPeerClosed = errors.New("transport: websocket closed by the peer")
)

// appendFrameHeader appends the header of an unmasked, final server frame with
// opcode op and a payload of n bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, finBit|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// frameHeaderLen is the length of the header appendFrameHeader writes for a
// payload of n bytes.
func frameHeaderLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// Frame returns a complete unmasked, final websocket frame: a text frame when text
// is true, a binary frame otherwise. A frame can be written to any number of
// connections (see Deliver); it must not be changed afterwards.
func Frame(text bool, payload []byte) []byte {
	op := byte(opBinary)
	if text {
		op = opText
	}
	b := make([]byte, 0, frameHeaderLen(len(payload))+len(payload))
	b = appendFrameHeader(b, op, len(payload))
	return append(b, payload...)
}

// FrameInPlace makes a text frame of b[headroom:] without copying it: it writes
// the frame header into the headroom bytes before the payload (at most
// maxFrameHeader are needed) and returns the frame, which starts inside b.
func FrameInPlace(b []byte, headroom int) []byte {
	n := len(b) - headroom
	hl := frameHeaderLen(n)
	if hl > headroom {
		panic("transport: not enough headroom for the frame header")
	}
	appendFrameHeader(b[headroom-hl:headroom-hl], opText, n)
	return b[headroom-hl:]
}

// MessageFrame returns the websocket frame of an engine.io message whose payload
// is the text message (a Socket.IO packet): a text frame holding "4" and message.
func MessageFrame(message []byte) []byte { return textFrameWithPrefix('4', message) }

// textFrameWithPrefix returns a text frame whose payload is prefix followed by
// payload, without building the payload first.
func textFrameWithPrefix(prefix byte, payload []byte) []byte {
	n := 1 + len(payload)
	b := make([]byte, 0, frameHeaderLen(n)+n)
	b = appendFrameHeader(b, opText, n)
	b = append(b, prefix)
	return append(b, payload...)
}

// controlFrame returns a control frame (close, ping, pong) with payload, which
// must be at most maxControlPayload bytes.
func controlFrame(op byte, payload []byte) []byte {
	b := make([]byte, 0, 2+len(payload))
	b = appendFrameHeader(b, op, len(payload))
	return append(b, payload...)
}

// closeFrame returns a close frame with status code (none when code is
// closeNoStatus).
func closeFrame(code int) []byte {
	if code == closeNoStatus {
		return controlFrame(opClose, nil)
	}
	return controlFrame(opClose, []byte{byte(code >> 8), byte(code)})
}

// maskBytes XORs b with the masking key, starting at key position pos, and
// returns the next position.
func maskBytes(key [4]byte, pos int, b []byte) int {
	// Eight bytes at a time with a key repeated over a word, then the rest.
	if len(b) >= 16 {
		var k8 [8]byte
		for i := range k8 {
			k8[i] = key[(pos+i)&3]
		}
		kw := binary.LittleEndian.Uint64(k8[:])
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^kw)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}
