package socketapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// received handles task:received {taskId, seq}: a socket of the task's owner
// has its final event. The first confirmation sets the record's deliveredAt;
// the ack is events.ReceivedAck. A viewer is not the owner: its sockets do
// not count, and it is answered "forbidden".
func (h *Handlers) received(ctx context.Context, _ *socket.Socket, p *auth.Principal, args []any) {
	args, ack := splitAck(args)
	const shape = "{taskId: string, seq: integer}"
	m, bad := object(args, shape)
	if bad != nil {
		reply(ack, bad)
		return
	}
	id, ok := m["taskId"].(string)
	if !ok || id == "" {
		reply(ack, ackError("bad_request", "taskId must be a non-empty string: "+shape))
		return
	}
	seq, ok := wholeNumber(m["seq"])
	if !ok {
		reply(ack, ackError("bad_request", "seq must be a whole number from 0 (the seq of the task's final event): "+shape))
		return
	}
	if p.Kind == auth.KindViewer {
		reply(ack, ackError("forbidden", "a viewer token is not the task's owner: only the owner's sockets confirm delivery"))
		return
	}
	rec, err := h.Tasks.Received(ctx, p.Identity, id, seq)
	var se *taskservice.SeqError
	switch {
	case errors.As(err, &se):
		reply(ack, ackError("bad_request", fmt.Sprintf("seq %d is not the seq of the task's final event (%d)", se.Seq, se.Final)))
	case err != nil:
		reply(ack, serviceError(err))
	default:
		reply(ack, rec)
	}
}

// inboxAck handles inbox:ack {taskIds: [...]}: the items are marked seen, all
// or none; the ack is events.InboxAckReply. Viewers have no inbox.
func (h *Handlers) inboxAck(ctx context.Context, _ *socket.Socket, p *auth.Principal, args []any) {
	args, ack := splitAck(args)
	const shape = "{taskIds: [task id, ...]}"
	m, bad := object(args, shape)
	if bad != nil {
		reply(ack, bad)
		return
	}
	list, ok := m["taskIds"].([]any)
	if !ok {
		reply(ack, ackError("bad_request", "taskIds must be a list of 1 to "+strconv.Itoa(taskservice.MaxInboxAck)+" task ids: "+shape))
		return
	}
	ids := make([]string, len(list))
	for i, v := range list {
		if ids[i], ok = v.(string); !ok {
			reply(ack, ackError("bad_request", fmt.Sprintf("taskIds[%d] must be a string (a task id)", i)))
			return
		}
	}
	if p.Kind == auth.KindViewer {
		reply(ack, ackError("forbidden", "a viewer token follows one task: it has no inbox"))
		return
	}
	acked, err := h.Tasks.AckInbox(ctx, p.Identity, ids)
	var (
		ve *tasks.ValidationError
		ie *taskservice.IDError
	)
	switch {
	case errors.As(err, &ve):
		reply(ack, ackError("bad_request", ve.Error()))
	case errors.As(err, &ie) && errors.Is(err, taskservice.ErrNotFinal):
		reply(ack, ackError("not_finished", "task "+ie.ID+" has not finished: it has no inbox item; nothing was marked seen"))
	case errors.As(err, &ie):
		reply(ack, ackError("not_found", "no such task: "+ie.ID+"; nothing was marked seen"))
	case err != nil:
		reply(ack, serviceError(err))
	default:
		reply(ack, events.InboxAckReply{TaskIDs: acked})
	}
}

// wholeNumber reads a whole number from 0 to 2^53 as the JSON and msgpack
// decoders deliver it.
func wholeNumber(v any) (int64, bool) {
	const limit = 1 << 53
	switch n := v.(type) {
	case float64:
		if n != math.Trunc(n) || n < 0 || n > limit {
			return 0, false
		}
		return int64(n), true
	case int64:
		return n, n >= 0 && n <= limit
	case int:
		return int64(n), n >= 0 && n <= limit
	case int32:
		return int64(n), n >= 0
	case uint64:
		return int64(n), n <= limit
	case uint32:
		return int64(n), true
	}
	return 0, false
}
