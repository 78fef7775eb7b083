package transport

import "github.com/zishang520/engine.io/v2/engine"

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
