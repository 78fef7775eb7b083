//go:build linux

package transport

import (
	"syscall"
	"unsafe"
)

// nonblockingWrites says whether writeFd is available here.
const nonblockingWrites = true

// writeFd is the function given to syscall.RawConn.Write: one write(2) of
// c.wbuf on the non-blocking descriptor, never waiting (it always reports done).
// A full socket buffer (EAGAIN) writes nothing and is no error.
//
// The descriptor is non-blocking, so the call cannot block: it is made without
// telling the scheduler (RawSyscall), which spares the scheduler's bookkeeping
// of a system call and, when the runtime's monitor thread sleeps, waking it
// (measurable when a broadcast makes thousands of these calls).
func (c *wsConn) writeFd(fd uintptr) bool {
	b := c.wbuf
	if len(b) == 0 {
		c.wn, c.werr = 0, nil
		return true
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			c.wn, c.werr = int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.wn, c.werr = 0, nil
		default:
			c.wn, c.werr = 0, errno
		}
		return true
	}
}
