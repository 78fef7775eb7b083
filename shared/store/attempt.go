package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrExhausted is returned by StartAttemptLimit when the task has used all its
// attempts; no attempt was started.
var ErrExhausted = errors.New("store: task has no attempts left")

// StartAttemptLimit is StartAttempt for a task that may run at most a bounded number
// of times: the record's MaxAttempts, or limit when the record has none (0 or less:
// no bound). When the record's Attempts already reached the bound it changes nothing
// and returns ErrExhausted; the caller then fails the task.
func (s *Store) StartAttemptLimit(ctx context.Context, id string, now time.Time, limit int) (*tasks.Record, error) {
	v, err := startScript.Run(ctx, s.rdb, []string{s.keys.Task(id)}, now.UnixMilli(), s.ttl.Milliseconds(), limit).Result()
	if err != nil {
		return nil, fmt.Errorf("store: start %s: %w", id, err)
	}
	if n, ok := v.(int64); ok {
		if n == -6 {
			return nil, ErrExhausted
		}
		return nil, resultCode(int(n))
	}
	return recordFromReply(v)
}

// ApplyChecked is Apply that also reports whether the owner has asked to cancel the
// task (the record's cancelRequested field, see RequestCancel), read in the same
// script after the update. A worker calls it for every progress write, so a lost
// message on the cancel channel delays a cancellation by one progress step at most.
func (s *Store) ApplyChecked(ctx context.Context, u *Update) (cancelRequested bool, err error) {
	n, err := s.apply(ctx, u)
	return n == 2, err
}
