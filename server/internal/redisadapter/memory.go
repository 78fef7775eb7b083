package redisadapter

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zishang520/engine.io/v2/events"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"
)

// memory is the in-memory part of the adapter: which local socket is in which
// room, and the local side of every operation (broadcast, join, leave,
// disconnect, fetch). It does what socket.io-go's in-memory adapter does, with a
// compact index: socket.io-go keeps a concurrent map of concurrent sets on both
// sides, about 1.5 KB for a socket in three rooms; here two plain maps under one
// lock hold a room of one socket (every socket's own room, most users' rooms)
// without a set, and a socket's rooms as a short slice, about 350 bytes.
//
// It emits the events of socket.io-go's adapter: create-room and delete-room
// (room), join-room and leave-room (room, socket id), in the order of the changes
// they describe. Listeners run synchronously; they may read the index, and must
// not change it.
type memory struct {
	events.EventEmitter

	proto   socket.Adapter
	nsp     socket.Namespace
	encoder parser.Encoder

	// change serialises changes together with their events, so listeners see
	// them in order; mu guards the maps (held only while they are read or
	// changed, never while listeners or sockets run).
	change sync.Mutex
	mu     sync.RWMutex
	rooms  map[socket.Room]members
	sids   map[socket.SocketId][]socket.Room
}

// members is the set of sockets in one room: one socket in one, or a set.
type members struct {
	one  socket.SocketId
	many map[socket.SocketId]struct{}
}

func (m members) has(id socket.SocketId) bool {
	if m.many != nil {
		_, ok := m.many[id]
		return ok
	}
	return m.one == id
}

func (m members) len() int {
	if m.many != nil {
		return len(m.many)
	}
	return 1
}

// each calls fn for every member until it returns false.
func (m members) each(fn func(socket.SocketId) bool) {
	if m.many == nil {
		fn(m.one)
		return
	}
	for id := range m.many {
		if !fn(id) {
			return
		}
	}
}

// add returns m with id in it.
func (m members) add(id socket.SocketId) members {
	if m.many != nil {
		m.many[id] = struct{}{}
		return m
	}
	return members{many: map[socket.SocketId]struct{}{m.one: {}, id: {}}}
}

// remove returns m without id, and whether it is empty now.
func (m members) remove(id socket.SocketId) (members, bool) {
	if m.many == nil {
		return m, m.one == id
	}
	delete(m.many, id)
	switch len(m.many) {
	case 0:
		return members{}, true
	case 1:
		for last := range m.many {
			return members{one: last}, false
		}
	}
	return m, false
}

// roomEvent is an event of the index, emitted once the change is made.
type roomEvent struct {
	name string
	room socket.Room
	id   socket.SocketId
}

var _ socket.Adapter = (*memory)(nil)

func newMemory() *memory {
	return &memory{
		EventEmitter: events.New(),
		rooms:        map[socket.Room]members{},
		sids:         map[socket.SocketId][]socket.Room{},
	}
}

// Prototype records the adapter that socket.io-go's prototype chain ends in.
func (m *memory) Prototype(a socket.Adapter) { m.proto = a }

// Proto returns the adapter given to Prototype.
func (m *memory) Proto() socket.Adapter { return m.proto }

// Construct sets m up for nsp.
func (m *memory) Construct(nsp socket.Namespace) {
	m.nsp = nsp
	m.encoder = nsp.Server().Encoder()
}

// Nsp returns the namespace.
func (m *memory) Nsp() socket.Namespace { return m.nsp }

// Init does nothing.
func (m *memory) Init() {}

// Close does nothing.
func (m *memory) Close() {}

// ServerCount returns 1: this server.
func (m *memory) ServerCount() int64 { return 1 }

// Rooms returns a copy of the index by room. It costs a walk of the index; the
// adapter's own code uses HasRoom and LocalRooms.
func (m *memory) Rooms() *types.Map[socket.Room, *types.Set[socket.SocketId]] {
	out := &types.Map[socket.Room, *types.Set[socket.SocketId]]{}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for room, ms := range m.rooms {
		set := types.NewSet[socket.SocketId]()
		ms.each(func(id socket.SocketId) bool { set.Add(id); return true })
		out.Store(room, set)
	}
	return out
}

// Sids returns a copy of the index by socket.
func (m *memory) Sids() *types.Map[socket.SocketId, *types.Set[socket.Room]] {
	out := &types.Map[socket.SocketId, *types.Set[socket.Room]]{}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for id, rooms := range m.sids {
		out.Store(id, types.NewSet(rooms...))
	}
	return out
}

// HasRoom reports whether room holds a local socket.
func (m *memory) HasRoom(room socket.Room) bool {
	m.mu.RLock()
	_, ok := m.rooms[room]
	m.mu.RUnlock()
	return ok
}

// hasSocket reports whether the socket id is in the index.
func (m *memory) hasSocket(id socket.SocketId) bool {
	m.mu.RLock()
	_, ok := m.sids[id]
	m.mu.RUnlock()
	return ok
}

// LocalRooms returns the rooms that hold local sockets and whose names start
// with prefix ("" for all).
func (m *memory) LocalRooms(prefix string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []string{}
	for room := range m.rooms {
		if strings.HasPrefix(string(room), prefix) {
			out = append(out, string(room))
		}
	}
	return out
}

// AddAll puts the socket id in rooms.
func (m *memory) AddAll(id socket.SocketId, rooms *types.Set[socket.Room]) {
	var keys []socket.Room
	if rooms != nil {
		keys = rooms.Keys()
	}
	m.change.Lock()
	defer m.change.Unlock()
	var evs []roomEvent
	m.mu.Lock()
	mine, known := m.sids[id]
	// The socket's list grows to the exact size: most sockets join a few
	// rooms once and keep them.
	if cap(mine)-len(mine) < len(keys) {
		mine = append(make([]socket.Room, 0, len(mine)+len(keys)), mine...)
	}
	for _, room := range keys {
		ms, exists := m.rooms[room]
		switch {
		case !exists:
			m.rooms[room] = members{one: id}
			evs = append(evs, roomEvent{name: "create-room", room: room}, roomEvent{name: "join-room", room: room, id: id})
		case !ms.has(id):
			m.rooms[room] = ms.add(id)
			evs = append(evs, roomEvent{name: "join-room", room: room, id: id})
		default:
			continue
		}
		mine = append(mine, room)
	}
	if !known || len(keys) > 0 {
		m.sids[id] = mine
	}
	m.mu.Unlock()
	m.emit(evs)
}

// Del takes the socket id out of room.
func (m *memory) Del(id socket.SocketId, room socket.Room) {
	m.change.Lock()
	defer m.change.Unlock()
	m.mu.Lock()
	if mine, ok := m.sids[id]; ok {
		for i, r := range mine {
			if r == room {
				m.sids[id] = append(mine[:i:i], mine[i+1:]...)
				break
			}
		}
	}
	evs := m.leave(nil, room, id)
	m.mu.Unlock()
	m.emit(evs)
}

// DelAll takes the socket id out of every room.
func (m *memory) DelAll(id socket.SocketId) {
	m.change.Lock()
	defer m.change.Unlock()
	m.mu.Lock()
	mine, ok := m.sids[id]
	if !ok {
		m.mu.Unlock()
		return
	}
	var evs []roomEvent
	for _, room := range mine {
		evs = m.leave(evs, room, id)
	}
	delete(m.sids, id)
	m.mu.Unlock()
	m.emit(evs)
}

// leave takes id out of room's members (m.mu held) and appends the events.
func (m *memory) leave(evs []roomEvent, room socket.Room, id socket.SocketId) []roomEvent {
	ms, ok := m.rooms[room]
	if !ok || !ms.has(id) {
		return evs
	}
	ms, empty := ms.remove(id)
	evs = append(evs, roomEvent{name: "leave-room", room: room, id: id})
	if empty {
		delete(m.rooms, room)
		return append(evs, roomEvent{name: "delete-room", room: room})
	}
	m.rooms[room] = ms
	return evs
}

func (m *memory) emit(evs []roomEvent) {
	for _, e := range evs {
		if m.ListenerCount(events.EventName(e.name)) == 0 {
			continue
		}
		if e.id == "" {
			m.Emit(events.EventName(e.name), e.room)
		} else {
			m.Emit(events.EventName(e.name), e.room, e.id)
		}
	}
}

// recipients returns the local sockets t selects, once each: those in any of
// t.rooms (every socket when there is none) and in none of t.except.
func (m *memory) recipients(t target) []*socket.Socket {
	sockets := m.nsp.Sockets()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var except map[socket.SocketId]struct{}
	if len(t.except) > 0 {
		except = map[socket.SocketId]struct{}{}
		for _, r := range t.except {
			if ms, ok := m.rooms[socket.Room(r)]; ok {
				ms.each(func(id socket.SocketId) bool { except[id] = struct{}{}; return true })
			}
		}
	}
	excluded := func(id socket.SocketId) bool {
		_, ok := except[id]
		return ok
	}
	var out []*socket.Socket
	if len(t.rooms) == 0 {
		out = make([]*socket.Socket, 0, len(m.sids))
		for id := range m.sids {
			if !excluded(id) {
				if s, ok := sockets.Load(id); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	var seen map[socket.SocketId]struct{}
	if len(t.rooms) > 1 {
		seen = map[socket.SocketId]struct{}{}
	}
	for _, r := range t.rooms {
		ms, ok := m.rooms[socket.Room(r)]
		if !ok {
			continue
		}
		if out == nil {
			out = make([]*socket.Socket, 0, ms.len())
		}
		ms.each(func(id socket.SocketId) bool {
			if excluded(id) {
				return true
			}
			if seen != nil {
				if _, dup := seen[id]; dup {
					return true
				}
				seen[id] = struct{}{}
			}
			if s, ok := sockets.Load(id); ok {
				out = append(out, s)
			}
			return true
		})
	}
	return out
}

// Broadcast sends packet to the matching local sockets.
func (m *memory) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	flags := flagsOf(opts)
	deliverLocal(m, outgoingPacket(m, packet, flags.Volatile, flags.Compress), targetOf(opts))
}

// BroadcastWithAck sends packet to the matching local sockets, each of which
// answers through ack; clientCount is told how many were reached.
func (m *memory) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCount func(uint64), ack socket.Ack) {
	flags := flagsOf(opts)
	packet.Nsp = m.nsp.Name()
	// One id for every recipient: the namespace's counter is shared, so no
	// socket has another pending ack with it.
	id := m.nsp.Ids()
	packet.Id = &id
	wopts := &socket.WriteOptions{PreEncoded: true, Volatile: flags.Volatile}
	wopts.Compress = flags.Compress
	encoded := m.encoder.Encode(packet)
	if len(encoded) == 1 {
		if p, ok := encoded[0].(*types.StringBuffer); ok {
			f := types.NewStringBufferString("4")
			f.Write(p.Bytes())
			wopts.WsPreEncodedFrame = f
		}
	}
	var n atomic.Uint64
	for _, s := range m.recipients(targetOf(opts)) {
		n.Add(1)
		s.Acks().Store(id, ack)
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		s.Client().WriteToEngine(encoded, wopts)
	}
	clientCount(n.Load())
}

// Sockets returns the ids of the local sockets in any of rooms (all when there
// is none).
func (m *memory) Sockets(rooms *types.Set[socket.Room]) *types.Set[socket.SocketId] {
	out := types.NewSet[socket.SocketId]()
	for _, s := range m.recipients(target{rooms: roomStrings(rooms)}) {
		out.Add(s.Id())
	}
	return out
}

// socketIDs returns the ids of the local sockets in any of rooms (all when
// there is none).
func (m *memory) socketIDs(rooms []string) []string {
	list := m.recipients(target{rooms: rooms})
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = string(s.Id())
	}
	return out
}

// SocketRooms returns the rooms of the socket id (a copy), or nil when it has
// none.
func (m *memory) SocketRooms(id socket.SocketId) *types.Set[socket.Room] {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rooms, ok := m.sids[id]
	if !ok {
		return nil
	}
	return types.NewSet(rooms...)
}

// FetchSockets returns the matching local sockets.
func (m *memory) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(cb func([]socket.SocketDetails, error)) {
		list := m.recipients(targetOf(opts))
		out := make([]socket.SocketDetails, len(list))
		for i, s := range list {
			out[i] = s
		}
		cb(out, nil)
	}
}

// AddSockets makes the matching local sockets join rooms.
func (m *memory) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	for _, s := range m.recipients(targetOf(opts)) {
		s.Join(rooms...)
	}
}

// DelSockets makes the matching local sockets leave rooms.
func (m *memory) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	for _, s := range m.recipients(targetOf(opts)) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
}

// DisconnectSockets disconnects the matching local sockets; close also closes
// their connections.
func (m *memory) DisconnectSockets(opts *socket.BroadcastOptions, close bool) {
	for _, s := range m.recipients(targetOf(opts)) {
		s.Disconnect(close)
	}
}

// ServerSideEmit is not possible on one server alone.
func (m *memory) ServerSideEmit([]any) error {
	return errors.New("redisadapter: server-side emit needs the cluster")
}

// PersistSession does nothing: connection state recovery is not offered.
func (m *memory) PersistSession(*socket.SessionToPersist) {}

// RestoreSession finds nothing: connection state recovery is not offered.
func (m *memory) RestoreSession(socket.PrivateSessionId, string) (*socket.Session, error) {
	return nil, nil
}
