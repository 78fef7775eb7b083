package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/worker"
)

// Kind is the kind's name.
const Kind = "report"

// ContentType is the media type of a report.
const ContentType = "application/pdf"

// Options tune the kind.
type Options struct {
	// Pace pauses after each country of the query and each page of the
	// rendering, so that a demonstration shows a report being made (and lets
	// a person cancel it); 0, the default, runs at full speed.
	Pace time.Duration
	// Now returns the creation date written in the PDFs; nil means time.Now.
	Now func() time.Time
}

// Register registers the kind with w.
func Register(w *worker.Worker, opts Options) {
	worker.Handle(w, Kind, func(ctx context.Context, t *worker.Task, p Params) (*worker.Result, error) {
		return run(ctx, t, p, opts)
	},
		worker.Title("PDF report"),
		worker.Description("Aggregates generated orders by country and month into a multi-page PDF: key figures, a bar chart and a table."),
	)
}

// Filename returns the name of the PDF of task id.
func Filename(id string) string { return "report-" + id + ".pdf" }

func run(ctx context.Context, t *worker.Task, p Params, opts Options) (*worker.Result, error) {
	if err := p.Validate(); err != nil {
		return nil, worker.Permanent("invalid_params", err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := t.SetMetadata(ctx, map[string]any{"pages": p.Pages(), "rows": p.Rows()}); err != nil {
		return nil, err
	}
	out, err := t.CreateResult(ctx, Filename(t.ID), ContentType)
	if err != nil {
		return nil, err
	}
	var total int64
	sum, err := Build(ctx, p, BuildOptions{
		Seed:    t.ID,
		Created: now().UTC().Truncate(time.Second),
		Pace:    opts.Pace,
		Stage:   t.Stage,
		Progress: func(ctx context.Context, done, tot int64) error {
			total = tot
			if done == tot {
				// The last event waits until the file is stored.
				return nil
			}
			return t.Progress(ctx, done, tot)
		},
	}, out)
	if err == nil {
		err = out.Close()
	}
	if err == nil && (sum.Pages != p.Pages() || sum.Rows != p.Rows()) {
		// Build keeps to the plan announced in the metadata; say so if it did not.
		err = t.SetMetadata(ctx, map[string]any{"pages": sum.Pages, "rows": sum.Rows})
	}
	if err == nil {
		err = t.Progress(ctx, total, total)
	}
	if err != nil {
		if errors.Is(err, worker.ErrResultTooLarge) {
			return nil, worker.Permanent("result_too_large",
				fmt.Errorf("the report of %d pages is larger than the result size limit", p.Pages()))
		}
		return nil, err
	}
	return worker.FileResult(out), nil
}
