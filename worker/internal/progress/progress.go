// Package progress publishes what a task does: every event goes to the task's
// Socket.IO room through the emitter and is written to the task record by the
// same Redis script, so the record is never behind what a browser saw.
//
// A Reporter serves one attempt of one task. Its sequence numbers continue from
// the record's, one per event; progress events are throttled, final ones never.
package progress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/retry"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// Stages the worker writes besides those of the task kinds.
const (
	StageStarted  = "started"
	StageRetrying = "retrying"
	StageRequeued = "requeued"
)

// Options configure a Publisher.
type Options struct {
	// MaxRate is the most progress events per second and task; 0 or less sends
	// every step. Default (nil Options): 10.
	MaxRate float64
	// Logger receives the problems that do not stop a task. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnEmit, when set, is told of every event a Reporter writes, with the
	// context of the write (for traces). It must be quick.
	OnEmit func(ctx context.Context, e Emit)
}

// Publisher writes task events and records. It is safe for concurrent use.
type Publisher struct {
	st   *store.Store
	em   *emitter.Emitter
	rate float64
	log  *slog.Logger
	now  func() time.Time

	onEmit func(context.Context, Emit)
}

// NewPublisher returns a Publisher that writes records through st and encodes
// events with em (whose namespace is the one browsers use).
func NewPublisher(st *store.Store, em *emitter.Emitter, opts *Options) *Publisher {
	p := &Publisher{st: st, em: em, rate: 10, log: slog.New(slog.DiscardHandler), now: time.Now}
	if opts != nil {
		p.rate = opts.MaxRate
		if opts.Logger != nil {
			p.log = opts.Logger
		}
		if opts.Now != nil {
			p.now = opts.Now
		}
		p.onEmit = opts.OnEmit
	}
	return p
}

// event encodes one event for the room of task id, and its JSON for the
// history. The emitter encodes the payload itself (handing it the JSON instead
// would make it parse that JSON again, which cost a third of an event's time),
// and wire.EncodeJSON, the emitter's own writer, writes the JSON a client would
// write of what it got.
func (p *Publisher) event(id, name string, payload any) (*store.Publish, *store.Event, error) {
	b, err := wire.EncodeJSON(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("progress: encode %s: %w", name, err)
	}
	m, err := p.em.To(events.TaskRoom(id)).Encode(name, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("progress: %w", err)
	}
	return &store.Publish{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}, &store.Event{Name: name, Data: b}, nil
}

// inbox encodes the inbox:item event for the owner of task id when fields
// make its state final (else it returns nil): the entry says the state, seq,
// finish time and error that fields set.
func (p *Publisher) inbox(id, owner string, kind tasks.Kind, seq int64, fields map[string]any) (*store.Publish, error) {
	st, _ := fields[tasks.FieldState].(string)
	if owner == "" || !tasks.State(st).Final() {
		return nil, nil
	}
	entry := events.InboxEntry{TaskID: id, Kind: kind, State: tasks.State(st), Seq: seq, FinishedAt: p.now().UTC()}
	if ms, ok := fields[tasks.FieldFinishedAt].(int64); ok {
		entry.FinishedAt = time.UnixMilli(ms).UTC()
	}
	if code, _ := fields[tasks.FieldErrorCode].(string); code != "" {
		msg, _ := fields[tasks.FieldErrorMessage].(string)
		entry.Error = &tasks.ErrorInfo{Code: code, Message: msg}
	}
	m, err := p.em.To(events.UserRoom(owner)).Encode(events.InboxItem, entry)
	if err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	return &store.Publish{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}, nil
}

// Fail fails task id outside of any attempt (a queue message that cannot run, a
// task out of attempts): the record becomes failed with info and task:failed is
// published. It returns store.ErrFinal when the task had already finished and
// store.ErrNotFound when it has no record.
func (p *Publisher) Fail(ctx context.Context, id string, info tasks.ErrorInfo) error {
	for range 5 {
		rec, err := p.st.Get(ctx, id)
		if err != nil {
			return err
		}
		if rec.State.Final() {
			return store.ErrFinal
		}
		seq := rec.Seq + 1
		pub, ev, err := p.event(id, events.TaskFailed, events.Failed{TaskID: id, Seq: seq, Error: info, EmittedAt: p.now().UnixMilli()})
		if err != nil {
			return err
		}
		fields := failedFields(p.now(), info)
		inbox, err := p.inbox(id, rec.Owner, rec.Kind, seq, fields)
		if err != nil {
			return err
		}
		err = p.st.Apply(ctx, &store.Update{
			TaskID: id, Attempt: rec.Attempts, Seq: seq, Publish: pub, Event: ev, Inbox: inbox, Fields: fields,
		})
		if err == nil {
			p.notify(id, rec.Attempts, failedFields(p.now(), info))
		}
		if !errors.Is(err, store.ErrStale) {
			return err
		}
		// Someone wrote in between: look again.
	}
	return fmt.Errorf("progress: fail %s: the record keeps changing", id)
}

func failedFields(now time.Time, info tasks.ErrorInfo) map[string]any {
	return map[string]any{
		tasks.FieldState:        string(tasks.StateFailed),
		tasks.FieldFinishedAt:   now.UnixMilli(),
		tasks.FieldErrorCode:    info.Code,
		tasks.FieldErrorMessage: info.Message,
		tasks.FieldEtaSeconds:   "",
	}
}

// Begin returns the Reporter of the attempt that rec describes, as returned by
// store.StartAttempt: its attempt number and the last sequence number used.
// rate, when positive, replaces the publisher's progress rate (a kind's own).
func (p *Publisher) Begin(rec *tasks.Record, rate float64) *Reporter {
	if rate <= 0 {
		rate = p.rate
	}
	return &Reporter{
		p:         p,
		id:        rec.ID,
		owner:     rec.Owner,
		kind:      rec.Kind,
		attempt:   rec.Attempts,
		seq:       rec.Seq,
		total:     rec.Total,
		start:     p.now(),
		rate:      rate,
		throttle:  NewThrottle(rate),
		meta:      map[string]any{},
		metaThrot: NewThrottle(rate),
		streams:   map[string]*stream{},
	}
}

// ErrFinished is returned by a Reporter after it wrote a final event.
var ErrFinished = errors.New("progress: the attempt already ended")

// Reporter writes the events of one attempt. Progress errors that Redis causes are
// logged and skipped (the next event carries the latest numbers); final events are
// retried until their context is done. It is safe for concurrent use.
type Reporter struct {
	p       *Publisher
	id      string
	owner   string
	kind    tasks.Kind
	attempt int
	start   time.Time

	mu       sync.Mutex
	seq      int64
	total    int64
	percent  float64
	done     int64
	stage    string
	stageMsg string
	rate     float64
	throttle Throttle
	finished bool
	// finalizing is set while final writes the attempt's last event.
	finalizing bool
	sentEnd    bool // the 100 % progress event went out

	meta        map[string]any // merged metadata of the attempt
	metaPending bool           // meta changed since the last task:metadata
	metaThrot   Throttle
	streams     map[string]*stream
	flushTimer  *time.Timer // flushes what throttling held back
	flushCtx    context.Context
}

// Seq returns the last sequence number used.
func (r *Reporter) Seq() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Started publishes the first progress event of the attempt (0 %, stage
// "started"), which also tells followers that the task runs. Like Progress it
// returns taskctx.ErrCancelRequested when the owner asked to cancel the task.
func (r *Reporter) Started(ctx context.Context, total int64) error {
	err := r.progress(ctx, 0, total, StageStarted, true)
	if err == nil {
		r.p.notify(r.id, r.attempt, map[string]any{tasks.FieldState: string(tasks.StateRunning)})
	}
	return err
}

// Progress reports that done of total units are finished, in stage. Events are
// throttled to the publisher's rate, except the one where done reaches total.
// It returns taskctx.ErrCancelRequested when the record says the owner asked to
// cancel, store.ErrStale when another attempt took the task over, store.ErrFinal
// or store.ErrNotFound when the task is over or gone; the task must then stop.
// Redis errors are not returned: the event is skipped.
func (r *Reporter) Progress(ctx context.Context, done, total int64, stage string) error {
	return r.progress(ctx, done, total, stage, false)
}

func (r *Reporter) progress(ctx context.Context, done, total int64, stage string, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	now := r.p.now()
	if total <= 0 {
		total = r.total
	}
	if stage == "" {
		stage = r.stage
	}
	last := total > 0 && done >= total
	if last && r.sentEnd {
		return nil
	}
	if !r.throttle.Allow(now, force || last) {
		return nil
	}
	r.total, r.done, r.stage = total, done, stage
	r.percent = max(r.percent, percentOf(done, total))
	eta := r.eta(now, done, total)
	fields := map[string]any{
		tasks.FieldState:      string(tasks.StateRunning),
		tasks.FieldPercent:    formatPercent(r.percent),
		tasks.FieldDone:       done,
		tasks.FieldTotal:      total,
		tasks.FieldStage:      stage,
		tasks.FieldEtaSeconds: "",
	}
	if eta != nil {
		fields[tasks.FieldEtaSeconds] = *eta
	}
	payload := func(seq int64) any {
		return events.Progress{TaskID: r.id, Seq: seq, Attempt: r.attempt, Percent: r.percent, Done: done, Total: total,
			Stage: stage, StageMessage: r.stageMsg, EtaSeconds: eta, EmittedAt: r.p.now().UnixMilli()}
	}
	cancel, err := r.write(ctx, events.TaskProgress, payload, fields, false, nil)
	if err == nil && last {
		r.sentEnd = true
	}
	switch {
	case err == nil && cancel:
		return taskctx.ErrCancelRequested
	case err == nil:
		return nil
	case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrFinal), errors.Is(err, store.ErrNotFound):
		return err
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	r.p.log.Warn("progress event skipped", "task", r.id, "attempt", r.attempt, "err", err)
	return nil
}

// eta estimates the seconds left from the pace of the attempt so far.
func (r *Reporter) eta(now time.Time, done, total int64) *float64 {
	if total <= 0 || done <= 0 {
		return nil
	}
	if done >= total {
		z := 0.0
		return &z
	}
	elapsed := now.Sub(r.start).Seconds()
	left := elapsed * float64(total-done) / float64(done)
	left = math.Round(left*10) / 10
	return &left
}

// percentOf returns done/total in percent, rounded down to two decimals, so 100 is
// reached only when everything is done.
func percentOf(done, total int64) float64 {
	if total <= 0 || done <= 0 {
		return 0
	}
	if done >= total {
		return 100
	}
	return math.Floor(float64(done)*10000/float64(total)) / 100
}

func formatPercent(p float64) string {
	return fmt.Sprintf("%g", p)
}

// Completed ends the attempt successfully: what throttling held back, the final
// progress event (100 %) when it was not sent yet, then task:completed, with the
// record's result set and the result written by the attempt moved into place in
// the same script. A result without Rows gets the units done.
func (r *Reporter) Completed(ctx context.Context, res *tasks.Result) error {
	if err := r.Flush(ctx); err != nil && !errors.Is(err, taskctx.ErrCancelRequested) {
		return err
	}
	if err := r.finalProgress(ctx, res.Rows); err != nil {
		return err
	}
	if res.Rows == 0 {
		r.mu.Lock()
		res.Rows = r.done
		r.mu.Unlock()
	}
	now := r.p.now()
	fields := map[string]any{
		tasks.FieldState:       string(tasks.StateCompleted),
		tasks.FieldPercent:     "100",
		tasks.FieldDone:        res.Rows,
		tasks.FieldFinishedAt:  now.UnixMilli(),
		tasks.FieldEtaSeconds:  "",
		tasks.FieldResultURL:   res.URL,
		tasks.FieldResultRows:  res.Rows,
		tasks.FieldResultBytes: res.Bytes,
		tasks.FieldResultType:  res.ContentType,
		tasks.FieldResultName:  res.Filename,
		tasks.FieldResultValue: string(res.Value),
	}
	payload := func(seq int64) any {
		return events.Completed{TaskID: r.id, Seq: seq, Attempt: r.attempt, ResultURL: res.URL, Rows: res.Rows, Bytes: res.Bytes,
			Result: res, EmittedAt: r.p.now().UnixMilli()}
	}
	return r.final(ctx, events.TaskCompleted, payload, fields, true)
}

// finalProgress sends the 100 % event unless it went out already.
func (r *Reporter) finalProgress(ctx context.Context, rows int64) error {
	r.mu.Lock()
	sent, total, stage := r.sentEnd, r.total, r.stage
	r.mu.Unlock()
	if sent {
		return nil
	}
	if total <= 0 {
		total = rows
	}
	if total <= 0 {
		// The task never said how much work it had: task:completed alone says
		// it is all done.
		return nil
	}
	err := retry.Do(ctx, func(ctx context.Context) error {
		err := r.progress(ctx, total, total, stage, true)
		if err == nil {
			r.mu.Lock()
			ok := r.sentEnd
			r.mu.Unlock()
			if !ok {
				return errSkipped
			}
		}
		return err
	}, func(err error) bool { return errors.Is(err, errSkipped) })
	if errors.Is(err, taskctx.ErrCancelRequested) {
		// Too late to cancel: the result is complete.
		return nil
	}
	return err
}

var errSkipped = errors.New("progress: event skipped")

// Failed ends the attempt with a failure: the record becomes failed with info and
// task:failed is published.
func (r *Reporter) Failed(ctx context.Context, info tasks.ErrorInfo) error {
	r.flushQuietly(ctx)
	payload := func(seq int64) any {
		return events.Failed{TaskID: r.id, Seq: seq, Attempt: r.attempt, Error: info, EmittedAt: r.p.now().UnixMilli()}
	}
	return r.final(ctx, events.TaskFailed, payload, failedFields(r.p.now(), info), false)
}

// Cancelled ends the attempt as cancelled by its owner: the record becomes
// cancelled and task:cancelled is published.
func (r *Reporter) Cancelled(ctx context.Context) error {
	r.flushQuietly(ctx)
	fields := map[string]any{
		tasks.FieldState:      string(tasks.StateCancelled),
		tasks.FieldFinishedAt: r.p.now().UnixMilli(),
		tasks.FieldEtaSeconds: "",
	}
	payload := func(seq int64) any {
		return events.Cancelled{TaskID: r.id, Seq: seq, Attempt: r.attempt, EmittedAt: r.p.now().UnixMilli()}
	}
	return r.final(ctx, events.TaskCancelled, payload, fields, false)
}

// Requeued ends the attempt without ending the task: the record goes back to
// queued, with progress reset, stage set to stage (StageRetrying, StageRequeued)
// and nextAttemptAt when a retry is scheduled; followers get a progress event that
// says so.
func (r *Reporter) Requeued(ctx context.Context, stage string, next *time.Time) error {
	r.flushQuietly(ctx)
	r.mu.Lock()
	total := r.total
	r.mu.Unlock()
	fields := map[string]any{
		tasks.FieldState:         string(tasks.StateQueued),
		tasks.FieldPercent:       "0",
		tasks.FieldDone:          0,
		tasks.FieldStage:         stage,
		tasks.FieldStageMessage:  "",
		tasks.FieldEtaSeconds:    "",
		tasks.FieldNextAttemptAt: "",
	}
	if next != nil {
		fields[tasks.FieldNextAttemptAt] = next.UnixMilli()
	}
	payload := func(seq int64) any {
		return events.Progress{TaskID: r.id, Seq: seq, Attempt: r.attempt, Percent: 0, Done: 0, Total: total, Stage: stage,
			EmittedAt: r.p.now().UnixMilli()}
	}
	return r.final(ctx, events.TaskProgress, payload, fields, false)
}

// final writes the last event of the attempt, retrying Redis errors until ctx is
// done.
func (r *Reporter) final(ctx context.Context, name string, payload func(seq int64) any, fields map[string]any, commit bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	r.finalizing = true
	err := retry.Do(ctx, func(ctx context.Context) error {
		_, err := r.write(ctx, name, payload, fields, commit, nil)
		return err
	}, Transient)
	r.finalizing = false
	if err == nil {
		r.finished = true
		r.p.notify(r.id, r.attempt, fields)
		if r.flushTimer != nil {
			r.flushTimer.Stop()
		}
	}
	return err
}

// Transient reports whether err may go away by itself (a Redis or network
// problem), as opposed to an answer of the record (stale, final, not found, out
// of attempts) or an ended context.
func Transient(err error) bool {
	return err != nil && !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrFinal) &&
		!errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExhausted) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// write applies one update with its event. The sequence number moves on even when
// the write fails, since a failed call may still have been applied. When the
// record's sequence moved ahead while the attempt is still current (another writer
// published for the task), it catches up and tries once more. r.mu is held.
func (r *Reporter) write(ctx context.Context, name string, payload func(seq int64) any, fields map[string]any, commit bool, app *store.Append) (bool, error) {
	for try := 0; ; try++ {
		r.seq++
		pub, ev, err := r.p.event(r.id, name, payload(r.seq))
		if err != nil {
			return false, err
		}
		inbox, err := r.p.inbox(r.id, r.owner, r.kind, r.seq, fields)
		if err != nil {
			return false, err
		}
		start := r.p.emitStart()
		cancel, err := r.p.st.ApplyChecked(ctx, &store.Update{
			TaskID: r.id, Attempt: r.attempt, Seq: r.seq, Fields: fields, Publish: pub, Event: ev, Inbox: inbox,
			CommitResult: commit, Append: app,
		})
		if !errors.Is(err, store.ErrStale) || try > 0 {
			r.emitted(ctx, name, start, err)
			return cancel, err
		}
		rec, gerr := r.p.st.Get(ctx, r.id)
		if gerr != nil || rec.Attempts != r.attempt || rec.State.Final() || rec.Seq < r.seq {
			return false, err
		}
		r.seq = rec.Seq
	}
}
