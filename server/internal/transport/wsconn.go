package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// writeTimeout bounds every blocking write: a client that reads nothing
	// for this long is disconnected (the engine's own heartbeat, 25s + 20s,
	// would notice it too).
	writeTimeout = 30 * time.Second
	// maxQueuedBytes bounds what waits for a slow client. Past it the
	// connection is closed: Socket.IO is at-most-once, and one stuck client
	// must not hold the server's memory.
	maxQueuedBytes = 8 << 20
	// closeFlushTimeout bounds how long a closing connection waits for its
	// queue (ending with the close frame) to go out.
	closeFlushTimeout = 5 * time.Second
	// closeLingerTimeout and closeLingerMax bound how long, and how much of
	// what a peer still sends, a connection closed for a protocol error
	// reads and discards before it is closed (see protocolError).
	closeLingerTimeout = 2 * time.Second
	closeLingerMax     = 16 << 20
)

var (
	errConnClosed   = errors.New("transport: websocket connection closed")
	errSlowConsumer = errors.New("transport: client too slow, outgoing queue over its bound")
)

// wsConn is the server side of a websocket connection (RFC 6455) over a hijacked
// connection, without extensions. Reading is done by one goroutine with
// onControl handles a control frame of the client (its payload unmasked): a
// ping is answered, a pong ignored; a close is answered with the same status
// and ends reading (errPeerClosed); an unknown opcode is a protocol error.
func (c *wsConn) onControl(op byte, payload []byte) error {
	switch op {
	case opPing:
		_ = c.writeFrame(controlFrame(opPong, payload))
		return nil
	case opPong:
		return nil
	case opClose:
		code := closeNoStatus
		if len(payload) >= 2 {
			code = int(binary.BigEndian.Uint16(payload))
		}
		if !validCloseCode(code) {
			code = closeProtocolError
		}
		c.close(code)
		return errPeerClosed
	default:
		return c.protocolError(closeProtocolError, errProtocol)
	}
}

// readMessage; writing (write, writeFrame) never blocks the caller: a frame is
// written at once with a non-blocking system call when nothing is queued, and
// otherwise queued for a writer goroutine that lives only while there is a
// backlog and sends everything queued in one system call (writev). It holds no
// buffer while idle.
type wsConn struct {
	nc net.Conn
	// rc writes without blocking; nil when nc does not offer it (TLS, pipes),
	// and then every write goes through the writer goroutine.
	rc         syscall.RawConn
	rcWrite    func(fd uintptr) bool // c.writeFd, made once
	maxMessage int64

	// read side (one goroutine at a time)
	rs *readState // between reads of a polled connection
	// busy is set while a polled connection is being read (see unreadInput);
	// idle, when set, is called after each such read.
	busy atomic.Bool
	idle atomic.Pointer[func()]
	// polled is the connection's registration with the poller, told when the
	// connection is closed (under wmu).
	polled interface{ closed() }

	wmu      sync.Mutex
	out      net.Buffers // queued output, in order
	queued   int         // bytes in out
	writing  bool        // a writer goroutine runs
	wclosed  bool        // nothing more may be written
	drainEnd bool        // close nc once the queue is out
	linger   bool        // close nc with lingerClose (a protocol error)
	closed   bool        // nc closed
	err      error       // why writing stopped

	// the non-blocking write in progress (under wmu)
	wbuf []byte
	wn   int
	werr error
}

// newWSConn takes over nc, whose websocket handshake is done. Messages longer
// than maxMessage bytes close the connection (0: no limit).
func newWSConn(nc net.Conn, maxMessage int64) *wsConn {
	c := &wsConn{nc: nc, maxMessage: maxMessage}
	if sc, ok := nc.(syscall.Conn); ok && nonblockingWrites {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.rcWrite = c.writeFd
		}
	}
	return c
}

// readFull reads exactly len(b) bytes.
func (c *wsConn) readFull(b []byte) error {
	_, err := io.ReadFull(c.nc, b)
	return err
}

// readMessage returns the next text or binary message. It answers pings and
// close frames itself. An error ends the connection: errPeerClosed after the
// client's close frame, errProtocol or errTooBig after a bad frame (the
// connection is then closed with the matching status), or the network error.
func (c *wsConn) readMessage() (text bool, data []byte, err error) {
	var hdr [14]byte
	var msg []byte
	var msgOp byte
	inMessage := false
	for {
		h := hdr[:2]
		if err := c.readFull(h); err != nil {
			return false, nil, err
		}
		fin := h[0]&finBit != 0
		op := h[0] & 0x0f
		if h[0]&rsvBits != 0 || h[1]&maskBit == 0 {
			return false, nil, c.protocolError(closeProtocolError, errProtocol)
		}
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			if err := c.readFull(hdr[2:4]); err != nil {
				return false, nil, err
			}
			n = int64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if err := c.readFull(hdr[2:10]); err != nil {
				return false, nil, err
			}
			u := binary.BigEndian.Uint64(hdr[2:10])
			if u > 1<<62 {
				return false, nil, c.protocolError(closeMessageTooBig, errTooBig)
			}
			n = int64(u)
		}
		var key [4]byte
		if err := c.readFull(key[:]); err != nil {
			return false, nil, err
		}

		if op >= opClose {
			if !fin || n > maxControlPayload {
				return false, nil, c.protocolError(closeProtocolError, errProtocol)
			}
			var buf [maxControlPayload]byte
			p := buf[:n]
			if err := c.readFull(p); err != nil {
				return false, nil, err
			}
			maskBytes(key, 0, p)
			if err := c.onControl(op, p); err != nil {
				return false, nil, err
			}
			continue
		}

		switch op {
		case opText, opBinary:
			if inMessage {
				return false, nil, c.protocolError(closeProtocolError, errProtocol)
			}
			inMessage, msgOp, msg = true, op, nil
		case opContinuation:
			if !inMessage {
				return false, nil, c.protocolError(closeProtocolError, errProtocol)
			}
		default:
			return false, nil, c.protocolError(closeProtocolError, errProtocol)
		}
		if c.maxMessage > 0 && int64(len(msg))+n > c.maxMessage {
			return false, nil, c.protocolError(closeMessageTooBig, errTooBig)
		}
		start := len(msg)
		if msg == nil {
			msg = make([]byte, n)
		} else {
			msg = append(msg, make([]byte, n)...)
		}
		p := msg[start:]
		if err := c.readFull(p); err != nil {
			return false, nil, err
		}
		maskBytes(key, 0, p)
		if fin {
			return msgOp == opText, msg, nil
		}
	}
}

// protocolError closes the connection with code and returns err.
//
// The peer may still be sending: a message over the size limit is mostly
// unread. Closing a socket with unread data makes the kernel answer with a
// reset, and a reset can destroy the close frame before the peer has read it
// (the peer then sees 1006 instead of code). So such a connection shuts its
// write side after the close frame and discards what still arrives, for at
// most closeLingerTimeout, before it is closed (a lingering close, as HTTP
// servers do).
func (c *wsConn) protocolError(code int, err error) error {
	c.wmu.Lock()
	c.linger = true
	c.wmu.Unlock()
	c.close(code)
	return err
}

// lingerClose shuts the write side of nc, discards what the peer still sends
// until it closes (bounded), and closes nc.
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = nc.SetReadDeadline(time.Now().Add(closeLingerTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(nc, closeLingerMax))
	}
	_ = nc.Close()
}

// write sends one message as a single frame.
func (c *wsConn) write(text bool, payload []byte) error {
	return c.writeFrame(Frame(text, payload))
}

// writeFrame sends a complete frame, which must not change afterwards (it may
// be shared by many connections).
func (c *wsConn) writeFrame(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(frame)
}

// writeFrames sends frames one after the other, with no other frame between
// them (a binary event and its attachments).
func (c *wsConn) writeFrames(frames [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, f := range frames {
		if err := c.writeLocked(f); err != nil {
			return err
		}
	}
	return nil
}

// backlogged reports whether frames wait to be written.
func (c *wsConn) backlogged() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.queued > 0
}

func (c *wsConn) writeLocked(frame []byte) error {
	if c.wclosed {
		if c.err != nil {
			return c.err
		}
		return errConnClosed
	}
	if !c.writing && c.queued == 0 && c.rc != nil {
		n, err := c.writeNow(frame)
		if err != nil {
			c.failLocked(err)
			return err
		}
		if n == len(frame) {
			return nil
		}
		frame = frame[n:]
	}
	c.out = append(c.out, frame)
	c.queued += len(frame)
	if c.queued > maxQueuedBytes {
		c.failLocked(errSlowConsumer)
		return errSlowConsumer
	}
	if !c.writing {
		c.writing = true
		go c.writer()
	}
	return nil
}

// writer sends the queue until it is empty, then ends.
func (c *wsConn) writer() {
	for {
		c.wmu.Lock()
		deadline := writeTimeout
		if c.drainEnd {
			deadline = closeFlushTimeout
		}
		if c.queued == 0 || c.closed {
			c.writing = false
			if c.drainEnd && !c.closed {
				c.closeLocked()
			}
			c.wmu.Unlock()
			return
		}
		bufs := c.out
		c.out, c.queued = nil, 0
		c.wmu.Unlock()

		_ = c.nc.SetWriteDeadline(time.Now().Add(deadline))
		_, err := bufs.WriteTo(c.nc)

		c.wmu.Lock()
		if err != nil {
			c.failLocked(err)
			c.writing = false
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
	}
}

// failLocked stops writing for good and closes the connection, which ends the
// reader too.
func (c *wsConn) failLocked(err error) {
	if c.err == nil {
		c.err = err
	}
	c.wclosed = true
	c.out, c.queued = nil, 0
	c.closeLocked()
}

func (c *wsConn) closeLocked() {
	if !c.closed {
		c.closed = true
		if c.linger && c.err == nil {
			go lingerClose(c.nc)
		} else {
			_ = c.nc.Close()
		}
		if c.polled != nil {
			c.polled.closed()
			c.polled = nil
		}
	}
}

// close sends a close frame with code after what is queued, and closes the
// connection once it is out (at most closeFlushTimeout later). It is idempotent.
func (c *wsConn) close(code int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	_ = c.writeLocked(closeFrame(code))
	c.wclosed = true
	if c.closed {
		return
	}
	if !c.writing {
		c.closeLocked()
		return
	}
	c.drainEnd = true
	// The writer closes nc when done; the deadline bounds a stuck one.
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
}

// abort closes the connection at once, dropping what is queued.
func (c *wsConn) abort() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wclosed = true
	c.out, c.queued = nil, 0
	c.closeLocked()
}

// writeNow writes what it can of b without blocking (under wmu).
func (c *wsConn) writeNow(b []byte) (int, error) {
	c.wbuf, c.wn, c.werr = b, 0, nil
	err := c.rc.Write(c.rcWrite)
	n, werr := c.wn, c.werr
	c.wbuf = nil
	if err != nil {
		return 0, err
	}
	return n, werr
}

// validCloseCode reports whether code may be sent back in a close frame.
func validCloseCode(code int) bool {
	switch {
	case code == closeNoStatus:
		return true
	case code < 1000 || code >= 5000:
		return false
	case code == 1004 || code == 1006 || code == 1015:
		return false
	case code >= 1016 && code < 3000:
		return false
	}
	return true
}

// readLoop reads messages and hands them to onMessage until it returns false or
// reading fails; then the connection is closed and, after a failure, onEnd is
// told why. A panic of onMessage (the engine's or Socket.IO's handlers) is
// counted and closes this connection instead of the process.
func (c *wsConn) readLoop(onMessage func(text bool, data []byte) bool, onEnd func(error)) {
	for {
		text, data, err := c.readMessage()
		if err != nil {
			c.abort()
			onEnd(err)
			return
		}
		if !c.handle(onMessage, text, data) {
			return
		}
	}
}

func (c *wsConn) handle(onMessage func(bool, []byte) bool, text bool, data []byte) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			readPanics.Add(1)
			c.abort()
			ok = false
		}
	}()
	return onMessage(text, data)
}

// isClosedConn reports whether err means the connection is closed (by either
// side) rather than broken.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, errConnClosed) || errors.Is(err, errPeerClosed)
}
