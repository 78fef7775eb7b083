package progress

import (
	"context"
	"time"
)

// Emit is one event that a Reporter wrote (or tried to), as Options.OnEmit
// sees it: for traces.
type Emit struct {
	TaskID  string
	Attempt int
	// Event is the event's name (events.TaskProgress...); Seq its sequence
	// number.
	Event string
	Seq   int64
	// Final says that the event ends the attempt (completed, failed,
	// cancelled, or the progress event of a retry or a hand-back).
	Final bool
	// Start is when the write began; Err is its error (nil: written).
	Start time.Time
	Err   error
}

// emitStart returns the time a write begins when somebody listens, and the
// zero time (no clock read) otherwise.
func (p *Publisher) emitStart() time.Time {
	if p.onEmit == nil {
		return time.Time{}
	}
	return time.Now()
}

// emitted tells Options.OnEmit about one write;
// r.mu is held.
func (r *Reporter) emitted(ctx context.Context, name string, start time.Time, err error) {
	if r.p.onEmit == nil {
		return
	}
	r.p.onEmit(ctx, Emit{TaskID: r.id, Attempt: r.attempt, Event: name, Seq: r.seq, Final: r.finalizing, Start: start, Err: err})
}
