// Package runner runs one attempt of a task, from the queue entry that Machinery
// hands over to the outcome that settles it: it starts the attempt in the task
// record (counting it, refusing tasks that are over or out of attempts), gives the
// task a context that the owner, the shutdown and the lease can cancel, calls the
// handler of the task's kind, and turns its result into the final event: completed,
// failed, cancelled, a retry with back-off, or a hand-back to the queue.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"

	machinery "github.com/RichardKnop/machinery/v2"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/progress"
	"github.com/taskwire/taskwire/worker/internal/retry"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// Error codes of the failures the runner decides.
const (
	CodeWorkerLost     = "worker_lost"
	CodeInternal       = "internal_error"
	CodeTaskError      = "task_error"
	CodeTimeout        = "timeout"
	CodeResultTooLarge = "result_too_large"
	CodeInvalidParams  = "invalid_params"
)

// ErrTimeout is the cause of the context of an attempt that ran past its
// kind's timeout.
var ErrTimeout = errors.New("runner: the attempt ran past its kind's timeout")

// Task is what a handler gets: one attempt of one task.
type Task struct {
	// ID is the task id.
	ID string
	// Kind is the task kind.
	Kind tasks.Kind
	// Attempt is the number of this attempt, from 1.
	Attempt int
	// Owner is the identity that started the task.
	Owner string
	// Params are the task parameters, validated by the server.
	Params json.RawMessage
	// Total is the amount of work the server announced (rows of an export).
	Total int64

	rep      reporter
	st       Store
	maxBytes int64
}

// Progress reports that done of total units are finished, in stage (the
// current stage when empty). Events are throttled. It returns an error only when
// the task must stop: the owner cancelled it, or it is no longer this attempt's.
func (t *Task) Progress(ctx context.Context, done, total int64, stage string) error {
	return t.rep.Progress(ctx, done, total, stage)
}

// Stage publishes that the task entered stage id (progress.Reporter.Stage).
func (t *Task) Stage(ctx context.Context, id, message string) error {
	return t.rep.Stage(ctx, id, message)
}

// SetMetadata merges fields into the task's metadata (progress.Reporter.Metadata).
func (t *Task) SetMetadata(ctx context.Context, fields map[string]any) error {
	return t.rep.Metadata(ctx, fields)
}

// Append adds items to a stream of the task (progress.Reporter.Append).
func (t *Task) Append(ctx context.Context, stream string, items ...any) error {
	return t.rep.Append(ctx, stream, items...)
}

// NewResultWriter starts the stored result of this attempt, bounded by the
// kind's result size limit. It is moved into place when the task completes and
// dropped otherwise.
func (t *Task) NewResultWriter(ctx context.Context) (*store.ResultWriter, error) {
	return t.st.NewResultWriter(ctx, t.ID, t.Attempt, t.maxBytes)
}

// ResultMaxBytes is the size limit of the task's result (0: none).
func (t *Task) ResultMaxBytes() int64 { return t.maxBytes }

// Handler runs one attempt of a task. It returns the result of a completed task,
// or an error: mark it with Permanent or Transient (unmarked errors are
// transient), or return the context's cause when the context is done. A handler
// that stored partial output must discard it before returning an error.
type Handler func(ctx context.Context, t *Task) (*tasks.Result, error)

// Error is a task failure with a stable code.
type Error struct {
	// Code is stable and machine readable ("result_too_large").
	Code string
	// Message is for people.
	Message string
	// Transient errors are retried while attempts remain.
	Transient bool
	// Err is the underlying error, when there is one.
	Err error
}

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as a failure that a retry cannot fix: the task fails at once
// with code.
func Permanent(code string, err error) error {
	return &Error{Code: code, Message: err.Error(), Err: err}
}

// Transient marks err as a failure that may go away: the task is retried with
// back-off while it has attempts left, and fails with code afterwards.
func Transient(code string, err error) error {
	return &Error{Code: code, Message: err.Error(), Transient: true, Err: err}
}

// Store is what the runner needs of the task records; *store.Store is one.
type Store interface {
	// StartAttemptLimit counts a new attempt of task id and marks it running
	// (store.Store.StartAttemptLimit).
	StartAttemptLimit(ctx context.Context, id string, now time.Time, limit int) (*tasks.Record, error)
	// Get returns the record of task id.
	Get(ctx context.Context, id string) (*tasks.Record, error)
	// NewResultWriter starts the stored result of an attempt.
	NewResultWriter(ctx context.Context, id string, attempt int, limit int64) (*store.ResultWriter, error)
}

// Settler settles the queue entries the runner ran; *broker.Broker is one.
type Settler interface {
	// Settle records what happens to the entry of sig (broker.Broker.Settle).
	Settle(sig *mtasks.Signature, o broker.Outcome)
}

// publisher is what the runner needs of Options.Publisher: progressPublisher
// adapts a *progress.Publisher (whose Begin returns the concrete Reporter), and
// the tests put a fake in its place.
type publisher interface {
	Begin(rec *tasks.Record, rate float64) reporter
	Fail(ctx context.Context, id string, info tasks.ErrorInfo) error
}

// reporter writes the events of one attempt; *progress.Reporter is one.
type reporter interface {
	Started(ctx context.Context, total int64) error
	Progress(ctx context.Context, done, total int64, stage string) error
	Stage(ctx context.Context, id, message string) error
	Metadata(ctx context.Context, fields map[string]any) error
	Append(ctx context.Context, name string, items ...any) error
	Completed(ctx context.Context, res *tasks.Result) error
	Failed(ctx context.Context, info tasks.ErrorInfo) error
	Cancelled(ctx context.Context) error
	Requeued(ctx context.Context, stage string, next *time.Time) error
}

// The real types satisfy the interfaces.
var (
	_ Store     = (*store.Store)(nil)
	_ Settler   = (*broker.Broker)(nil)
	_ publisher = progressPublisher{}
	_ reporter  = (*progress.Reporter)(nil)
)

type progressPublisher struct{ *progress.Publisher }

func (p progressPublisher) Begin(rec *tasks.Record, rate float64) reporter {
	return p.Publisher.Begin(rec, rate)
}

// Options configure a Runner.
type Options struct {
	// Store holds the task records.
	Store Store
	// Publisher writes the events of the attempts.
	Publisher *progress.Publisher
	// Registry gives every attempt a context that can be cancelled.
	Registry *taskctx.Registry
	// Broker settles the queue entries.
	Broker Settler
	// MaxAttempts bounds the runs of a task whose record has no bound. Default 3.
	MaxAttempts int
	// Backoff returns the wait before the retry that follows attempt n (from 1).
	// Default: 1 s, doubling, at most 1 min, with jitter.
	Backoff func(n int) time.Duration
	// FinalWriteTimeout bounds how long the final event of an attempt is retried
	// while Redis is unreachable. Default: 30 s.
	FinalWriteTimeout time.Duration
	// Logger receives the runner's log. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Observer, when set, is told how every queue entry ends (for metrics).
	Observer Observer
	// ResultMaxBytes bounds results of kinds without a limit of their own
	// (0: no bound).
	ResultMaxBytes int64
	// Tracer makes the span of every attempt (see traceAttempt); nil: none.
	Tracer trace.Tracer
}

// Kind is how the runner runs the tasks of one kind.
type Kind struct {
	// Handler runs one attempt.
	Handler Handler
	// Timeout bounds one attempt (0: no bound); past it the attempt's context
	// ends with ErrTimeout and the task is retried (CodeTimeout).
	Timeout time.Duration
	// ProgressRate is the most progress events per second of one task (0: the
	// publisher's rate).
	ProgressRate float64
	// ResultMaxBytes bounds the result (0: Options.ResultMaxBytes).
	ResultMaxBytes int64
}

// Observer is told what the runner does with the queue entries it gets, for
// metrics. Its methods must be quick and safe for concurrent use.
type Observer interface {
	// Received is called for every entry Machinery hands over.
	Received(kind tasks.Kind)
	// Started is called when an attempt started: the record says running and
	// counts it.
	Started(kind tasks.Kind)
	// Ended is called once per entry received, when it is settled.
	Ended(e Ending)
}

// Ending says how a queue entry ended.
type Ending struct {
	Kind    tasks.Kind
	Outcome Outcome
	// Code is the error code of a failure or a retry.
	Code string
	// Started says whether an attempt started (Observer.Started was called);
	// Duration is then how long it ran.
	Started  bool
	Duration time.Duration
}

// Outcome says how a queue entry ended.
type Outcome string

// Outcomes reported to the Observer.
const (
	// OutcomeCompleted: task:completed was written.
	OutcomeCompleted Outcome = "completed"
	// OutcomeFailed: task:failed was written (an error, or out of attempts).
	OutcomeFailed Outcome = "failed"
	// OutcomeCancelled: task:cancelled was written.
	OutcomeCancelled Outcome = "cancelled"
	// OutcomeRetried: a transient error; the task waits for its retry.
	OutcomeRetried Outcome = "retried"
	// OutcomeHandedBack: the worker shut down; the task went back to the queue.
	OutcomeHandedBack Outcome = "handed_back"
	// OutcomeAbandoned: the entry was left to its lease (another attempt took
	// the task over, or Redis could not be written); it runs again elsewhere.
	OutcomeAbandoned Outcome = "abandoned"
	// OutcomeSkipped: nothing to do (the task was over already, or has no
	// record); the entry was dropped.
	OutcomeSkipped Outcome = "skipped"
)

// attempt is what the runner knows of one entry it runs, for the Observer.
type attempt struct {
	started time.Time // zero until an attempt started
	outcome Outcome
	code    string
}

// set records how the entry ends.
func (a *attempt) set(o Outcome, code string) { a.outcome, a.code = o, code }

type nopObserver struct{}

func (nopObserver) Received(tasks.Kind) {}
func (nopObserver) Started(tasks.Kind)  {}
func (nopObserver) Ended(Ending)        {}

// Runner runs task attempts for Machinery. It is safe for concurrent use.
type Runner struct {
	opts     Options
	pub      publisher
	log      *slog.Logger
	handlers map[tasks.Kind]Kind
}

// New returns a Runner without handlers.
func New(opts Options) *Runner {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.FinalWriteTimeout <= 0 {
		opts.FinalWriteTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, pub: progressPublisher{opts.Publisher}, log: log, handlers: make(map[tasks.Kind]Kind)}
}

// DefaultBackoff waits 1 s before the first retry, doubling up to 1 min, ±20 %.
func DefaultBackoff(n int) time.Duration {
	d := time.Second * time.Duration(math.Pow(2, float64(max(n-1, 0))))
	return retry.Jitter(min(d, time.Minute), 0.2)
}

// Handle sets the handler of kind, with the default settings.
func (r *Runner) Handle(kind tasks.Kind, h Handler) {
	r.handlers[kind] = Kind{Handler: h}
}

// HandleKind sets how tasks of kind run.
func (r *Runner) HandleKind(kind tasks.Kind, k Kind) {
	r.handlers[kind] = k
}

// Register registers a Machinery task for every kind that has a handler.
func (r *Runner) Register(srv *machinery.Server) error {
	for kind := range r.handlers {
		if err := srv.RegisterTask(string(kind), r.taskFunc(kind)); err != nil {
			return fmt.Errorf("runner: register %s: %w", kind, err)
		}
	}
	return nil
}

// taskFunc is the function Machinery calls: one string argument, the params JSON.
// It always returns nil; the outcome goes to the broker through Settle.
func (r *Runner) taskFunc(kind tasks.Kind) func(ctx context.Context, params string) error {
	return func(ctx context.Context, params string) error {
		sig := mtasks.SignatureFromContext(ctx)
		if sig == nil {
			return errors.New("runner: no signature in the task context")
		}
		o := r.run(ctx, sig, kind, json.RawMessage(params))
		r.opts.Broker.Settle(sig, o)
		return nil
	}
}

// run runs one attempt and returns what to do with its queue entry.
func (r *Runner) run(ctx context.Context, sig *mtasks.Signature, kind tasks.Kind, params json.RawMessage) broker.Outcome {
	id := sig.UUID
	log := r.log.With("task", id, "kind", string(kind), "entry", broker.Entry(sig))
	// Registered before the attempt starts, so a cancel published right after the
	// start is not missed.
	tctx, stop := r.opts.Registry.Start(ctx, id)
	defer stop()
	obs := r.opts.Observer
	obs.Received(kind)
	at := &attempt{outcome: OutcomeAbandoned}
	defer func() {
		e := Ending{Kind: kind, Outcome: at.outcome, Code: at.code, Started: !at.started.IsZero()}
		if e.Started {
			e.Duration = r.opts.Now().Sub(at.started)
		}
		obs.Ended(e)
	}()

	var rec *tasks.Record
	begin := time.Now()
	sctx, cancel := r.finalCtx(ctx)
	defer cancel()
	err := retry.Do(sctx, func(c context.Context) error {
		var err error
		rec, err = r.opts.Store.StartAttemptLimit(c, id, r.opts.Now(), r.opts.MaxAttempts)
		return err
	}, progress.Transient)
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Warn("the task has no record (expired or never created); dropping its queue entry")
		at.set(OutcomeSkipped, "")
		return broker.Ack
	case errors.Is(err, store.ErrFinal):
		log.Info("the task is already over (cancelled while queued?); not starting it")
		at.set(OutcomeSkipped, "")
		return broker.Ack
	case errors.Is(err, store.ErrExhausted):
		return r.exhausted(ctx, id, log, at)
	case err != nil:
		log.Error("cannot start the attempt; leaving the entry to its lease", "err", err)
		return broker.Abandon
	}
	log = log.With("attempt", rec.Attempts)
	var span trace.Span
	ctx, tctx, span = r.traceAttempt(ctx, tctx, sig, rec, begin)
	defer endAttempt(span, at)
	at.started = r.opts.Now()
	obs.Started(kind)
	k, known := r.handlers[kind]
	rep := r.pub.Begin(rec, k.ProgressRate)
	maxAttempts := rec.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = r.opts.MaxAttempts
	}

	if rec.CancelRequested {
		return r.cancelled(ctx, rep, log, at)
	}
	if err := rep.Started(tctx, rec.Total); err != nil {
		return r.finish(ctx, tctx, rep, rec, maxAttempts, nil, err, log, at)
	}
	if !known || k.Handler == nil {
		return r.finish(ctx, tctx, rep, rec, maxAttempts, nil,
			Permanent(broker.CodeUnknownKind, fmt.Errorf("no handler for kind %q", kind)), log, at)
	}
	if k.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(tctx, k.Timeout, ErrTimeout)
		defer cancel()
	}
	log.Info("task started")
	maxBytes := k.ResultMaxBytes
	if maxBytes <= 0 {
		maxBytes = r.opts.ResultMaxBytes
	}
	t := &Task{ID: id, Kind: kind, Attempt: rec.Attempts, Owner: broker.Owner(sig), Params: params, Total: rec.Total,
		rep: rep, st: r.opts.Store, maxBytes: maxBytes}
	res, herr := call(tctx, k.Handler, t, log)
	return r.finish(ctx, tctx, rep, rec, maxAttempts, res, herr, log, at)
}

// call runs h, turning a panic into a permanent error.
func call(ctx context.Context, h Handler, t *Task, log *slog.Logger) (res *tasks.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("task panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, Permanent(CodeInternal, fmt.Errorf("the task crashed: %v", p))
		}
	}()
	return h(ctx, t)
}

// finalCtx is the context of the writes that start and end an attempt: not
// cancelled with the task, bounded in time.
func (r *Runner) finalCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.opts.FinalWriteTimeout)
}

// finish turns the handler's result into the attempt's last event and the entry's
// outcome.
func (r *Runner) finish(ctx, tctx context.Context, rep reporter, rec *tasks.Record, maxAttempts int,
	res *tasks.Result, herr error, log *slog.Logger, at *attempt) broker.Outcome {
	cause := context.Cause(tctx)
	if tctx.Err() == nil {
		cause = nil
	}
	fctx, cancel := r.finalCtx(ctx)
	defer cancel()
	switch {
	case herr == nil && res != nil:
		err := rep.Completed(fctx, res)
		if err == nil {
			log.Info("task completed", "rows", res.Rows, "bytes", res.Bytes)
		}
		return r.after(err, log, at, OutcomeCompleted, "")
	case errors.Is(herr, taskctx.ErrCancelRequested) || errors.Is(cause, taskctx.ErrCancelRequested):
		return r.cancelled(ctx, rep, log, at)
	case errors.Is(herr, store.ErrStale) || errors.Is(cause, taskctx.ErrLeaseLost):
		log.Warn("another attempt took the task over; this one stops without a trace")
		return broker.Abandon
	case errors.Is(herr, store.ErrFinal) || errors.Is(herr, store.ErrNotFound):
		log.Info("the task record is over or gone; stopping", "err", herr)
		at.set(OutcomeSkipped, "")
		return broker.Ack
	case errors.Is(cause, taskctx.ErrShutdown):
		err := rep.Requeued(fctx, progress.StageRequeued, nil)
		if errors.Is(err, store.ErrStale) {
			return broker.Abandon
		}
		if err != nil && !errors.Is(err, store.ErrFinal) && !errors.Is(err, store.ErrNotFound) {
			log.Warn("could not mark the handed-back task queued", "err", err)
		}
		log.Info("handing the task back: the worker shuts down")
		at.set(OutcomeHandedBack, "")
		return broker.HandBack
	}
	if herr == nil {
		herr = Permanent(CodeInternal, errors.New("the task returned neither a result nor an error"))
	}
	if errors.Is(cause, ErrTimeout) {
		herr = Transient(CodeTimeout, errors.New("the attempt ran past its kind's timeout"))
	}
	info, transient := classify(herr)
	if transient && rec.Attempts < maxAttempts {
		due := r.opts.Now().Add(r.opts.Backoff(rec.Attempts))
		err := rep.Requeued(fctx, progress.StageRetrying+": "+info.Message, &due)
		if err == nil {
			log.Warn("task failed; retrying later", "code", info.Code, "err", info.Message, "retryAt", due)
			at.set(OutcomeRetried, info.Code)
			return broker.RetryAt(due)
		}
		return r.after(err, log, at, OutcomeRetried, info.Code)
	}
	err := rep.Failed(fctx, info)
	if err == nil {
		log.Warn("task failed", "code", info.Code, "err", info.Message)
	}
	return r.after(err, log, at, OutcomeFailed, info.Code)
}

// classify returns the error code and message of a handler error and whether it
// is transient.
func classify(err error) (tasks.ErrorInfo, bool) {
	var te *Error
	if errors.As(err, &te) {
		return tasks.ErrorInfo{Code: te.Code, Message: te.Message}, te.Transient
	}
	if errors.Is(err, store.ErrResultTooLarge) {
		return tasks.ErrorInfo{Code: CodeResultTooLarge, Message: err.Error()}, false
	}
	return tasks.ErrorInfo{Code: CodeTaskError, Message: err.Error()}, true
}

// cancelled ends an attempt whose owner cancelled the task.
func (r *Runner) cancelled(ctx context.Context, rep reporter, log *slog.Logger, at *attempt) broker.Outcome {
	fctx, cancel := r.finalCtx(ctx)
	defer cancel()
	err := rep.Cancelled(fctx)
	if err == nil {
		log.Info("task cancelled by its owner")
	}
	return r.after(err, log, at, OutcomeCancelled, "")
}

// exhausted fails a task that has used all its attempts: each of them ended
// without a final state, so their workers were lost (crashed, killed, or shut
// down without finishing).
func (r *Runner) exhausted(ctx context.Context, id string, log *slog.Logger, at *attempt) broker.Outcome {
	fctx, cancel := r.finalCtx(ctx)
	defer cancel()
	n := 0
	if rec, err := r.opts.Store.Get(fctx, id); err == nil {
		n = rec.Attempts
	}
	info := tasks.ErrorInfo{Code: CodeWorkerLost,
		Message: fmt.Sprintf("the task was interrupted %d times (its worker stopped or lost its lease); giving up", n)}
	err := retry.Do(fctx, func(c context.Context) error { return r.pub.Fail(c, id, info) }, progress.Transient)
	if err == nil {
		log.Warn("task failed: out of attempts", "code", info.Code, "attempts", n)
	}
	return r.after(err, log, at, OutcomeFailed, info.Code)
}

// after maps the error of an attempt's last write to the entry's outcome, and
// records in at how the entry ended: as wanted (with code) when the write
// succeeded.
func (r *Runner) after(err error, log *slog.Logger, at *attempt, want Outcome, code string) broker.Outcome {
	switch {
	case err == nil:
		at.set(want, code)
		return broker.Ack
	case errors.Is(err, store.ErrStale):
		log.Warn("another attempt took the task over before this one ended")
		return broker.Abandon
	case errors.Is(err, store.ErrFinal), errors.Is(err, store.ErrNotFound):
		at.set(OutcomeSkipped, "")
		return broker.Ack
	default:
		log.Error("could not write the end of the attempt; leaving the entry to its lease", "err", err)
		return broker.Abandon
	}
}
