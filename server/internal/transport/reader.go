package transport

import (
	"encoding/binary"
	"io"
	"sync"
)

// Reading without a goroutine per connection. An idle websocket connection
// spends its life waiting for the next message; a goroutine blocked in Read
// holds its stack (4 to 8 KB) for that whole time, more than everything else a
// connection needs. Where the system offers it (Linux: epoll), a connection is
// instead registered with one poller, and a goroutine runs only when data has
// arrived: it reads what is there without blocking, hands every complete message
// over, keeps a partial frame for later and ends. Elsewhere, and for
// connections without a file descriptor, readLoop does the same on a
// goroutine of its own.

// startReading starts handing messages to onMessage (see readLoop). One of
// onMessage returning false, and onEnd (after a failure), ends it.
func (c *wsConn) startReading(onMessage func(text bool, data []byte) bool, onEnd func(error)) {
	if c.rc != nil && pollerRegister(c, onMessage, onEnd) {
		return
	}
	go c.readLoop(onMessage, onEnd)
}

// readBufs are the buffers of readable connections, used only while a
// connection is being read.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, 4<<10)
	return &b
}}

// readState is the part of a frame or message that has arrived, between two
// reads of a polled connection. It is nil while nothing is pending.
type readState struct {
	partial   []byte // an incomplete frame
	msg       []byte // the fragments of an incomplete message
	msgOp     byte
	inMessage bool
}

// consume parses the frames in b (after any partial frame), hands complete
// messages to onMessage and answers control frames. It returns false when
// reading must stop: onMessage said so (stop), or err (the connection ends).
func (c *wsConn) consume(b []byte, onMessage func(bool, []byte) bool) (cont bool, err error) {
	rs := c.rs
	data := b
	if rs != nil && len(rs.partial) > 0 {
		rs.partial = append(rs.partial, b...)
		data = rs.partial
	}
	for len(data) >= 2 {
		h0, h1 := data[0], data[1]
		op := h0 & 0x0f
		fin := h0&finBit != 0
		if h0&rsvBits != 0 || h1&maskBit == 0 {
			return false, c.protocolError(closeProtocolError, errProtocol)
		}
		hl := 6
		n := uint64(h1 & 0x7f)
		switch n {
		case 126:
			hl = 8
			if len(data) < 4 {
				break
			}
			n = uint64(binary.BigEndian.Uint16(data[2:4]))
		case 127:
			hl = 14
			if len(data) < 10 {
				break
			}
			n = binary.BigEndian.Uint64(data[2:10])
		}
		if len(data) < hl {
			break
		}
		if op >= opClose && (!fin || n > maxControlPayload) {
			return false, c.protocolError(closeProtocolError, errProtocol)
		}
		pending := uint64(0)
		if rs != nil {
			pending = uint64(len(rs.msg))
		}
		if c.maxMessage > 0 && op < opClose && n+pending > uint64(c.maxMessage) || n > 1<<62 {
			return false, c.protocolError(closeMessageTooBig, errTooBig)
		}
		total := uint64(hl) + n
		if uint64(len(data)) < total {
			break
		}
		var key [4]byte
		copy(key[:], data[hl-4:hl])
		payload := data[hl:total]
		maskBytes(key, 0, payload)
		data = data[total:]

		if op >= opClose {
			if err := c.onControl(op, payload); err != nil {
				return false, err
			}
			continue
		}
		inMessage := rs != nil && rs.inMessage
		switch op {
		case opText, opBinary:
			if inMessage {
				return false, c.protocolError(closeProtocolError, errProtocol)
			}
		case opContinuation:
			if !inMessage {
				return false, c.protocolError(closeProtocolError, errProtocol)
			}
		default:
			return false, c.protocolError(closeProtocolError, errProtocol)
		}
		if fin && !inMessage {
			// The common case: a whole message in one frame. Its bytes are
			// copied out of the read buffer, which is reused.
			msg := make([]byte, len(payload))
			copy(msg, payload)
			if !c.handle(onMessage, op == opText, msg) {
				return false, nil
			}
			continue
		}
		if rs == nil {
			rs = &readState{}
			c.rs = rs
		}
		if !inMessage {
			rs.inMessage, rs.msgOp = true, op
		}
		rs.msg = append(rs.msg, payload...)
		if fin {
			msg, text := rs.msg, rs.msgOp == opText
			rs.msg, rs.inMessage = nil, false
			if !c.handle(onMessage, text, msg) {
				return false, nil
			}
		}
	}
	// Keep what is left of an incomplete frame.
	if len(data) == 0 {
		if rs != nil {
			rs.partial = nil
			if !rs.inMessage {
				c.rs = nil
			}
		}
		return true, nil
	}
	if rs == nil {
		rs = &readState{}
		c.rs = rs
	}
	if len(rs.partial) > 0 {
		// data is the tail of rs.partial: move it to the front.
		rs.partial = rs.partial[:copy(rs.partial, data)]
	} else {
		rs.partial = append([]byte(nil), data...)
	}
	return true, nil
}

// onReadable reads what has arrived on a polled connection and consumes it. It
// reports whether the connection should be polled again.
func (c *wsConn) onReadable(onMessage func(bool, []byte) bool, onEnd func(error)) bool {
	c.busy.Store(true)
	defer func() {
		c.busy.Store(false)
		if f := c.idle.Load(); f != nil {
			(*f)()
		}
	}()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		n, err := c.readNow(buf)
		if n > 0 {
			cont, cerr := c.consume(buf[:n], onMessage)
			if cerr != nil {
				onEnd(cerr)
				c.abort()
				return false
			}
			if !cont {
				return false
			}
		}
		if err != nil {
			onEnd(err)
			c.abort()
			return false
		}
		if n < len(buf) {
			// Drained (or nothing there: a spurious wakeup); the poller
			// reports the next data.
			return true
		}
	}
}

// errReadEOF is what readNow reports when the peer closed its side.
var errReadEOF = io.EOF
