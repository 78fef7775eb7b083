package export

import (
	"context"
	"io"
	"time"
)

// step is how many rows are generated between two looks at the context, the delay
// and the progress callback.
const step = 256

// flushAt is the buffer size at which rows are handed to the writer.
const flushAt = 60 << 10

// Options tune Write.
type Options struct {
	// RowDelay slows the export down by this much per row, to make small exports
	// last long enough for tests and demonstrations. The waits are taken a few
	// rows at a time and end at once when the context is cancelled.
	RowDelay time.Duration
	// Progress, when set, is told how many rows were generated, every few hundred
	// rows and once at the end. An error from it stops the export and is returned.
	Progress func(ctx context.Context, done int64) error
}

// Write writes the header and rows rows of the export of task id to w. It stops
// with context.Cause(ctx) as soon as ctx is done (within one step of a few hundred
// rows, or at once during a delay). It returns the number of bytes written.
func Write(ctx context.Context, w io.Writer, taskID string, rows int, opts Options) (int64, error) {
	g := NewGenerator(taskID)
	buf := make([]byte, 0, flushAt+512)
	buf = append(buf, Header...)
	var written int64
	flush := func() error {
		n, err := w.Write(buf)
		written += int64(n)
		buf = buf[:0]
		return err
	}
	var owed time.Duration
	for done := 0; done < rows; {
		n := min(step, rows-done)
		for range n {
			buf = g.AppendRow(buf)
		}
		done += n
		if len(buf) >= flushAt || done == rows {
			if err := flush(); err != nil {
				return written, err
			}
		}
		if ctx.Err() != nil {
			return written, context.Cause(ctx)
		}
		if opts.RowDelay > 0 {
			owed += time.Duration(n) * opts.RowDelay
			if owed >= 20*time.Millisecond || done == rows {
				if err := sleep(ctx, owed); err != nil {
					return written, err
				}
				owed = 0
			}
		}
		if opts.Progress != nil {
			if err := opts.Progress(ctx, int64(done)); err != nil {
				return written, err
			}
		}
	}
	if rows <= 0 {
		if err := flush(); err != nil {
			return written, err
		}
	}
	return written, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
