package realtime

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/socket.io/v2/socket"
)

// sessions is the server's own account of its engine.io sessions: which
// address opened each, which have an authenticated socket and of which
// identity, and the sockets of each. It bounds them (MaxConnections counts the
// authenticated ones, MaxUnauthenticated the others, MaxConnectionsPerIP all
// the sessions of an address, MaxSocketsPerIdentity the authenticated ones of
// an identity), and it disconnects a socket that the namespace added after its
// connection closed: zishang520's namespace can add a socket whose client
// closed while its middlewares ran, and nothing would ever remove it.
type sessions struct {
	mu          sync.Mutex
	byID        map[string]*session
	byIP        map[string]int
	byIdentity  map[string]int
	handshaking int // admitted handshakes whose session is not counted yet
	open        int // sessions counted (in byID)
	authed      int // of which with an authenticated socket
}

// session is one engine.io session, or a handshake admitted for one.
type session struct {
	ip       string
	identity string // "" until a socket authenticated
	sockets  []*socket.Socket
	counted  bool // in byID; else still a handshake's reservation
	closed   bool
	released bool // a reservation given back without a session
}

type sessionKey struct{}

func newSessions() *sessions {
	return &sessions{byID: map[string]*session{}, byIP: map[string]int{}, byIdentity: map[string]int{}}
}

// Refusal reasons of admit, besides RefusedFull.
const (
	// RefusedUnauthenticatedFull: the server had MaxUnauthenticated sessions
	// that had not authenticated yet.
	RefusedUnauthenticatedFull = "unauthenticated_full"
	// RefusedPerIP: the client's address had MaxConnectionsPerIP sessions.
	RefusedPerIP = "per_ip"
	// RefusedPerIdentity: the identity had MaxSocketsPerIdentity sockets.
	RefusedPerIdentity = "per_identity"
)

// admit reserves a place for a new session from ip, or returns the reason it
// has none.
func (l *sessions) admit(cfg *Config, ip string) (*session, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case cfg.MaxConnections > 0 && l.authed >= cfg.MaxConnections:
		return nil, RefusedFull
	case cfg.MaxUnauthenticated > 0 && l.open-l.authed+l.handshaking >= cfg.MaxUnauthenticated:
		return nil, RefusedUnauthenticatedFull
	case cfg.MaxConnectionsPerIP > 0 && l.byIP[ip] >= cfg.MaxConnectionsPerIP:
		return nil, RefusedPerIP
	}
	l.handshaking++
	l.byIP[ip]++
	return &session{ip: ip}, ""
}

// release gives back the reservation of a handshake that made no session.
func (l *sessions) release(e *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.counted || e.released {
		return
	}
	e.released = true
	l.handshaking--
	l.dropIP(e.ip)
}

func (l *sessions) dropIP(ip string) {
	if l.byIP[ip] <= 1 {
		delete(l.byIP, ip)
	} else {
		l.byIP[ip]--
	}
}

// opened counts the engine's new session c, with the reservation its
// handshake made (nil when it had to make none), until c closes.
func (l *sessions) opened(c engine.Socket, e *session) {
	l.mu.Lock()
	switch {
	case e == nil || e.released:
		e = &session{ip: remoteIP(c)}
		l.byIP[e.ip]++
	default:
		l.handshaking--
	}
	e.counted = true
	l.byID[c.Id()] = e
	l.open++
	l.mu.Unlock()
	_ = c.Once("close", func(...any) { l.closed(c.Id()) })
	if c.ReadyState() == "closed" { // closed before the listener was there
		l.closed(c.Id())
	}
}

// closed forgets session id and disconnects the sockets the library may
// have left in the namespace.
func (l *sessions) closed(id string) {
	l.mu.Lock()
	e, ok := l.byID[id]
	if !ok {
		l.mu.Unlock()
		return
	}
	delete(l.byID, id)
	e.closed = true
	l.open--
	l.dropIP(e.ip)
	if e.identity != "" {
		l.authed--
		if l.byIdentity[e.identity] <= 1 {
			delete(l.byIdentity, e.identity)
		} else {
			l.byIdentity[e.identity]--
		}
	}
	socks := e.sockets
	e.sockets = nil
	l.mu.Unlock()
	for _, s := range socks {
		if s.Connected() {
			s.Disconnect(false)
		}
	}
}

// authenticate counts session id as authenticated for identity, or returns
// why it may not be.
func (l *sessions) authenticate(cfg *Config, id, identity string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byID[id]
	if !ok || e.closed {
		return "" // closed meanwhile: the namespace drops the socket
	}
	if e.identity != "" {
		return "" // counted already (another socket of the same session)
	}
	switch {
	case cfg.MaxConnections > 0 && l.authed >= cfg.MaxConnections:
		return RefusedFull
	case cfg.MaxSocketsPerIdentity > 0 && l.byIdentity[identity] >= cfg.MaxSocketsPerIdentity:
		return RefusedPerIdentity
	}
	e.identity = identity
	l.authed++
	l.byIdentity[identity]++
	return ""
}

// connected records a socket the namespace added; when its session already
// closed, it disconnects it at once: nothing else would.
func (l *sessions) connected(s *socket.Socket) {
	id := s.Conn().Id()
	l.mu.Lock()
	e, ok := l.byID[id]
	if ok && !e.closed {
		e.sockets = append(e.sockets, s)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if s.Connected() {
		s.Disconnect(false)
	}
}

// disconnected forgets a socket of a session that stays open.
func (l *sessions) disconnected(s *socket.Socket) {
	id := s.Conn().Id()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byID[id]; ok {
		for i, x := range e.sockets {
			if x == s {
				e.sockets = append(e.sockets[:i], e.sockets[i+1:]...)
				break
			}
		}
	}
}

// counts returns the sessions and the authenticated ones.
func (l *sessions) counts() (open, authed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.authed
}

// reservationOf returns the reservation a handshake's request carries.
func reservationOf(c engine.Socket) *session {
	if c.Request() == nil || c.Request().Request() == nil {
		return nil
	}
	e, _ := c.Request().Request().Context().Value(sessionKey{}).(*session)
	return e
}

func withReservation(r *http.Request, e *session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionKey{}, e))
}

// remoteIP is the address of the client of session c's handshake.
func remoteIP(c engine.Socket) string {
	if c.Request() == nil || c.Request().Request() == nil {
		return ""
	}
	return hostOf(c.Request().Request().RemoteAddr)
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// clientIP is the address of the client of r: the peer's, or with trustProxy
// the last address of X-Forwarded-For (the one the proxy in front saw; the
// ones before it are the client's word).
func clientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	return hostOf(r.RemoteAddr)
}
