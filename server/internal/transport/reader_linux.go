//go:build linux

package transport

import (
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// poller waits, on one goroutine, for data on every registered connection
// (epoll, level-triggered and one-shot: a connection reports once, is read by
// one goroutine, and is armed again when that is done, so its messages are
// handled in order and one at a time).
type poller struct {
	epfd int

	mu    sync.Mutex
	slots []*polled // by slot number; nil when free
	gens  []uint32  // generation of each slot, counting its reuses
	free  []uint32
}

// polled is one registered connection.
type polled struct {
	c         *wsConn
	slot, gen uint32
	onMessage func(bool, []byte) bool
	onEnd     func(error) // the caller's
	done      atomic.Bool
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

var (
	thePoller     *poller
	thePollerOnce sync.Once
	// pollerEnabled is false in tests that exercise readLoop.
	pollerEnabled = true
)

func getPoller() *poller {
	thePollerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return // readLoop for everybody
		}
		thePoller = &poller{epfd: fd}
		go thePoller.run()
	})
	return thePoller
}

// pollerRegister registers c with the poller and reports true, or reports false
// when there is no poller (then nothing changed).
func pollerRegister(c *wsConn, onMessage func(bool, []byte) bool, onEnd func(error)) bool {
	if !pollerEnabled {
		return false
	}
	p := getPoller()
	if p == nil {
		return false
	}
	pc := &polled{c: c, onMessage: onMessage, onEnd: onEnd}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		pc.slot = p.free[n-1]
		p.free = p.free[:n-1]
		p.gens[pc.slot]++
	} else {
		pc.slot = uint32(len(p.slots))
		p.slots = append(p.slots, nil)
		p.gens = append(p.gens, 0)
	}
	pc.gen = p.gens[pc.slot]
	p.slots[pc.slot] = pc
	p.mu.Unlock()

	// Closing the connection (by anyone) ends reading: the kernel forgets a
	// closed descriptor without a word, so the reader must be told.
	c.wmu.Lock()
	closed := c.closed
	if !closed {
		c.polled = pc
	}
	c.wmu.Unlock()
	if closed || !p.arm(pc, syscall.EPOLL_CTL_ADD) {
		p.end(pc, nil)
		c.wmu.Lock()
		c.polled = nil
		c.wmu.Unlock()
		return false
	}
	return true
}

// closed is called (under the connection's write lock) when the connection is
// closed: reading ends, and the owner is told.
func (pc *polled) closed() { go thePoller.end(pc, errConnClosed) }

// arm (re)enables the one-shot notification of pc. The descriptor is used under
// the connection's own reference, so that it cannot be closed, and its number
// reused by another connection, in the meantime.
func (p *poller) arm(pc *polled, op int) bool {
	var err error
	cerr := pc.c.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(pc.slot), Pad: int32(pc.gen)}
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	return cerr == nil && err == nil
}

// end stops reading pc once: its slot is freed and, for an error, its owner is
// told (nil: nobody is told).
func (p *poller) end(pc *polled, err error) {
	if !pc.done.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	if p.slots[pc.slot] == pc {
		p.slots[pc.slot] = nil
		p.free = append(p.free, pc.slot)
	}
	p.mu.Unlock()
	if err != nil {
		pc.onEnd(err)
	}
}

func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for i := range n {
			slot, gen := uint32(events[i].Fd), uint32(events[i].Pad)
			p.mu.Lock()
			var pc *polled
			if int(slot) < len(p.slots) && p.gens[slot] == gen {
				pc = p.slots[slot]
			}
			p.mu.Unlock()
			if pc == nil || pc.done.Load() {
				continue // a connection that has gone since
			}
			go p.serve(pc)
		}
	}
}

// serve reads a connection that reported data, then arms it again.
func (p *poller) serve(pc *polled) {
	if pc.c.onReadable(pc.onMessage, func(err error) { p.end(pc, err) }) && !pc.done.Load() {
		if !p.arm(pc, syscall.EPOLL_CTL_MOD) {
			p.end(pc, errConnClosed)
		}
		return
	}
	p.end(pc, nil) // onMessage stopped reading, or it ended already
}

// readNow reads what has arrived, without blocking: n is 0 when nothing has;
// the end of the stream is io.EOF.
func (c *wsConn) readNow(buf []byte) (int, error) {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), buf)
			if rerr == syscall.EINTR {
				continue
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	switch {
	case rerr == syscall.EAGAIN:
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, errReadEOF
	}
	return n, nil
}

// unreadBytes is the number of bytes in the connection's receive buffer
// (TIOCINQ), and whether it could be read.
func (c *wsConn) unreadBytes() (int, bool) {
	if c.rc == nil {
		return 0, false
	}
	var n int32
	var errno syscall.Errno
	err := c.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}
