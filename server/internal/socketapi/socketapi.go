// Package socketapi handles the events browsers send over Socket.IO:
// task:subscribe (follow a task and get its snapshot), task:unsubscribe and
// task:cancel. Each answers through the acknowledgement callback, with either the
// task record (a task:state snapshot) or {"error":{"code","message"}}.
package socketapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/taskctl"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// requestTimeout bounds the work done for one socket event.
const requestTimeout = 5 * time.Second

// Handlers registers the task events on every new socket.
type Handlers struct {
	Tasks  *taskctl.Service
	Logger *slog.Logger
}

// Register attaches the event handlers to s, whose identity is identity. It has the
// signature of realtime.Config.OnConnection.
//
// It adds one catch-all listener rather than one per event: a listener per
// event name costs a map entry and a list on every socket, for its whole life.
func (h *Handlers) Register(s *socket.Socket, identity string) {
	s.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		var handle func(*socket.Socket, string, []any)
		switch name, _ := args[0].(string); name {
		case events.TaskSubscribe:
			handle = h.subscribe
		case events.TaskUnsubscribe:
			handle = h.unsubscribe
		case events.TaskCancel:
			handle = h.cancel
		default:
			return
		}
		// Catch-all listeners run on the socket's reading path: the work
		// (Redis round trips) goes on a goroutine of its own, as Socket.IO
		// does for ordinary listeners.
		go handle(s, identity, args[1:])
	})
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
		if errors.Is(err, taskctl.ErrNotFound) {
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

// request splits the arguments of an event into the task id and the ack callback.
func request(args []any) (taskID string, ack socket.Ack, err *events.AckError) {
	if n := len(args); n > 0 {
		if f, ok := args[n-1].(socket.Ack); ok {
			ack, args = f, args[:n-1]
		} else if f, ok := args[n-1].(func([]any, error)); ok {
			ack, args = f, args[:n-1]
		}
	}
	if len(args) != 1 {
		return "", ack, ackError("bad_request", "expected one argument: {taskId: string}")
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return "", ack, ackError("bad_request", "expected an object: {taskId: string}")
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
	case errors.Is(err, taskctl.ErrNotFound):
		return ackError("not_found", "no such task")
	case errors.Is(err, taskctl.ErrFinished):
		return ackError("task_finished", "the task already finished and cannot be cancelled")
	case errors.Is(err, taskctl.ErrUnavailable):
		return ackError("unavailable", "the task store is unavailable; try again")
	}
	return ackError("internal", "internal error")
}

func reply(ack socket.Ack, v any) {
	if ack != nil {
		ack([]any{v}, nil)
	}
}

func (h *Handlers) subscribe(s *socket.Socket, identity string, args []any) {
	id, ack, bad := request(args)
	if bad != nil {
		reply(ack, bad)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if _, err := h.Tasks.Get(ctx, identity, id); err != nil {
		reply(ack, serviceError(err))
		return
	}
	// Join first, then read the snapshot: every event published after the read
	// carries a greater seq and reaches the socket; anything older is in the
	// snapshot.
	s.Join(socket.Room(events.TaskRoom(id)))
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
}

func (h *Handlers) unsubscribe(s *socket.Socket, _ string, args []any) {
	id, ack, bad := request(args)
	if bad != nil {
		reply(ack, bad)
		return
	}
	s.Leave(socket.Room(events.TaskRoom(id)))
	reply(ack, events.SubscribeRequest{TaskID: id})
}

func (h *Handlers) cancel(_ *socket.Socket, identity string, args []any) {
	id, ack, bad := request(args)
	if bad != nil {
		reply(ack, bad)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	rec, _, err := h.Tasks.Cancel(ctx, identity, id)
	if err != nil {
		reply(ack, serviceError(err))
		return
	}
	reply(ack, rec)
}
