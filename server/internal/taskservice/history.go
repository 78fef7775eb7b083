package taskservice

import (
	"context"
	"errors"
	"fmt"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrBadSince: the seq a client resumes from is ahead of the task's seq.
var ErrBadSince = errors.New("taskservice: since is greater than the task's seq")

// MaxSince is the greatest since accepted (2^53 - 1, the greatest whole number
// a JavaScript number holds exactly).
const MaxSince = 1<<53 - 1

// HistoryPage is the answer of History: the task's record and its events after
// since.
type HistoryPage struct {
	// Record is the task as it was when the events were read (with its queue
	// position).
	Record *tasks.Record
	// Events are the events after since, oldest first, when Recovered.
	Events []events.HistoryEvent
	// Recovered is false when some events after since are no longer kept
	// (Reason says why): Record alone is then authoritative.
	Recovered bool
	Reason    events.Reason
	// Next, when not 0, is the seq of the last event of Events: more follow.
	Next int64
}

// History returns the record of task id of owner and the events of its history
// after seq since, at most limit of them (see store.ReadHistory for the bounds),
// read in one step. It returns ErrBadSince when since is greater than the task's
// seq, ErrNotFound for a task of someone else or none; since must be from 0 to
// MaxSince (the caller checks).
func (s *Service) History(ctx context.Context, owner, id string, since int64, limit int) (*HistoryPage, error) {
	if since < 0 || since > MaxSince {
		return nil, fmt.Errorf("%w: since %d", ErrBadSince, since)
	}
	if !tasks.ValidID(id) {
		return nil, ErrNotFound
	}
	h, err := s.store.ReadHistory(ctx, id, since, limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case errors.Is(err, store.ErrSinceAhead):
		if owner != Anyone && h.Record.Owner != owner {
			return nil, ErrNotFound
		}
		return nil, ErrBadSince
	case err != nil:
		s.log.ErrorContext(ctx, "read history", "task", id, "err", err)
		return nil, ErrUnavailable
	}
	if owner != Anyone && h.Record.Owner != owner {
		return nil, ErrNotFound
	}
	s.fillQueuePositions(ctx, []*tasks.Record{h.Record})
	return &HistoryPage{Record: h.Record, Events: h.Events, Recovered: h.Recovered, Reason: h.Reason, Next: h.Next}, nil
}
