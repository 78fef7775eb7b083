// Package taskctx gives every running task a context of its own that the worker
// can cancel: because the owner asked (a message on the cancel channel), because
// the worker shuts down, or because another worker took the task over.
//
// Machinery never cancels the context it hands to a task, so the worker keeps this
// registry next to it.
package taskctx

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/retry"
)

// Causes of cancellation, as returned by context.Cause.
var (
	// ErrCancelRequested means the owner of the task asked to cancel it.
	ErrCancelRequested = errors.New("taskctx: the owner cancelled the task")
	// ErrShutdown means the worker is shutting down and its grace period is over.
	ErrShutdown = errors.New("taskctx: the worker is shutting down")
	// ErrLeaseLost means another worker took the task over.
	ErrLeaseLost = errors.New("taskctx: another worker took the task over")
)

// Registry holds the cancel functions of the running tasks. It is safe for
// concurrent use.
type Registry struct {
	mu   sync.Mutex
	runs map[string]map[*run]struct{}
}

type run struct {
	cancel context.CancelCauseFunc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{runs: make(map[string]map[*run]struct{})}
}

// Start returns a context for one run of task id, derived from parent, that Cancel
// and CancelAll can cancel. The run must call stop when it ends; stop releases the
// context.
func (r *Registry) Start(parent context.Context, id string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	e := &run{cancel: cancel}
	r.mu.Lock()
	set := r.runs[id]
	if set == nil {
		set = make(map[*run]struct{}, 1)
		r.runs[id] = set
	}
	set[e] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.runs[id], e)
		if len(r.runs[id]) == 0 {
			delete(r.runs, id)
		}
		r.mu.Unlock()
		cancel(context.Canceled)
	}
}

// Cancel cancels every run of task id with cause. It reports whether one was
// running here.
func (r *Registry) Cancel(id string, cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.runs[id]
	for e := range set {
		e.cancel(cause)
	}
	return len(set) > 0
}

// CancelAll cancels every run with cause and returns how many there were.
func (r *Registry) CancelAll(cause error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, set := range r.runs {
		for e := range set {
			e.cancel(cause)
			n++
		}
	}
	return n
}

// Len returns the number of running tasks.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, set := range r.runs {
		n += len(set)
	}
	return n
}

// Listen cancels, with ErrCancelRequested, the tasks whose ids are published on
// channel, until ctx is done. The subscription survives Redis restarts (the client
// subscribes again); messages published while it was down are lost, which is why
// the worker also reads the cancel request from the task record with every
// progress write. ready, when not nil, is closed once the first subscription is
// confirmed.
func Listen(ctx context.Context, rdb redis.UniversalClient, channel string, r *Registry, log *slog.Logger, ready chan<- struct{}) {
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	handle := func(m *redis.Message) {
		id := m.Payload
		if !tasks.ValidID(id) {
			log.Warn("ignoring a malformed message on the cancel channel", "channel", channel, "payload", truncate(id, 64))
			return
		}
		if r.Cancel(id, ErrCancelRequested) {
			log.Info("cancel requested", "task", id)
		}
	}
	// Wait for the confirmation of the subscription, retrying while Redis is away.
	var b retry.Backoff
	for {
		v, err := ps.Receive(ctx)
		if err == nil {
			if m, ok := v.(*redis.Message); ok {
				handle(m)
			}
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("cannot subscribe to the cancel channel yet", "err", err)
		if !retry.Sleep(ctx, nil, b.Next()) {
			return
		}
	}
	if ready != nil {
		close(ready)
	}
	ch := ps.Channel(redis.WithChannelSize(256))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			handle(m)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
