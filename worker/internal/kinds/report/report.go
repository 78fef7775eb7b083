// Package report is taskwire's "report" kind: a multi-page PDF report of orders
// by country, written only with the public worker SDK.
//
// A report goes through three stages. query draws a dataset of orders (made
// up, from a generator seeded with the task id, so a retry draws the same
// orders) and aggregates them by country and month; render draws the PDF with
// codeberg.org/go-pdf/fpdf: a cover with the key figures, a bar chart of the
// revenue by country in vector graphics, and a table of every country's months
// over as many pages as it takes; store writes the PDF to the task's result.
//
// Build is the whole report as a pure function of its parameters and seed;
// Register makes it a kind of a worker.
package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// Stages of a report, in order.
const (
	StageQuery  = "query"
	StageRender = "render"
	StageStore  = "store"
)

// BuildOptions are what Build needs besides the parameters. Every field may be
// left zero.
type BuildOptions struct {
	// Seed seeds the generator of the orders: one seed, one dataset.
	Seed string
	// Created is the creation date written in the PDF; with a fixed Created,
	// one seed and one set of parameters always make the same bytes.
	Created time.Time
	// Pace is a pause after each country of the query and each page of the
	// rendering, so that a demonstration can be watched; 0 runs at full speed.
	Pace time.Duration
	// Stage, when not nil, is called as each stage starts.
	Stage func(ctx context.Context, id, message string) error
	// Progress, when not nil, is called as work is done: one unit per country
	// queried, one per page drawn and one for storing, so total is
	// Countries + Pages + 1. The last call has done == total, once the PDF is
	// written.
	Progress func(ctx context.Context, done, total int64) error
}

// Summary is what Build made.
type Summary struct {
	// Pages is the number of pages of the PDF.
	Pages int
	// Rows is the number of orders aggregated.
	Rows int64
	// Bytes is the size of the PDF.
	Bytes int64
}

// storeChunk is the size of the writes of the store stage.
const storeChunk = 64 << 10

// Build makes the report of p and writes the PDF to w, calling o's hooks as it
// goes. An error of a hook stops it and is returned as is; when ctx ends first
// it returns ctx's cause. Parameters out of bounds give ErrInvalidParams.
func Build(ctx context.Context, p Params, o BuildOptions, w io.Writer) (*Summary, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pages := p.Pages()
	total := int64(p.Countries + pages + 1)
	progress := func(ctx context.Context, done int64) error {
		if o.Progress == nil {
			return nil
		}
		return o.Progress(ctx, done, total)
	}
	stage := func(ctx context.Context, id, message string) error {
		if o.Stage == nil {
			return nil
		}
		return o.Stage(ctx, id, message)
	}

	if err := stage(ctx, StageQuery, fmt.Sprintf("Aggregating %s orders of %d countries", groupInt(p.Rows()), p.Countries)); err != nil {
		return nil, err
	}
	ds, err := Query(ctx, p, o.Seed, func(ctx context.Context, done int) error {
		if err := pause(ctx, o.Pace); err != nil {
			return err
		}
		return progress(ctx, int64(done))
	})
	if err != nil {
		return nil, err
	}

	if err := stage(ctx, StageRender, fmt.Sprintf("Drawing %d pages", pages)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := Render(ctx, ds, o.Created, &buf, func(ctx context.Context, page, _ int) error {
		if err := pause(ctx, o.Pace); err != nil {
			return err
		}
		return progress(ctx, int64(p.Countries+page))
	})
	if err != nil {
		return nil, err
	}

	if err := stage(ctx, StageStore, fmt.Sprintf("Storing the PDF (%s bytes)", groupInt(int64(buf.Len())))); err != nil {
		return nil, err
	}
	size := int64(buf.Len())
	for b := buf.Bytes(); len(b) > 0; b = b[min(len(b), storeChunk):] {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if _, err := w.Write(b[:min(len(b), storeChunk)]); err != nil {
			return nil, err
		}
	}
	if err := progress(ctx, total); err != nil {
		return nil, err
	}
	return &Summary{Pages: n, Rows: ds.Orders, Bytes: size}, nil
}

// pause waits d, or until ctx ends (then it returns ctx's cause).
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
