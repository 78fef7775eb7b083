//go:build !linux

package transport

// nonblockingWrites says whether writeFd is available here: elsewhere every
// write goes through the writer goroutine.
const nonblockingWrites = false

func (c *wsConn) writeFd(uintptr) bool { return true }
