package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/export"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// The tests of this package run the runner with the export written against
// the runner's own Task (the production one is written against the public SDK,
// which this package cannot import): a real CSV in Redis, progress as rows are
// generated.

// Error codes of export failures.
const (
	CodeResultTooLarge = "result_too_large"
	CodeInvalidParams  = "invalid_params"
	CodeStorage        = "storage_unavailable"
)

// Stage is the progress stage of a running export.
const Stage = "exporting"

// ContentType is the media type of an export.
const ContentType = "text/csv; charset=utf-8"

// HandlerOptions configure the export handler.
type HandlerOptions struct {
	// MaxBytes bounds the size of the CSV file (0: no bound).
	MaxBytes int64
	// RowDelay slows every row down (see Options.RowDelay); for tests and demos.
	RowDelay time.Duration
}

// ResultURL is where the owner downloads the result of task id.
func ResultURL(id string) string { return "/api/v1/tasks/" + id + "/result" }

// NewExportHandler returns the handler of the export task: it writes the CSV through a
// store.ResultWriter (gzip chunks in Redis, moved into place when the task
// completes, discarded otherwise) and reports progress as rows are generated.
func NewExportHandler(st *store.Store, opts HandlerOptions) runner.Handler {
	return func(ctx context.Context, t *runner.Task) (*tasks.Result, error) {
		var p tasks.ExportParams
		if err := tasks.DecodeStrict(t.Params, &p, "params"); err != nil {
			return nil, runner.Permanent(CodeInvalidParams, err)
		}
		if err := p.Validate(); err != nil {
			return nil, runner.Permanent(CodeInvalidParams, err)
		}
		w, err := st.NewResultWriter(ctx, t.ID, t.Attempt, opts.MaxBytes)
		if err != nil {
			return nil, storageError(ctx, err)
		}
		total := int64(p.Rows)
		_, err = export.Write(ctx, w, t.ID, p.Rows, export.Options{
			RowDelay: opts.RowDelay,
			Progress: func(ctx context.Context, done int64) error {
				if done == total {
					// The last event waits until the file is stored.
					return nil
				}
				return t.Progress(ctx, done, total, Stage)
			},
		})
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			err = t.Progress(ctx, total, total, Stage)
		}
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = w.Abort(actx) // the temporary key also expires on its own
			if errors.Is(err, store.ErrResultTooLarge) {
				return nil, runner.Permanent(CodeResultTooLarge,
					fmt.Errorf("the export of %d rows is larger than the limit of %d bytes", p.Rows, opts.MaxBytes))
			}
			return nil, storageError(ctx, err)
		}
		return &tasks.Result{
			URL:         ResultURL(t.ID),
			Rows:        total,
			Bytes:       w.Size(),
			ContentType: ContentType,
			Filename:    "orders-" + t.ID + ".csv",
		}, nil
	}
}

// storageError returns err as it is when the task was stopped (cancelled, lost)
// and as a transient storage failure otherwise.
func storageError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var re *runner.Error
	if errors.As(err, &re) || errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrFinal) || errors.Is(err, store.ErrNotFound) {
		return err
	}
	if errors.Is(err, taskctx.ErrCancelRequested) {
		return err
	}
	return runner.Transient(CodeStorage, fmt.Errorf("storing the result: %w", err))
}
