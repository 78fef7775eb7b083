package realtime

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// expiry watches the token of one socket: when it expires the socket gets
// task:token_expired, and TokenExpiryGrace later it is disconnected, unless
// an auth:refresh brought a token that expires later (or never).
type expiry struct {
	srv  *Server
	sock *socket.Socket

	mu     sync.Mutex
	p      *auth.Principal
	timer  *time.Timer
	gen    int // bumped by every arm: a timer of an older one does nothing
	closed bool
}

// watchExpiry arms the expiry of sock's token, and handles auth:refresh on
// it for its life.
func (s *Server) watchExpiry(sock *socket.Socket, p *auth.Principal) {
	e := &expiry{srv: s, sock: sock, p: p}
	e.mu.Lock()
	e.arm(p.ExpiresAt)
	e.mu.Unlock()
	_ = sock.On(events.AuthRefresh, func(args ...any) {
		token, ack := refreshArgs(args)
		// A JWKS fetch may be needed: not on the socket's reading path.
		go e.refresh(token, ack)
	})
	_ = sock.On("disconnect", func(...any) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.closed = true
		if e.timer != nil {
			e.timer.Stop()
		}
	})
}

// arm starts the timer of a token expiring at at (zero: never). e.mu is held.
func (e *expiry) arm(at time.Time) {
	e.gen++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if at.IsZero() || e.closed {
		return
	}
	gen := e.gen
	e.timer = time.AfterFunc(time.Until(at), func() { e.expired(gen, at) })
}

func (e *expiry) expired(gen int, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen || e.closed {
		return
	}
	_ = e.sock.Emit(events.TaskTokenExpired, events.TokenExpired{ExpiresAt: at.UTC()})
	e.timer = time.AfterFunc(e.srv.cfg.TokenExpiryGrace, func() {
		e.mu.Lock()
		stale := gen != e.gen || e.closed
		e.mu.Unlock()
		if !stale {
			e.srv.log.Debug("socket disconnected: its token expired", "socket", string(e.sock.Id()))
			e.sock.Disconnect(true)
		}
	})
}

func (e *expiry) refresh(token string, ack socket.Ack) {
	answer := func(v any) {
		if ack != nil {
			ack([]any{v}, nil)
		}
	}
	if token == "" {
		answer(ackError("bad_request", "expected {token: string}"))
		return
	}
	p, err := e.srv.cfg.Authenticate(token)
	if err != nil || p == nil {
		answer(ackError("unauthorized", reason(err)))
		return
	}
	e.mu.Lock()
	old := e.p
	if p.Kind != old.Kind || p.Identity != old.Identity || p.TaskID != old.TaskID {
		e.mu.Unlock()
		answer(ackError("identity_changed", "the new token is for another identity; connect again with it"))
		return
	}
	e.p = p
	e.arm(p.ExpiresAt)
	e.mu.Unlock()
	res := events.RefreshAck{OK: true}
	if !p.ExpiresAt.IsZero() {
		at := p.ExpiresAt.UTC()
		res.ExpiresAt = &at
	}
	answer(res)
}

// refreshArgs reads auth:refresh's {token} and its ack.
func refreshArgs(args []any) (string, socket.Ack) {
	var ack socket.Ack
	if n := len(args); n > 0 {
		if f, ok := args[n-1].(socket.Ack); ok {
			ack, args = f, args[:n-1]
		} else if f, ok := args[n-1].(func([]any, error)); ok {
			ack, args = f, args[:n-1]
		}
	}
	if len(args) != 1 {
		return "", ack
	}
	m, _ := args[0].(map[string]any)
	t, _ := m["token"].(string)
	return t, ack
}

func ackError(code, message string) events.AckError {
	return events.AckError{Error: tasks.ErrorInfo{Code: code, Message: message}}
}
