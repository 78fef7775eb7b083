package redisadapter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
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

// onResponse handles a message of a response channel.
func (a *Adapter) onResponse(payload []byte) {
	r, err := decode.Response(payload)
	if err != nil {
		a.malformed("response", err, payload)
		return
	}
	p := a.reqs.get(r.RequestID)
	if p == nil {
		a.b.stats.ignored.Add(1) // an answer to another server, or too late
		return
	}
	a.b.stats.responses.Add(1)
	switch p.kind {
	case wire.RequestRemoteFetch:
		// Node counts an answer without a sockets array but never completes
		// the request with it; so do we.
		withSockets := r.Has["sockets"]
		a.reqs.gather(r.RequestID, p, func(p *pending) bool {
			for _, s := range r.Sockets {
				if rs, ok := remoteSocketFrom(s); ok {
					p.sockets = append(p.sockets, rs)
				}
			}
			return withSockets
		})
		if !withSockets {
			a.malformed("response", fmt.Errorf("REMOTE_FETCH answer without sockets"), payload)
		}
	case wire.RequestServerSideEmit:
		a.reqs.gather(r.RequestID, p, func(p *pending) bool {
			p.acks = append(p.acks, r.Data)
			return true
		})
	case wire.RequestBroadcast:
		if r.Type == nil {
			a.malformed("response", fmt.Errorf("broadcast ack answer without type"), payload)
			return
		}
		switch *r.Type {
		case wire.RequestBroadcastClientCount:
			if r.ClientCount >= 0 {
				p.clientCount(uint64(r.ClientCount))
			}
		case wire.RequestBroadcastAck:
			p.onAck([]any{r.Packet}, nil)
		}
	}
}

// onRequest handles a message of the request channel.
func (a *Adapter) onRequest(payload []byte) {
	r, err := decode.Request(payload)
	if err != nil {
		a.malformed("request", err, payload)
		return
	}
	if r.UID == a.uid {
		// Our own: joins, leaves and disconnections were applied when they
		// were published; our queries are answered by the others.
		a.b.stats.ignored.Add(1)
		return
	}
	a.b.stats.requests.Add(1)
	switch r.Type {
	case wire.RequestSockets:
		a.respond(r, &wire.Response{Type: wire.RequestSockets, RequestID: r.RequestID, SocketIDs: a.socketIDs(r.Rooms)})
	case wire.RequestAllRooms:
		a.respond(r, &wire.Response{Type: wire.RequestAllRooms, RequestID: r.RequestID, Rooms: a.LocalRooms("")})
	case wire.RequestRemoteJoin, wire.RequestRemoteLeave:
		if r.Opts == nil {
			a.legacySocket(r)
			return
		}
		if r.Type == wire.RequestRemoteJoin {
			a.memory.AddSockets(fromWireOpts(r.Opts), roomList(r.Rooms))
		} else {
			a.memory.DelSockets(fromWireOpts(r.Opts), roomList(r.Rooms))
		}
	case wire.RequestRemoteDisconnect:
		if r.Opts == nil {
			a.legacySocket(r)
			return
		}
		a.memory.DisconnectSockets(fromWireOpts(r.Opts), r.Close)
	case wire.RequestRemoteFetch:
		var infos []wire.SocketInfo
		a.memory.FetchSockets(fromWireOpts(r.Opts))(func(list []socket.SocketDetails, _ error) {
			infos = make([]wire.SocketInfo, 0, len(list))
			for _, s := range list {
				infos = append(infos, socketInfo(s))
			}
		})
		a.respond(r, &wire.Response{Type: wire.RequestRemoteFetch, RequestID: r.RequestID, Sockets: infos})
	case wire.RequestServerSideEmit:
		a.onServerSideEmit(r)
	case wire.RequestBroadcast:
		a.onBroadcastWithAck(r)
	default:
		a.b.stats.ignored.Add(1)
	}
}

// legacySocket applies the single-socket form of REMOTE_JOIN, REMOTE_LEAVE and
// REMOTE_DISCONNECT ({sid, room} or {sid, close}) that adapters before 7.x sent.
// Those adapters wait for an answer we do not send.
func (a *Adapter) legacySocket(r *wire.Request) {
	s, ok := a.Nsp().Sockets().Load(socket.SocketId(r.Sid))
	if !ok {
		return
	}
	switch r.Type {
	case wire.RequestRemoteJoin:
		s.Join(socket.Room(r.Room))
	case wire.RequestRemoteLeave:
		s.Leave(socket.Room(r.Room))
	case wire.RequestRemoteDisconnect:
		s.Disconnect(r.Close)
	}
}

func (a *Adapter) onServerSideEmit(r *wire.Request) {
	args := r.Data
	if r.RequestID != "" {
		args = withAnswer(args, func(first any) {
			a.respond(r, &wire.Response{Type: wire.RequestServerSideEmit, RequestID: r.RequestID, Data: first})
		})
	}
	// Handlers run on a goroutine of their own, in order, so that a slow or
	// blocking handler cannot hold up broadcasts.
	fn := func() { a.Nsp().OnServerSideEmit(args) }
	select {
	case a.sse <- fn:
	case <-a.done:
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

func (a *Adapter) onBroadcastWithAck(r *wire.Request) {
	packet := toParserPacket(r.Packet)
	a.memory.BroadcastWithAck(packet, fromWireOpts(r.Opts),
		func(n uint64) {
			a.respond(r, &wire.Response{Type: wire.RequestBroadcastClientCount, RequestID: r.RequestID, ClientCount: int64(n)})
		},
		func(answer []any, _ error) {
			var first any
			if len(answer) > 0 {
				first = answer[0]
			}
			a.respond(r, &wire.Response{Type: wire.RequestBroadcastAck, RequestID: r.RequestID, Packet: first})
		})
}

// respond publishes the answer to r on the shared response channel (or the
// requester's own, see Config.PublishOnSpecificResponseChannel).
func (a *Adapter) respond(r *wire.Request, resp *wire.Response) {
	payload, err := wire.EncodeResponse(resp)
	if err != nil {
		a.b.log.emit(slog.LevelError, "encode", "redisadapter: cannot encode an answer",
			slog.String("type", resp.Type.String()), slog.String("error", err.Error()))
		return
	}
	channel := a.ch.Response()
	if a.b.cfg.PublishOnSpecificResponseChannel && r.UID != "" {
		channel = a.ch.SpecificResponse(r.UID)
	}
	_ = a.publish(context.Background(), channel, payload)
}
