package redisadapter

import (
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

// pending is a request of ours waiting for the other servers' answers. Its fields
// are guarded by the mutex of the requests it is registered in.
type pending struct {
	kind     wire.RequestType
	expected int64
	got      int64
	timer    *time.Timer
	// keep leaves the request registered after answers, until its timer: a
	// broadcast with acks gets any number of them.
	keep bool

	sockets   []socket.SocketDetails
	onSockets func([]socket.SocketDetails, error)

	acks        []any
	onAck       socket.Ack
	clientCount func(uint64)
}

// fail ends the request with err (timeout, close); called without the lock.
func (p *pending) fail(err error) {
	switch p.kind {
	case wire.RequestRemoteFetch:
		go p.onSockets(nil, err)
	case wire.RequestServerSideEmit:
		go p.onAck(p.acks, err)
	}
	// A broadcast with acks has its own timer in the BroadcastOperator.
}

// countClients passes on a server's count of the clients a broadcast with acks
// reached (a negative count is none).
func (p *pending) countClients(n int64) {
	if n >= 0 {
		p.clientCount(uint64(n))
	}
}

// complete ends a request that got every answer it expected.
func (p *pending) complete() {
	switch p.kind {
	case wire.RequestRemoteFetch:
		go p.onSockets(p.sockets, nil)
	case wire.RequestServerSideEmit:
		go p.onAck(p.acks, nil)
	}
}

// requests are the requests of one adapter (classic or sharded) waiting for
// answers, by request id.
type requests struct {
	mu sync.Mutex
	m  map[string]*pending
}

// register adds p as request id; after timeout it is removed and, unless it
// keeps taking answers, failed.
func (rs *requests) register(id string, p *pending, timeout time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]*pending{}
	}
	rs.m[id] = p
	p.timer = time.AfterFunc(timeout, func() {
		if q := rs.unregister(id); q != nil && !q.keep {
			q.fail(fmt.Errorf("redisadapter: timeout reached: only %d responses received out of %d", q.got, q.expected))
		}
	})
}

// unregister removes the request id and returns it, or nil when it was gone.
func (rs *requests) unregister(id string) *pending {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	p := rs.m[id]
	if p == nil {
		return nil
	}
	delete(rs.m, id)
	p.timer.Stop()
	return p
}

// get returns the request id, or nil when it is gone (or was never ours).
func (rs *requests) get(id string) *pending {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.m[id]
}

// gather counts one answer to p, request id, and adds it with add (under the
// lock). The answer that makes the count reach p.expected completes p, unless
// add reports that this answer cannot complete a request.
func (rs *requests) gather(id string, p *pending, add func(p *pending) (canComplete bool)) {
	rs.mu.Lock()
	if rs.m[id] != p {
		rs.mu.Unlock() // ended in the meantime
		return
	}
	p.got++
	if !add(p) || p.got < p.expected {
		rs.mu.Unlock()
		return
	}
	delete(rs.m, id)
	p.timer.Stop()
	rs.mu.Unlock()
	p.complete()
}

// ack adds the answer value of a server to the server-side emit p, request id.
func (rs *requests) ack(id string, p *pending, value any) {
	rs.gather(id, p, func(p *pending) bool {
		p.acks = append(p.acks, value)
		return true
	})
}

// failAll fails every request (the adapter closes).
func (rs *requests) failAll(err error) {
	rs.mu.Lock()
	all := rs.m
	rs.m = nil
	rs.mu.Unlock()
	for _, p := range all {
		p.timer.Stop()
		p.fail(err)
	}
}

// withAnswer appends to the arguments of a server-side emit that expects an
// answer the ack its handler calls: the first call answers the requester with
// the first value acknowledged, later calls do nothing.
func withAnswer(args []any, answer func(first any)) []any {
	var once sync.Once
	ack := socket.Ack(func(values []any, _ error) {
		once.Do(func() {
			var first any
			if len(values) > 0 {
				first = values[0]
			}
			answer(first)
		})
	})
	return append(args[:len(args):len(args)], ack)
}
