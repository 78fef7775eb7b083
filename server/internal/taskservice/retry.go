package taskservice

import (
	"context"
	"errors"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrNotFailed is returned by Retry for a task that is not failed.
var ErrNotFailed = errors.New("taskservice: task is not failed")

// Retry runs failed task id again, for an operator: its record goes back to
// queued (error, end and progress cleared; retries + 1; the owner's followers
// get task:state) and a new message goes on its kind's queue. Attempts keep
// counting every run: maxAttempts grows to attempts + the task's first
// maxAttempts, so a retried task gets as many runs as a new one. It returns
// ErrNotFound, ErrNotFailed, or ErrUnavailable when Redis fails (a task whose
// message could not be queued is failed again with enqueue_failed).
func (s *Service) Retry(ctx context.Context, id string) (*tasks.Record, error) {
	rec, err := s.store.Retry(ctx, id, s.now(), s.maxAttempts)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case errors.Is(err, store.ErrNotFailed):
		return rec, ErrNotFailed
	case err != nil:
		s.log.ErrorContext(ctx, "retry task", "task", id, "err", err)
		return nil, ErrUnavailable
	}
	if m, err := s.events.To(events.TaskRoom(id)).Encode(events.TaskState, rec); err == nil {
		rdb := s.store.Client()
		if m.Sharded {
			err = rdb.SPublish(ctx, m.Channel, m.Payload).Err()
		} else {
			err = rdb.Publish(ctx, m.Channel, m.Payload).Err()
		}
		if err != nil {
			s.log.WarnContext(ctx, "retry: task:state not published", "task", id, "err", err)
		}
	}
	msg := &tasks.Message{ID: rec.ID, Kind: rec.Kind, Params: rec.Params, Owner: rec.Owner, EnqueuedAt: s.now().UTC()}
	if err := s.store.Enqueue(ctx, msg); err != nil {
		s.log.ErrorContext(ctx, "retry: enqueue task", "task", id, "err", err)
		s.failUnqueued(rec)
		return nil, ErrUnavailable
	}
	s.changed(rec, tasks.StateQueued)
	return rec, nil
}

// changed tells OnChange that the service moved rec to state.
func (s *Service) changed(rec *tasks.Record, state tasks.State) {
	if s.onChange != nil {
		s.onChange(operator.TaskChange{TaskID: rec.ID, Kind: string(rec.Kind), State: string(state), At: s.now().UTC()})
	}
}
