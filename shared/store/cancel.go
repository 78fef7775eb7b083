package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrRunning is returned by CancelQueued when the task is already running; the
// caller then asks the worker to stop it with RequestCancel.
var ErrRunning = errors.New("store: task is running")

// CancelQueued cancels task id if it is still queued: the record becomes cancelled
// and the messages that event sets in the update (Publish, Event, Inbox; its Seq
// is the sequence number they carry, rec the record before the change) are
// published in the same script. The id is also published on the cancel channel, in case a
// worker picked the task up at that very moment. It returns the record as it is
// afterwards, with ErrFinal when the task had already finished, or ErrRunning.
func (s *Store) CancelQueued(ctx context.Context, id string, now time.Time, event func(rec *tasks.Record, u *Update) error) (*tasks.Record, error) {
	for range 10 {
		rec, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case rec.State.Final():
			return rec, ErrFinal
		case rec.State != tasks.StateQueued:
			return rec, ErrRunning
		}
		u := &Update{
			TaskID:       id,
			Seq:          rec.Seq + 1,
			RequireState: tasks.StateQueued,
			Fields: map[string]any{
				tasks.FieldState:      string(tasks.StateCancelled),
				tasks.FieldFinishedAt: now.UnixMilli(),
			},
		}
		if err := event(rec, u); err != nil {
			return nil, fmt.Errorf("store: cancel %s: %w", id, err)
		}
		err = s.Apply(ctx, u)
		if errors.Is(err, ErrStale) || errors.Is(err, ErrFinal) {
			continue // the record moved on; look again
		}
		if err != nil {
			return nil, err
		}
		_ = s.rdb.Publish(ctx, s.keys.CancelChannel(), id).Err()
		return s.Get(ctx, id)
	}
	return nil, fmt.Errorf("store: cancel %s: record keeps changing", id)
}

// requestCancelScript sets the cancel request of a task that is not final and
// publishes its id on the cancel channel. It returns the record, or -1 / -2.
var requestCancelScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'completed' or st == 'failed' or st == 'cancelled' then return -2 end
redis.call('HSET', KEYS[1], 'cancelRequested', '1')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
`)

// RequestCancel asks the worker that runs task id to stop it: the record's
// cancelRequested field is set (a worker checks it with every progress write) and
// the id is published on the cancel channel (the worker cancels the task's context
// at once). The worker then publishes task:cancelled. It returns the record, or
// ErrNotFound / ErrFinal.
func (s *Store) RequestCancel(ctx context.Context, id string) (*tasks.Record, error) {
	v, err := requestCancelScript.Run(ctx, s.rdb, []string{s.keys.Task(id)}, s.keys.CancelChannel(), id).Result()
	if err != nil {
		return nil, fmt.Errorf("store: request cancel %s: %w", id, err)
	}
	if n, ok := v.(int64); ok {
		return nil, resultCode(int(n))
	}
	return recordFromReply(v)
}
