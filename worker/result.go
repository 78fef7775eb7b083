package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/runner"
)

// ResultWriter writes a task's result file; Task.CreateResult makes one. It is
// an io.WriteCloser.
type ResultWriter struct {
	w           *store.ResultWriter
	filename    string
	contentType string
	closed      bool
	err         error
}

// Write appends p to the result. Past the kind's size limit it returns
// ErrResultTooLarge.
func (w *ResultWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("worker: write to a closed result")
	}
	return w.w.Write(p)
}

// Close finishes the file. The result becomes the task's when the handler
// returns FileResult(w).
func (w *ResultWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	w.err = w.w.Close()
	return w.err
}

// Size returns the bytes written so far.
func (w *ResultWriter) Size() int64 { return w.w.Size() }

// Result is what a completed task leaves to its owner: a file (FileResult) or
// a JSON value (JSONResult).
type Result struct {
	file  *ResultWriter
	value any
	json  bool
}

// FileResult makes the file written to w the task's result (call it after
// w.Close; an unclosed writer is closed).
func FileResult(w *ResultWriter) *Result { return &Result{file: w} }

// JSONResult makes v, encoded as JSON, the task's result: browsers get the
// value itself with task:completed (up to 256 KiB; a larger value is offered as
// a download only).
func JSONResult(v any) *Result { return &Result{value: v, json: true} }

// ResultURL is where the owner downloads the result of task id, relative to the
// server.
func ResultURL(id string) string { return "/api/v1/tasks/" + id + "/result" }

// finish turns r into the record's result.
func (r *Result) finish(ctx context.Context, t *Task) (*tasks.Result, error) {
	switch {
	case r.file != nil:
		w := r.file
		if err := w.Close(); err != nil {
			return nil, discard(ctx, w, err)
		}
		return &tasks.Result{URL: ResultURL(t.ID), Bytes: w.Size(), ContentType: w.contentType, Filename: w.filename}, nil
	case r.json:
		b, err := json.Marshal(r.value)
		if err != nil {
			return nil, runner.Permanent(runner.CodeInternal, fmt.Errorf("the result is not JSON: %v", err))
		}
		if limit := t.rt.ResultMaxBytes(); limit > 0 && int64(len(b)) > limit {
			return nil, runner.Permanent(runner.CodeResultTooLarge,
				fmt.Errorf("the result is %d bytes as JSON, over the limit of %d", len(b), limit))
		}
		res := &tasks.Result{URL: ResultURL(t.ID), Bytes: int64(len(b)), ContentType: "application/json",
			Filename: t.Kind + "-" + t.ID + ".json"}
		if len(b) <= tasks.MaxResultValueBytes {
			res.Value = b
			return res, nil
		}
		// Too large for the record: stored as a file.
		w, err := t.CreateResult(ctx, res.Filename, res.ContentType)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(b); err != nil {
			return nil, discard(ctx, w, err)
		}
		if err := w.Close(); err != nil {
			return nil, discard(ctx, w, err)
		}
		return res, nil
	}
	return nil, runner.Permanent(runner.CodeInternal, errors.New("empty result (use FileResult or JSONResult)"))
}

// discard drops a result that cannot be stored and returns the error to fail
// the attempt with.
func discard(ctx context.Context, w *ResultWriter, err error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = w.w.Abort(actx) // the temporary key also expires on its own
	if errors.Is(err, store.ErrResultTooLarge) {
		return runner.Permanent(runner.CodeResultTooLarge, err)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return runner.Transient("storage_unavailable", fmt.Errorf("storing the result: %w", err))
}
