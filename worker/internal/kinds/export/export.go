// Package export is taskwire's "export" kind: a CSV file of generated orders,
// written only with the public worker SDK.
package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/export"
)

// Kind is the kind's name.
const Kind = "export"

// Stage is the stage of a running export.
const Stage = "exporting"

// ContentType is the media type of an export.
const ContentType = "text/csv; charset=utf-8"

// Params are the parameters of an export.
type Params struct {
	// Rows is the number of data rows of the CSV file, header not included.
	Rows int `json:"rows" jsonschema:"minimum=1,maximum=1000000,default=200000,title=Rows,description=Number of order rows in the CSV file"`
}

// Options tune the kind.
type Options struct {
	// RowDelay slows every row down, so that a demonstration or a test can watch
	// (and cancel) a small export; 0 runs at full speed.
	RowDelay time.Duration
}

// Register registers the kind with w.
func Register(w *worker.Worker, opts Options) {
	worker.Handle(w, Kind, func(ctx context.Context, t *worker.Task, p Params) (*worker.Result, error) {
		return run(ctx, t, p, opts)
	},
		worker.Title("CSV export"),
		worker.Description("Exports generated orders as a CSV file, reporting progress as rows are written."),
		worker.TotalParam("rows"),
	)
}

func run(ctx context.Context, t *worker.Task, p Params, opts Options) (*worker.Result, error) {
	if err := t.Stage(ctx, Stage, fmt.Sprintf("Writing %d rows", p.Rows)); err != nil {
		return nil, err
	}
	out, err := t.CreateResult(ctx, "orders-"+t.ID+".csv", ContentType)
	if err != nil {
		return nil, err
	}
	total := int64(p.Rows)
	_, err = export.Write(ctx, out, t.ID, p.Rows, export.Options{
		RowDelay: opts.RowDelay,
		Progress: func(ctx context.Context, done int64) error {
			if done == total {
				// The last event waits until the file is stored.
				return nil
			}
			return t.Progress(ctx, done, total)
		},
	})
	if err == nil {
		err = out.Close()
	}
	if err == nil {
		err = t.Progress(ctx, total, total)
	}
	if err != nil {
		if errors.Is(err, worker.ErrResultTooLarge) {
			return nil, worker.Permanent("result_too_large",
				fmt.Errorf("the export of %d rows is larger than the result size limit", p.Rows))
		}
		return nil, err
	}
	return worker.FileResult(out), nil
}
