//go:build !linux

package transport

// pollerRegister reports false: without epoll, connections read on goroutines
// of their own (readLoop).
func pollerRegister(*wsConn, func(bool, []byte) bool, func(error)) bool { return false }

func (c *wsConn) readNow([]byte) (int, error) { return 0, errReadEOF }

// unreadBytes reports that the unread input of a connection cannot be known.
func (c *wsConn) unreadBytes() (int, bool) { return 0, false }
