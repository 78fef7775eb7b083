package progress

import (
	"context"
	"time"

	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/tasks"
)

// notifyTimeout bounds the publish of one operator notification.
const notifyTimeout = 2 * time.Second

// notify tells the operator sockets (operator.Namespace, on every server) that
// task id changed state. It is best effort and does not wait: the record and
// the task's own event are already written.
func (p *Publisher) notify(id string, attempt int, fields map[string]any) {
	state, _ := fields[tasks.FieldState].(string)
	if state == "" {
		return
	}
	code, _ := fields[tasks.FieldErrorCode].(string)
	change := operator.TaskChange{TaskID: id, State: state, Attempt: attempt, ErrorCode: code, At: p.now().UTC()}
	em := p.em.Of(operator.Namespace)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		if err := em.Emit(ctx, operator.EventTask, change); err != nil {
			p.log.Debug("operator notification not sent", "task", id, "err", err)
		}
	}()
}
