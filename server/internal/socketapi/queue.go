package socketapi

import (
	"context"
	"sync"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"
)

// job is one event of a socket to handle.
type job struct {
	handle func(context.Context, *socket.Socket, *auth.Principal, []any)
	args   []any
	// redis: the handler calls Redis, so it takes a place in the server's pool.
	redis bool
}

// queue holds the events of one socket: at most h.InFlight handled at once, by
// as many goroutines that take the next waiting event when done, and at most
// h.Queued waiting.
type queue struct {
	h *Handlers
	s *socket.Socket
	p *auth.Principal

	mu      sync.Mutex
	waiting []job
	head    int // waiting[head:] are the events still waiting
	running int
	closed  bool
}

// push hands j to a free place, or queues it; it returns false when the socket
// already has as many events as it may (the queue is closed then). Events of a
// closed queue are dropped.
func (q *queue) push(j job) bool {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return true
	case q.running < q.h.InFlight:
		q.running++
		q.mu.Unlock()
		go q.run(j)
		return true
	case len(q.waiting)-q.head < q.h.Queued:
		if q.head > 0 && len(q.waiting) == cap(q.waiting) {
			n := copy(q.waiting, q.waiting[q.head:])
			clear(q.waiting[n:])
			q.waiting, q.head = q.waiting[:n], 0
		}
		q.waiting = append(q.waiting, j)
		q.mu.Unlock()
		return true
	}
	q.closed = true
	q.waiting, q.head = nil, 0
	q.mu.Unlock()
	return false
}

// close drops the waiting events: the socket is gone.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.waiting, q.head = nil, 0
	q.mu.Unlock()
}

// run handles j, then the waiting events, until there are none.
func (q *queue) run(j job) {
	for {
		q.h.exec(q.s, q.p, j)
		q.mu.Lock()
		if q.closed || q.head == len(q.waiting) {
			q.running--
			q.waiting, q.head = q.waiting[:0], 0
			q.mu.Unlock()
			return
		}
		j = q.waiting[q.head]
		q.waiting[q.head] = job{}
		q.head++
		q.mu.Unlock()
	}
}

// exec handles one event within requestTimeout, in a place of the server's
// pool when it calls Redis; without a place in time it answers "unavailable".
func (h *Handlers) exec(s *socket.Socket, p *auth.Principal, j job) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if j.redis {
		select {
		case h.pool <- struct{}{}:
			defer func() { <-h.pool }()
		case <-ctx.Done():
			_, ack, _ := request(j.args)
			reply(ack, ackError("unavailable", "the server is busy; try again"))
			return
		}
	}
	j.handle(ctx, s, p, j.args)
}
