package taskservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// Errors of the inbox and the delivery receipts.
var (
	// ErrNotFinal: the task has not finished, so it has no inbox item and no
	// final event to confirm.
	ErrNotFinal = errors.New("taskservice: task has not finished")
)

// MaxInboxAck is the most task ids one inbox ack may name.
const MaxInboxAck = store.MaxInboxAck

// SeqError says that a delivery confirmation named a seq other than the one
// of the task's final event.
type SeqError = store.SeqError

// IDError names the task id that refused a whole inbox ack; it matches
// ErrNotFound or ErrNotFinal.
type IDError struct {
	ID  string
	Err error
}

func (e *IDError) Error() string { return e.Err.Error() + ": " + e.ID }

// Unwrap returns ErrNotFound or ErrNotFinal.
func (e *IDError) Unwrap() error { return e.Err }

// Inbox returns owner's unseen finished tasks, newest first (at most the
// store's RecentLimit).
func (s *Service) Inbox(ctx context.Context, owner string) ([]events.InboxEntry, error) {
	list, err := s.store.ListInbox(ctx, owner, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "list inbox", "err", err)
		return nil, ErrUnavailable
	}
	return list, nil
}

// CheckInboxIDs checks the task ids of an inbox ack: 1 to MaxInboxAck task
// ids. It returns a *tasks.ValidationError that says what is wrong.
func CheckInboxIDs(ids []string) error {
	switch {
	case len(ids) == 0:
		return &tasks.ValidationError{Field: "taskIds", Message: "must name at least one task id"}
	case len(ids) > MaxInboxAck:
		return &tasks.ValidationError{Field: "taskIds", Message: fmt.Sprintf("names %d task ids; at most %d at once", len(ids), MaxInboxAck)}
	}
	for i, id := range ids {
		if !tasks.ValidID(id) {
			return &tasks.ValidationError{Field: fmt.Sprintf("taskIds[%d]", i), Message: "is not a task id (22 letters, digits, '-' or '_')"}
		}
	}
	return nil
}

// AckInbox marks the inbox items of ids seen for owner, all or none: the
// records get seenAt (the first ack's time) and leave the inbox. It returns
// the ids, each once. Ids that CheckInboxIDs refuses give its
// *tasks.ValidationError; an id that is not a finished task of owner gives an
// *IDError (ErrNotFound, ErrNotFinal), and nothing is changed.
func (s *Service) AckInbox(ctx context.Context, owner string, ids []string) ([]string, error) {
	if err := CheckInboxIDs(ids); err != nil {
		return nil, err
	}
	acked, err := s.store.AckInbox(ctx, owner, ids, s.now())
	var ie *store.IDError
	switch {
	case err == nil:
		return acked, nil
	case errors.As(err, &ie) && errors.Is(err, store.ErrNotFinished):
		return nil, &IDError{ID: ie.ID, Err: ErrNotFinal}
	case errors.As(err, &ie):
		return nil, &IDError{ID: ie.ID, Err: ErrNotFound}
	}
	s.log.ErrorContext(ctx, "ack inbox", "err", err)
	return nil, ErrUnavailable
}

// Received records that a socket of owner has the final event of task id,
// whose seq is seq: the first time, the record's deliveredAt is set and
// Config.OnDelivered is told how long after the finish that was. It returns
// the task's deliveredAt. A task that is not owner's is ErrNotFound, one not
// finished ErrNotFinal, another seq a *SeqError.
func (s *Service) Received(ctx context.Context, owner, id string, seq int64) (*events.ReceivedAck, error) {
	if !tasks.ValidID(id) {
		return nil, ErrNotFound
	}
	d, err := s.store.MarkDelivered(ctx, owner, id, seq, s.now())
	var se *store.SeqError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case errors.Is(err, store.ErrNotFinished):
		return nil, ErrNotFinal
	case errors.As(err, &se):
		return nil, se
	case err != nil:
		s.log.ErrorContext(ctx, "mark delivered", "task", id, "err", err)
		return nil, ErrUnavailable
	}
	if d.First && s.onDelivered != nil && !d.FinishedAt.IsZero() {
		s.onDelivered(max(d.At.Sub(d.FinishedAt), 0))
	}
	return &events.ReceivedAck{TaskID: id, DeliveredAt: d.At}, nil
}

// DefaultSweepInterval is how often SweepUndelivered runs by default.
const DefaultSweepInterval = time.Minute

// SweepUndelivered counts, every interval until ctx is done, the finished
// tasks whose final event no socket of their owner confirmed within the TTL,
// and tells count how many there were each time (not when 0). Every server
// replica may run it: each task is counted by exactly one.
func (s *Service) SweepUndelivered(ctx context.Context, interval time.Duration, count func(n int)) {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := s.store.SweepUndelivered(sctx, s.now())
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "sweep undelivered tasks", "err", err)
			}
			continue
		}
		if n > 0 {
			count(n)
		}
	}
}
