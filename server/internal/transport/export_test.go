package transport

import (
	"sync/atomic"

	"github.com/zishang520/engine.io/v2/engine"
)

// SetFixes turns the protocol corrections of protocol.go on or off, for tests
// that show the behaviour they correct.
func SetFixes(on bool) { fixesOn.Store(on) }

// PollWaiting reports whether a GET of session sid of eng waits for packets.
func PollWaiting(eng engine.BaseServer, sid string) bool {
	c, ok := eng.Clients().Load(sid)
	if !ok {
		return false
	}
	s, ok := c.(*session)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poll != nil && s.poll.waiting
}

// SetConnectHooks sets the test hooks of correction 6: afterAnswer runs after
// a CONNECT answer was written (on the goroutine that then records the
// socket), held when a message of the client starts to wait for it. nil
// removes them.
func SetConnectHooks(afterAnswer, held func()) {
	set := func(p *atomic.Pointer[func()], f func()) {
		if f == nil {
			p.Store(nil)
		} else {
			p.Store(&f)
		}
	}
	set(&afterConnectAnswer, afterAnswer)
	set(&onHold, held)
}
