package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// TaskRecord is the record of a task as the servers keep it: its state,
// progress, result or error, and, once it finished, DeliveredAt (when a page
// of its owner first confirmed that it had the final event) and SeenAt (when
// the owner first marked its inbox item seen).
type TaskRecord = tasks.Record

// ErrNoTask: no task has that id (or its record expired).
var ErrNoTask = errors.New("worker: no such task")

// TaskRecord reads the record of task id, of any kind and any owner: for
// example to learn, some time after a task finished, whether its owner got
// the outcome (DeliveredAt) and looked at it (SeenAt). It returns ErrNoTask
// when there is no such task. It may be called before, during and after Run;
// the worker keeps one Redis connection pool for these reads.
func (w *Worker) TaskRecord(ctx context.Context, id string) (*TaskRecord, error) {
	if !tasks.ValidID(id) {
		return nil, ErrNoTask
	}
	w.readOnce.Do(func() {
		ropts := *w.cfg.Redis
		if ropts.ClientName == "" {
			ropts.ClientName = "taskwire-worker"
		}
		ropts.PoolSize = 2
		w.reads = store.New(redis.NewClient(&ropts), &store.Options{Prefix: w.cfg.Prefix, TTL: w.cfg.TaskTTL})
	})
	rec, err := w.reads.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNoTask
	case err != nil:
		return nil, fmt.Errorf("worker: read task %s: %w", id, err)
	}
	return rec, nil
}
