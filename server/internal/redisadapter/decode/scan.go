package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/taskwire/taskwire/emitter/wire"
)

// checkMsgpack walks b as exactly one msgpack value without recursion and without
// allocating, and fails when the value is truncated, uses the reserved code 0xc1,
// nests deeper than wire.MaxDepth, claims more elements than bytes remain, or is followed
// by trailing bytes (Node's notepack.io rejects those too). Decoding only what passed
// this check keeps every later allocation bounded by the message size.
func checkMsgpack(b []byte) error {
	var stack [wire.MaxDepth + 1]uint64 // elements still expected per open container
	depth := 0
	remaining := uint64(1) // the top-level value
	pos := 0
	n := len(b)
	need := func(k int) error {
		if n-pos < k {
			return fmt.Errorf("truncated at byte %d", pos)
		}
		return nil
	}
	for {
		for remaining == 0 {
			if depth == 0 {
				if pos != n {
					return fmt.Errorf("%d trailing bytes", n-pos)
				}
				return nil
			}
			depth--
			remaining = stack[depth]
		}
		if err := need(1); err != nil {
			return err
		}
		remaining--
		c := b[pos]
		pos++
		var skip uint64     // payload bytes to skip
		var children uint64 // elements of a container opened here
		container := false
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c >= 0x90 && c <= 0x9f:
			container, children = true, uint64(c&0x0f)
		case c >= 0x80 && c <= 0x8f:
			container, children = true, 2*uint64(c&0x0f)
		default:
			switch c {
			case 0xc1:
				return fmt.Errorf("reserved code 0xc1 at byte %d", pos-1)
			case 0xcc, 0xd0:
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2:
				skip = 4
			case 0xcb, 0xcf, 0xd3:
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16: type byte + data
				skip = 1 + uint64(1)<<(c-0xd4)
			case 0xc4, 0xd9, 0xc7: // bin8, str8, ext8
				if err := need(1); err != nil {
					return err
				}
				skip = uint64(b[pos])
				pos++
			case 0xc5, 0xda, 0xc8: // bin16, str16, ext16
				if err := need(2); err != nil {
					return err
				}
				skip = uint64(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
			case 0xc6, 0xdb, 0xc9: // bin32, str32, ext32
				if err := need(4); err != nil {
					return err
				}
				skip = uint64(binary.BigEndian.Uint32(b[pos:]))
				pos += 4
			case 0xdc, 0xde: // array16, map16
				if err := need(2); err != nil {
					return err
				}
				children = uint64(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
				container = true
			case 0xdd, 0xdf: // array32, map32
				if err := need(4); err != nil {
					return err
				}
				children = uint64(binary.BigEndian.Uint32(b[pos:]))
				pos += 4
				container = true
			}
			if c == 0xc7 || c == 0xc8 || c == 0xc9 {
				skip++ // the ext type byte
			}
			if c == 0xde || c == 0xdf {
				children *= 2
			}
		}
		if skip > uint64(n-pos) {
			return fmt.Errorf("truncated at byte %d: %d bytes announced, %d left", pos, skip, n-pos)
		}
		pos += int(skip)
		if !container {
			continue
		}
		// Every element takes at least one byte, so a count larger than what is
		// left can never be satisfied; refusing it here bounds what the decoder
		// preallocates.
		if children > uint64(n-pos) {
			return fmt.Errorf("container at byte %d announces %d elements, %d bytes left", pos, children, n-pos)
		}
		if children == 0 {
			continue
		}
		if depth == wire.MaxDepth {
			return fmt.Errorf("nested deeper than %d", wire.MaxDepth)
		}
		stack[depth] = remaining
		depth++
		remaining = children
	}
}
