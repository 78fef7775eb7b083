// Package socketapi handles the events browsers send over Socket.IO:
// task:subscribe (follow a task and get its snapshot, and with since the events
// missed since then), task:unsubscribe, task:cancel, task:received (the client
// has a task's final event) and inbox:ack (mark inbox items seen). Each answers
// through the acknowledgement callback, with either the
// task record (a task:state snapshot) or {"error":{"code","message"}}.
package socketapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"

	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// requestTimeout bounds the work done for one socket event, its wait for a
// place in the server's pool included: every Redis call it makes ends by then.
const requestTimeout = 5 * time.Second

// Defaults of the bounds of Handlers.
const (
	// DefaultInFlight is the default of Handlers.InFlight.
	DefaultInFlight = 8
	// DefaultQueued is the default of Handlers.Queued: room for a client
	// that follows every one of its recent tasks at once after a reconnection.
	DefaultQueued = 128
	// DefaultWorkers is the default of Handlers.Workers.
	DefaultWorkers = 64
)

// Handlers registers the task events on every new socket.
//
// The work of the events is bounded: a socket has at most InFlight events
// being handled and Queued more waiting, handled by at most InFlight
// goroutines of its own (never one per event); one more closes its connection
// (OnFlood). The handlers that call Redis take a place in a pool of Workers
// shared by every socket of the server, so that a few busy sockets cannot
// take every connection of the Redis pool from the rest of the server.
type Handlers struct {
	Tasks  *taskservice.Service
	Logger *slog.Logger
	// InFlight bounds the events of one socket handled at once; default
	// DefaultInFlight.
	InFlight int
	// Queued bounds the events of one socket waiting for one of its InFlight
	// places; default DefaultQueued.
	Queued int
	// Workers bounds the event handlers of the whole server that call Redis
	// at once; default DefaultWorkers.
	Workers int
	// OnFlood, when set, is called for every socket closed for having more
	// than InFlight+Queued events unanswered.
	OnFlood func()

	once sync.Once
	pool chan struct{}
}

func (h *Handlers) init() {
	h.once.Do(func() {
		if h.InFlight <= 0 {
			h.InFlight = DefaultInFlight
		}
		if h.Queued < 0 {
			h.Queued = 0
		} else if h.Queued == 0 {
			h.Queued = DefaultQueued
		}
		if h.Workers <= 0 {
			h.Workers = DefaultWorkers
		}
		h.pool = make(chan struct{}, h.Workers)
	})
}

// Register attaches the event handlers to s, which p authenticated. It has the
// signature of realtime.Config.OnConnection. A viewer's socket may follow its
// one task (any other answers as not found) and cancel nothing.
//
// It adds one catch-all listener rather than one per event: a listener per
// event name costs a map entry and a list on every socket, for its whole life.
func (h *Handlers) Register(s *socket.Socket, p *auth.Principal) {
	h.init()
	identity := p.Identity
	q := &queue{h: h, s: s, p: p}
	s.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		var j job
		switch name, _ := args[0].(string); name {
		case events.TaskSubscribe:
			j = job{handle: h.subscribe, redis: true}
		case events.TaskUnsubscribe:
			j = job{handle: h.unsubscribe}
		case events.TaskCancel:
			j = job{handle: h.cancel, redis: true}
		case events.TaskReceived:
			j = job{handle: h.received, redis: true}
		case events.InboxAck:
			j = job{handle: h.inboxAck, redis: true}
		default:
			return
		}
		j.args = args[1:]
		// Catch-all listeners run on the socket's reading path: the work
		// (Redis round trips) goes to the socket's queue.
		if !q.push(j) {
			h.flood(s, identity)
		}
	})
	_ = s.On("disconnect", func(...any) { q.close() })
}

// flood closes the connection of a socket that sent more events than it
// may have unanswered.
func (h *Handlers) flood(s *socket.Socket, identity string) {
	h.logger().Warn("socket closed: too many events unanswered",
		"socket", string(s.Id()), "identity", identity, "inFlight", h.InFlight, "queued", h.Queued)
	if h.OnFlood != nil {
		h.OnFlood()
	}
	s.Disconnect(true)
}

// Rooms is what Resync needs of the Socket.IO server (realtime.Server).
type Rooms interface {
	// LocalRooms returns the rooms holding sockets of this server whose names
	// start with prefix.
	LocalRooms(prefix string) []string
	// EmitLocal emits an event to the sockets of this server in room.
	EmitLocal(room, event string, args ...any) error
}

// resyncTimeout bounds one Resync.
const resyncTimeout = 30 * time.Second

// Resync sends a task:state snapshot to every task room of this server: after
// the Redis adapter lost its subscription for a while (realtime's
// OnResubscribe), the events published in between never arrived, and the
// snapshot brings the sockets up to date (clients drop what is older by seq).
// A task whose record has expired gets nothing. It returns how many snapshots
// it sent.
func (h *Handlers) Resync(ctx context.Context, r Rooms) int {
	ctx, cancel := context.WithTimeout(ctx, resyncTimeout)
	defer cancel()
	sent := 0
	prefix := events.TaskRoom("")
	for _, room := range r.LocalRooms(prefix) {
		rec, err := h.Tasks.Snapshot(ctx, room[len(prefix):])
		if errors.Is(err, taskservice.ErrNotFound) {
			continue
		}
		if err != nil { // logged by Snapshot
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if err := r.EmitLocal(room, events.TaskState, rec); err != nil {
			h.logger().WarnContext(ctx, "resync: emit", "room", room, "err", err)
			continue
		}
		sent++
	}
	return sent
}

func (h *Handlers) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// splitAck splits the arguments of an event into the payload arguments and
// the ack callback (nil when the client wants none).
func splitAck(args []any) ([]any, socket.Ack) {
	if n := len(args); n > 0 {
		if f, ok := args[n-1].(socket.Ack); ok {
			return args[:n-1], f
		} else if f, ok := args[n-1].(func([]any, error)); ok {
			return args[:n-1], f
		}
	}
	return args, nil
}

// object returns the one object argument of an event, or the AckError that
// says it expected shape.
func object(args []any, shape string) (map[string]any, *events.AckError) {
	if len(args) != 1 {
		return nil, ackError("bad_request", "expected one argument: "+shape)
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return nil, ackError("bad_request", "expected an object: "+shape)
	}
	return m, nil
}

// request splits the arguments of an event into the task id and the ack callback.
func request(args []any) (taskID string, ack socket.Ack, err *events.AckError) {
	args, ack = splitAck(args)
	m, bad := object(args, "{taskId: string}")
	if bad != nil {
		return "", ack, bad
	}
	id, ok := m["taskId"].(string)
	if !ok || id == "" {
		return "", ack, ackError("bad_request", "taskId must be a non-empty string")
	}
	return id, ack, nil
}

func ackError(code, message string) *events.AckError {
	return &events.AckError{Error: tasks.ErrorInfo{Code: code, Message: message}}
}

// serviceError maps a service error to the answer sent to the client. A task of
// another identity and a missing task get the same answer.
func serviceError(err error) *events.AckError {
	switch {
	case errors.Is(err, taskservice.ErrNotFound):
		return ackError("not_found", "no such task")
	case errors.Is(err, taskservice.ErrFinished):
		return ackError("task_finished", "the task already finished and cannot be cancelled")
	case errors.Is(err, taskservice.ErrUnavailable):
		return ackError("unavailable", "the task store is unavailable; try again")
	case errors.Is(err, taskservice.ErrBadSince):
		return ackError("bad_request", "since is greater than the task's seq: the client cannot have events the task never had")
	case errors.Is(err, taskservice.ErrNotFinal):
		return ackError("not_finished", "the task has not finished yet")
	}
	return ackError("internal", "internal error")
}

func reply(ack socket.Ack, v any) {
	if ack != nil {
		ack([]any{v}, nil)
	}
}

// owner is what the task service is asked as for p about task id: p's
// identity, or for a viewer Anyone for its task and nobody for the others.
func owner(p *auth.Principal, id string) (string, bool) {
	if p.Kind == auth.KindViewer {
		return taskservice.Anyone, id == p.TaskID
	}
	return p.Identity, true
}

// MaxSubscribeEvents bounds the events one task:subscribe ack carries (and so
// do taskservice's byte bound, store.MaxHistoryReadBytes of payloads). An ack
// whose events stop short of its record's seq while recovered is true was cut
// there: the client reads the rest with GET /api/v1/tasks/<id>/events?since=<the
// seq of the last event it got>.
const MaxSubscribeEvents = 2000

// subscribe answers task:subscribe {taskId, since?}: the socket joins the task's
// room, then the ack carries the record and, with since, the events after since
// (events.SubscribeAck). Joining first (and, with the sharded adapter's dynamic
// modes, waiting until Redis confirmed the room's subscription) means that
// nothing published after the read is lost; what is published between the join and the read reaches the
// socket twice, live and in the ack, and the client drops the copy by seq (see
// events.SubscribeAck).
func (h *Handlers) subscribe(ctx context.Context, s *socket.Socket, p *auth.Principal, args []any) {
	id, ack, bad := request(args)
	var since *int64
	if bad == nil {
		since, bad = sinceOf(args)
	}
	if bad != nil {
		reply(ack, bad)
		return
	}
	identity, ok := owner(p, id)
	if !ok {
		reply(ack, serviceError(taskservice.ErrNotFound))
		return
	}
	first, err := h.Tasks.Get(ctx, identity, id)
	if err != nil {
		reply(ack, serviceError(err))
		return
	}
	if since != nil && *since > first.Seq {
		// The seq of a task only grows: since can only be wrong now.
		reply(ack, badSince(first.Seq))
		return
	}
	// Join first, then read the snapshot: every event published after the read
	// carries a greater seq and reaches the socket; anything older is in the
	// snapshot (and, with since, in the events of the ack).
	room := socket.Room(events.TaskRoom(id))
	s.Join(room)
	if err := awaitRoom(ctx, s, room); err != nil {
		h.logger().WarnContext(ctx, "task:subscribe: room subscription", "task", id, "err", err)
		reply(ack, serviceError(taskservice.ErrUnavailable))
		return
	}
	if since == nil {
		rec, err := h.Tasks.Get(ctx, identity, id)
		if err != nil {
			reply(ack, serviceError(err))
			return
		}
		if ack != nil {
			reply(ack, rec)
			return
		}
		_ = s.Emit(events.TaskState, rec)
		return
	}
	page, err := h.Tasks.History(ctx, identity, id, *since, MaxSubscribeEvents)
	if err != nil {
		reply(ack, serviceError(err))
		return
	}
	out := events.SubscribeAck{State: *page.Record, Events: page.Events, Recovered: &page.Recovered, Reason: page.Reason}
	if ack != nil {
		reply(ack, out)
		return
	}
	_ = s.Emit(events.TaskState, page.Record)
}

// roomWaiter is an adapter that subscribes to rooms in the background
// (redisadapter's sharded bus in its dynamic modes).
type roomWaiter interface {
	AwaitRooms(ctx context.Context, rooms ...socket.Room) error
}

// awaitRoom returns once events published to room from now on reach s (see
// redisadapter.Adapter.AwaitRooms), within ctx and at most a few seconds.
func awaitRoom(ctx context.Context, s *socket.Socket, room socket.Room) error {
	w, ok := s.Nsp().Adapter().(roomWaiter)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, roomWait)
	defer cancel()
	return w.AwaitRooms(ctx, room)
}

// roomWait bounds the wait for a room's subscription: Redis answers in
// milliseconds unless it cannot be reached, and then the read that follows
// would fail too.
const roomWait = 3 * time.Second

// sinceOf reads the optional since of a task:subscribe whose arguments request
// accepted: a whole number from 0 to taskservice.MaxSince (null is no since).
func sinceOf(args []any) (*int64, *events.AckError) {
	m, _ := args[0].(map[string]any)
	v, ok := m["since"]
	if !ok || v == nil {
		return nil, nil
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case uint64:
		f = float64(n)
	case json.Number:
		g, err := n.Float64()
		if err != nil {
			return nil, badSinceType()
		}
		f = g
	default:
		return nil, badSinceType()
	}
	if f != math.Trunc(f) || f < 0 || f > taskservice.MaxSince {
		return nil, badSinceType()
	}
	n := int64(f)
	return &n, nil
}

func badSinceType() *events.AckError {
	return ackError("bad_request", fmt.Sprintf("since must be a whole number from 0 to %d: the seq of the last event the client has", int64(taskservice.MaxSince)))
}

func badSince(seq int64) *events.AckError {
	return ackError("bad_request", fmt.Sprintf("since is greater than the task's seq (%d): the client cannot have events the task never had", seq))
}

func (h *Handlers) unsubscribe(_ context.Context, s *socket.Socket, _ *auth.Principal, args []any) {
	id, ack, bad := request(args)
	if bad != nil {
		reply(ack, bad)
		return
	}
	s.Leave(socket.Room(events.TaskRoom(id)))
	reply(ack, events.SubscribeRequest{TaskID: id})
}

func (h *Handlers) cancel(ctx context.Context, _ *socket.Socket, p *auth.Principal, args []any) {
	id, ack, bad := request(args)
	if bad != nil {
		reply(ack, bad)
		return
	}
	identity, ok := owner(p, id)
	switch {
	case !ok:
		reply(ack, serviceError(taskservice.ErrNotFound))
		return
	case p.Kind == auth.KindViewer:
		reply(ack, ackError("forbidden", "a viewer token is read-only: it cannot cancel the task"))
		return
	}
	rec, _, err := h.Tasks.Cancel(ctx, identity, id)
	if err != nil {
		reply(ack, serviceError(err))
		return
	}
	reply(ack, rec)
}
