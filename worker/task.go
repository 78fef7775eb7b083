package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/worker/internal/progress"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// Why a task must stop, as returned by Task's methods and by context.Cause of
// the handler's context. A handler that gets one returns it (wrapped or not).
var (
	// ErrCancelled: the task's owner cancelled it.
	ErrCancelled = taskctx.ErrCancelRequested
	// ErrShutdown: the worker shuts down and its grace period is over; the task
	// goes back to the queue and runs again elsewhere.
	ErrShutdown = taskctx.ErrShutdown
	// ErrLeaseLost: another worker took the task over (this one missed its
	// lease); nothing this attempt writes counts any more.
	ErrLeaseLost = taskctx.ErrLeaseLost
	// ErrTimeout: the attempt ran past its kind's Timeout.
	ErrTimeout = runner.ErrTimeout
	// ErrTaskOver: the task ended meanwhile (or its record expired); this
	// attempt can only stop.
	ErrTaskOver = errors.New("worker: the task is over")
)

// Bounds that a call of Task broke. The task may go on; the call changed
// nothing.
var (
	// ErrMetadataTooLarge: the merged metadata would exceed 64 KiB as JSON.
	ErrMetadataTooLarge = progress.ErrMetadataTooLarge
	// ErrStreamItemsTooLarge: an item exceeds 64 KiB as JSON, or one call
	// appends more than 10,000 items.
	ErrStreamItemsTooLarge = progress.ErrStreamItemsTooLarge
	// ErrTooManyStreams: a task has at most 16 streams.
	ErrTooManyStreams = progress.ErrTooManyStreams
	// ErrInvalidName: stage and stream names are 1-64 of a-z, 0-9, '.', '-', '_'.
	ErrInvalidName = progress.ErrInvalidName
	// ErrNotJSON: a metadata value or stream item that encoding/json cannot
	// encode.
	ErrNotJSON = progress.ErrNotJSON
	// ErrResultTooLarge: the result exceeds the kind's size limit; returned by
	// ResultWriter.Write, it fails the task with "result_too_large".
	ErrResultTooLarge = store.ErrResultTooLarge
)

// Task is one attempt of one task, handed to the handler of its kind. Its
// methods publish what the task does to the browsers that follow it; each one
// writes the task's record and publishes the event in one step, so a browser
// that reconnects gets the same state from the record.
type Task struct {
	// ID is the task's id.
	ID string
	// Kind is the task's kind.
	Kind string
	// Attempt is the number of this attempt, from 1.
	Attempt int
	// Owner is the identity that started the task.
	Owner string

	rt *runner.Task
}

// Stage says that the task entered the stage id (a short name such as
// "render") and describes it to people with message ("Drawing page 3 of 12").
// Later progress events carry the stage. It returns an error only when the task
// must stop (ErrCancelled, ErrLeaseLost, ErrTaskOver) or id is not a valid
// name.
func (t *Task) Stage(ctx context.Context, id, message string) error {
	return stopError(t.rt.Stage(ctx, id, message))
}

// Progress says that done of total units of work are finished. Events are
// throttled (10 per second by default); the percent (which never goes back
// within an attempt) and the ETA are derived. It returns an error only when the
// task must stop: ErrCancelled, ErrLeaseLost or ErrTaskOver.
func (t *Task) Progress(ctx context.Context, done, total int64) error {
	return stopError(t.rt.Progress(ctx, done, total, ""))
}

// SetMetadata merges fields into the task's metadata (a field set to nil is
// removed); browsers get the whole merged object (task:metadata), throttled
// like progress. The merged object is at most 64 KiB as JSON: past it the call
// returns ErrMetadataTooLarge and changes nothing.
func (t *Task) SetMetadata(ctx context.Context, fields map[string]any) error {
	return stopError(t.rt.SetMetadata(ctx, fields))
}

// Append adds items to the task's stream named stream (logs, tokens, points of
// a chart): each item is any JSON value. Browsers get them in chunks
// (task:stream), throttled like progress, in order. The record keeps the last
// 10,000 items of each stream for browsers that (re)connect; older ones are
// dropped there. An item over 64 KiB returns ErrStreamItemsTooLarge.
func (t *Task) Append(ctx context.Context, stream string, items ...any) error {
	return stopError(t.rt.Append(ctx, stream, items...))
}

// CreateResult starts the task's result file: write it, Close it, and return
// FileResult(w). It is stored compressed in Redis and offered to the owner as a
// download named filename, of type contentType. Writes past the kind's size
// limit fail with ErrResultTooLarge. If the task does not complete, the file is
// dropped.
func (t *Task) CreateResult(ctx context.Context, filename, contentType string) (*ResultWriter, error) {
	sw, err := t.rt.NewResultWriter(ctx)
	if err != nil {
		return nil, stopError(err)
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if filename == "" {
		filename = t.Kind + "-" + t.ID
	}
	return &ResultWriter{w: sw, filename: filename, contentType: contentType}, nil
}

// stopError maps the internal reasons to stop onto this package's errors.
func stopError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrStale):
		// Both sentinels match, so the runner still sees what the record said.
		return fmt.Errorf("%w (%w)", ErrLeaseLost, err)
	case errors.Is(err, store.ErrFinal), errors.Is(err, store.ErrNotFound), errors.Is(err, progress.ErrFinished):
		return fmt.Errorf("%w (%w)", ErrTaskOver, err)
	}
	return err
}

// taskError is an error with a stable code, from Permanent or Transient.
type taskError struct {
	code      string
	transient bool
	err       error
}

func (e *taskError) Error() string { return e.err.Error() }
func (e *taskError) Unwrap() error { return e.err }

// Permanent marks err as a failure that a retry cannot fix: the task fails at
// once, with the error code code ("invalid_input", ...) and err's message.
func Permanent(code string, err error) error {
	return &taskError{code: code, err: err}
}

// Transient marks err as a failure that may go away: the task runs again after
// a back-off while it has attempts left, then fails with code. Errors a handler
// returns unmarked are transient, with the code "task_error".
func Transient(code string, err error) error {
	return &taskError{code: code, transient: true, err: err}
}
