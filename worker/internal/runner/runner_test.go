package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/progress"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

const (
	testKind  = tasks.Kind("report")
	testEntry = "1700000000000-0"
	testOwner = "alice"
	// testMaxAttempts is Options.MaxAttempts: the bound of records without one.
	testMaxAttempts = 2
)

var (
	testID = tasks.NewID()
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// Events of the journal that many cases expect.
const (
	evStarted  = "started total=10"
	evRun      = "run" // the handler was called
	evComplete = "completed rows=3"
	evHandBack = "requeued " + progress.StageRequeued + " next=-"
)

// evRetry is the event of a retry scheduled after the first attempt.
func evRetry(message string) string {
	return "requeued " + progress.StageRetrying + ": " + message + " next=2026-01-02T03:04:06Z"
}

// env lets a handler act on the world around its attempt.
type env struct {
	// cancel cancels the attempt's context with cause, as the registry does for
	// a cancel request, a shutdown or a lost lease.
	cancel func(cause error)
	// advance moves the clock.
	advance func(d time.Duration)
}

type handlerFunc func(ctx context.Context, t *Task, e env) (*tasks.Result, error)

func result(rows int64) handlerFunc {
	return func(context.Context, *Task, env) (*tasks.Result, error) { return &tasks.Result{Rows: rows}, nil }
}

func fails(err error) handlerFunc {
	return func(context.Context, *Task, env) (*tasks.Result, error) { return nil, err }
}

// stopsOn cancels the attempt with cause and returns the context's cause, as a
// handler that notices its context is done.
func stopsOn(cause error) handlerFunc {
	return func(ctx context.Context, _ *Task, e env) (*tasks.Result, error) {
		e.cancel(cause)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
}

// outcomeCase is one way an entry can end.
type outcomeCase struct {
	name string
	// The record as StartAttemptLimit returns it: Attempts (default 1) of
	// MaxAttempts (default 3; unbounded: 0).
	attempts, maxAttempts int
	unbounded             bool
	cancelRequested       bool
	faults                faults
	// handler runs the attempt; noHandler leaves the kind without one.
	handler   handlerFunc
	noHandler bool
	timeout   time.Duration

	want        broker.Outcome
	wantState   tasks.State
	wantEvents  []string
	wantEnding  Ending // Kind is filled in
	wantMessage string // in the message of the failure written, when set
}

func TestOutcomes(t *testing.T) {
	retried := func(code string) Ending { return Ending{Outcome: OutcomeRetried, Code: code, Started: true} }
	failed := func(code string) Ending { return Ending{Outcome: OutcomeFailed, Code: code, Started: true} }
	abandoned := Ending{Outcome: OutcomeAbandoned, Started: true}
	skipped := Ending{Outcome: OutcomeSkipped, Started: true}
	boom := errors.New("boom")

	cases := []outcomeCase{
		// Starting the attempt.
		{name: "no record", faults: always("start", store.ErrNotFound),
			want: broker.Ack, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeSkipped}},
		{name: "task over before it started", faults: always("start", store.ErrFinal),
			want: broker.Ack, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeSkipped}},
		{name: "start fails for a while", faults: first("start", 2, errRedis), handler: result(3),
			want: broker.Ack, wantState: tasks.StateCompleted, wantEvents: []string{evStarted, evRun, evComplete},
			wantEnding: Ending{Outcome: OutcomeCompleted, Started: true}},
		{name: "start never succeeds", faults: always("start", errRedis),
			want: broker.Abandon, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeAbandoned}},
		{name: "attempts exhausted: worker_lost", attempts: 3, faults: always("start", store.ErrExhausted),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{"fail " + CodeWorkerLost},
			wantEnding: Ending{Outcome: OutcomeFailed, Code: CodeWorkerLost}, wantMessage: "interrupted 3 times"},
		{name: "attempts exhausted, record unreadable",
			faults: func(w string, n int) error {
				return errors.Join(always("start", store.ErrExhausted)(w, n), always("get", errRedis)(w, n))
			},
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{"fail " + CodeWorkerLost},
			wantEnding: Ending{Outcome: OutcomeFailed, Code: CodeWorkerLost}, wantMessage: "interrupted 0 times"},
		{name: "attempts exhausted, failing works on a retry",
			faults: func(w string, n int) error {
				return errors.Join(always("start", store.ErrExhausted)(w, n), first("fail", 1, errRedis)(w, n))
			},
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{"fail " + CodeWorkerLost},
			wantEnding: Ending{Outcome: OutcomeFailed, Code: CodeWorkerLost}},
		{name: "attempts exhausted, another attempt took over",
			faults: func(w string, n int) error {
				return errors.Join(always("start", store.ErrExhausted)(w, n), always("fail", store.ErrStale)(w, n))
			},
			want: broker.Abandon, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeAbandoned}},
		{name: "attempts exhausted, task over meanwhile",
			faults: func(w string, n int) error {
				return errors.Join(always("start", store.ErrExhausted)(w, n), always("fail", store.ErrFinal)(w, n))
			},
			want: broker.Ack, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeSkipped}},
		{name: "attempts exhausted, failing never succeeds",
			faults: func(w string, n int) error {
				return errors.Join(always("start", store.ErrExhausted)(w, n), always("fail", errRedis)(w, n))
			},
			want: broker.Abandon, wantState: tasks.StateQueued, wantEnding: Ending{Outcome: OutcomeAbandoned}},

		// Before the handler.
		{name: "cancel requested before the start", cancelRequested: true, handler: result(3),
			want: broker.Ack, wantState: tasks.StateCancelled, wantEvents: []string{"cancelled"},
			wantEnding: Ending{Outcome: OutcomeCancelled, Started: true}},
		{name: "started event: cancel requested", faults: always("started", taskctx.ErrCancelRequested), handler: result(3),
			want: broker.Ack, wantState: tasks.StateCancelled, wantEvents: []string{"cancelled"},
			wantEnding: Ending{Outcome: OutcomeCancelled, Started: true}},
		{name: "started event: another attempt took over", faults: always("started", store.ErrStale), handler: result(3),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEnding: abandoned},
		{name: "started event: task over", faults: always("started", store.ErrFinal), handler: result(3),
			want: broker.Ack, wantState: tasks.StateRunning, wantEnding: skipped},
		{name: "started event: Redis error is retried", faults: always("started", errRedis), handler: result(3),
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evRetry(errRedis.Error())}, wantEnding: retried(CodeTaskError)},
		{name: "no handler for the kind", noHandler: true,
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, "failed " + broker.CodeUnknownKind},
			wantEnding: failed(broker.CodeUnknownKind), wantMessage: `no handler for kind "report"`},

		// Success.
		{name: "completed",
			handler: func(ctx context.Context, t *Task, e env) (*tasks.Result, error) {
				e.advance(2 * time.Second)
				return result(3)(ctx, t, e)
			},
			want: broker.Ack, wantState: tasks.StateCompleted, wantEvents: []string{evStarted, evRun, evComplete},
			wantEnding: Ending{Outcome: OutcomeCompleted, Started: true, Duration: 2 * time.Second}},
		{name: "completed, another attempt took over", faults: always("completed", store.ErrStale), handler: result(3),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "completed, task over meanwhile", faults: always("completed", store.ErrFinal), handler: result(3),
			want: broker.Ack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: skipped},
		{name: "completed, Redis unreachable", faults: always("completed", errRedis), handler: result(3),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "a result wins over a shutdown",
			handler: func(ctx context.Context, t *Task, e env) (*tasks.Result, error) {
				e.cancel(taskctx.ErrShutdown)
				return result(3)(ctx, t, e)
			},
			want: broker.Ack, wantState: tasks.StateCompleted, wantEvents: []string{evStarted, evRun, evComplete},
			wantEnding: Ending{Outcome: OutcomeCompleted, Started: true}},

		// Handler errors.
		{name: "transient error, attempts left", handler: fails(Transient("upstream_down", boom)),
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evStarted, evRun, evRetry("boom")}, wantEnding: retried("upstream_down")},
		{name: "transient error, last attempt", attempts: 3, handler: fails(Transient("upstream_down", boom)),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed upstream_down"},
			wantEnding: failed("upstream_down"), wantMessage: "boom"},
		{name: "unmarked error is transient", handler: fails(boom),
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evStarted, evRun, evRetry("boom")}, wantEnding: retried(CodeTaskError)},
		{name: "unmarked error, last attempt", attempts: 3, handler: fails(boom),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeTaskError},
			wantEnding: failed(CodeTaskError)},
		{name: "record without a bound: Options.MaxAttempts", attempts: testMaxAttempts, unbounded: true, handler: fails(boom),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeTaskError},
			wantEnding: failed(CodeTaskError)},
		{name: "record without a bound, attempts left", attempts: 1, unbounded: true, handler: fails(boom),
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evStarted, evRun, evRetry("boom")}, wantEnding: retried(CodeTaskError)},
		{name: "permanent error", handler: fails(Permanent("bad_input", boom)),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed bad_input"},
			wantEnding: failed("bad_input"), wantMessage: "boom"},
		{name: "result over the limit", handler: fails(fmt.Errorf("writing the result: %w", store.ErrResultTooLarge)),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeResultTooLarge},
			wantEnding: failed(CodeResultTooLarge)},
		{name: "neither result nor error", handler: fails(nil),
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeInternal},
			wantEnding: failed(CodeInternal), wantMessage: "neither a result nor an error"},
		{name: "panic", handler: func(context.Context, *Task, env) (*tasks.Result, error) { panic("kaboom") },
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeInternal},
			wantEnding: failed(CodeInternal), wantMessage: "the task crashed: kaboom"},
		{name: "retry not written: another attempt took over", faults: always("requeued", store.ErrStale), handler: fails(boom),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "retry not written: task over", faults: always("requeued", store.ErrFinal), handler: fails(boom),
			want: broker.Ack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: skipped},
		{name: "retry not written: Redis unreachable", faults: always("requeued", errRedis), handler: fails(boom),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "failure not written: another attempt took over", faults: always("failed", store.ErrStale), handler: fails(Permanent("bad_input", boom)),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "failure not written: Redis unreachable", faults: always("failed", errRedis), handler: fails(Permanent("bad_input", boom)),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},

		// Timeout.
		{name: "timeout, attempts left", timeout: 10 * time.Millisecond, handler: waits,
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evStarted, evRun, evRetry("the attempt ran past its kind's timeout")},
			wantEnding: retried(CodeTimeout)},
		{name: "timeout, last attempt", attempts: 3, timeout: 10 * time.Millisecond, handler: waits,
			want: broker.Ack, wantState: tasks.StateFailed, wantEvents: []string{evStarted, evRun, "failed " + CodeTimeout},
			wantEnding: failed(CodeTimeout)},
		{name: "timeout, handler error replaced", timeout: 10 * time.Millisecond,
			handler: func(ctx context.Context, _ *Task, _ env) (*tasks.Result, error) {
				<-ctx.Done()
				return nil, Permanent("bad_input", ctx.Err())
			},
			want: broker.RetryAt(t0.Add(time.Second)), wantState: tasks.StateQueued,
			wantEvents: []string{evStarted, evRun, evRetry("the attempt ran past its kind's timeout")},
			wantEnding: retried(CodeTimeout)},

		// Cancel by the owner.
		{name: "cancelled while running", handler: stopsOn(taskctx.ErrCancelRequested),
			want: broker.Ack, wantState: tasks.StateCancelled, wantEvents: []string{evStarted, evRun, "cancelled"},
			wantEnding: Ending{Outcome: OutcomeCancelled, Started: true}},
		{name: "cancel seen by a progress call", handler: fails(fmt.Errorf("progress: %w", taskctx.ErrCancelRequested)),
			want: broker.Ack, wantState: tasks.StateCancelled, wantEvents: []string{evStarted, evRun, "cancelled"},
			wantEnding: Ending{Outcome: OutcomeCancelled, Started: true}},
		{name: "cancelled, another attempt took over", faults: always("cancelled", store.ErrStale), handler: stopsOn(taskctx.ErrCancelRequested),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "cancelled, Redis unreachable", faults: always("cancelled", errRedis), handler: stopsOn(taskctx.ErrCancelRequested),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},

		// Lease lost, record over.
		{name: "lease lost", handler: stopsOn(taskctx.ErrLeaseLost),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "record taken by another attempt", handler: fails(fmt.Errorf("progress: %w", store.ErrStale)),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "task over while running", handler: fails(fmt.Errorf("progress: %w", store.ErrFinal)),
			want: broker.Ack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: skipped},
		{name: "record gone while running", handler: fails(fmt.Errorf("progress: %w", store.ErrNotFound)),
			want: broker.Ack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: skipped},

		// Shutdown.
		{name: "shutdown: handed back", handler: stopsOn(taskctx.ErrShutdown),
			want: broker.HandBack, wantState: tasks.StateQueued, wantEvents: []string{evStarted, evRun, evHandBack},
			wantEnding: Ending{Outcome: OutcomeHandedBack, Started: true}},
		{name: "shutdown, another attempt took over", faults: always("requeued", store.ErrStale), handler: stopsOn(taskctx.ErrShutdown),
			want: broker.Abandon, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun}, wantEnding: abandoned},
		{name: "shutdown, Redis unreachable: handed back all the same", faults: always("requeued", errRedis), handler: stopsOn(taskctx.ErrShutdown),
			want: broker.HandBack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun},
			wantEnding: Ending{Outcome: OutcomeHandedBack, Started: true}},
		{name: "shutdown, task over: handed back", faults: always("requeued", store.ErrFinal), handler: stopsOn(taskctx.ErrShutdown),
			want: broker.HandBack, wantState: tasks.StateRunning, wantEvents: []string{evStarted, evRun},
			wantEnding: Ending{Outcome: OutcomeHandedBack, Started: true}},
		{name: "shutdown wins over a handler error",
			handler: func(ctx context.Context, t *Task, e env) (*tasks.Result, error) {
				e.cancel(taskctx.ErrShutdown)
				return nil, boom
			},
			want: broker.HandBack, wantState: tasks.StateQueued, wantEvents: []string{evStarted, evRun, evHandBack},
			wantEnding: Ending{Outcome: OutcomeHandedBack, Started: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t) })
	}
}

// waits returns the context's cause once it is done.
func waits(ctx context.Context, _ *Task, _ env) (*tasks.Result, error) {
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// fixture is a Runner on fakes.
type fixture struct {
	r   *Runner
	j   *journal
	obs *fakeObserver
	reg *taskctx.Registry
	clk *clock
}

func newFixture(f faults, rec tasks.Record) *fixture {
	x := &fixture{j: newJournal(f), obs: &fakeObserver{}, reg: taskctx.NewRegistry(), clk: &clock{t: t0}}
	x.r = New(Options{
		Store: &fakeStore{j: x.j, rec: rec}, Registry: x.reg, Broker: &fakeBroker{j: x.j},
		MaxAttempts:       testMaxAttempts,
		Backoff:           func(n int) time.Duration { return time.Duration(n) * time.Second },
		FinalWriteTimeout: 300 * time.Millisecond,
		Now:               x.clk.Now,
		Observer:          x.obs,
		ResultMaxBytes:    1 << 20,
	})
	x.r.pub = &fakePublisher{j: x.j}
	return x
}

// handle sets the kind's handler: h, given an env, and noted in the journal.
func (x *fixture) handle(k Kind, h handlerFunc) {
	e := env{cancel: func(cause error) { x.reg.Cancel(testID, cause) }, advance: x.clk.advance}
	k.Handler = func(ctx context.Context, t *Task) (*tasks.Result, error) {
		_ = x.j.write("run", evRun, "")
		return h(ctx, t, e)
	}
	x.r.HandleKind(testKind, k)
}

// deliver hands the runner an entry as Machinery does, and returns the error of
// the task function.
func (x *fixture) deliver(t *testing.T, params string) error {
	t.Helper()
	sig := &mtasks.Signature{
		UUID: testID, Name: string(testKind),
		Args:    []mtasks.Arg{{Name: "params", Type: "string", Value: params}},
		Headers: mtasks.Headers{broker.HeaderEntry: testEntry, broker.HeaderOwner: testOwner},
	}
	fn := x.r.taskFunc(testKind)
	mt, err := mtasks.NewWithSignature(fn, sig)
	if err != nil {
		t.Fatal(err)
	}
	return fn(mt.Context, params)
}

func (c outcomeCase) record() tasks.Record {
	rec := tasks.Record{Kind: testKind, State: tasks.StateRunning, Attempts: max(c.attempts, 1), MaxAttempts: 3, Total: 10,
		CancelRequested: c.cancelRequested}
	if c.maxAttempts > 0 {
		rec.MaxAttempts = c.maxAttempts
	}
	if c.unbounded {
		rec.MaxAttempts = 0
	}
	return rec
}

func (c outcomeCase) check(t *testing.T) {
	x := newFixture(c.faults, c.record())
	if !c.noHandler {
		x.handle(Kind{Timeout: c.timeout}, c.handler)
	}
	if err := x.deliver(t, `{"rows":3}`); err != nil {
		t.Fatalf("task function: %v", err)
	}

	j := x.j
	j.mu.Lock()
	defer j.mu.Unlock()
	want := []settled{{task: testID, entry: testEntry, outcome: c.want}}
	if !slices.EqualFunc(j.settles, want, func(a, b settled) bool {
		return a.task == b.task && a.entry == b.entry && a.outcome.String() == b.outcome.String()
	}) {
		t.Errorf("settled %v, want %v", j.settles, want)
	}
	if j.state != c.wantState {
		t.Errorf("record state %q, want %q", j.state, c.wantState)
	}
	if !slices.Equal(j.events, c.wantEvents) {
		t.Errorf("events\n got %q\nwant %q", j.events, c.wantEvents)
	}
	if c.wantMessage != "" && (j.info == nil || !strings.Contains(j.info.Message, c.wantMessage)) {
		t.Errorf("failure written %+v, want a message with %q", j.info, c.wantMessage)
	}
	if j.limit != testMaxAttempts {
		t.Errorf("StartAttemptLimit got limit %d, want Options.MaxAttempts %d", j.limit, testMaxAttempts)
	}

	x.obs.mu.Lock()
	defer x.obs.mu.Unlock()
	wantEnding := c.wantEnding
	wantEnding.Kind = testKind
	if !slices.Equal(x.obs.ended, []Ending{wantEnding}) {
		t.Errorf("observer: ended %+v, want %+v", x.obs.ended, wantEnding)
	}
	wantStarted := 0
	if wantEnding.Started {
		wantStarted = 1
	}
	if x.obs.received != 1 || x.obs.started != wantStarted {
		t.Errorf("observer: received %d, started %d; want 1, %d", x.obs.received, x.obs.started, wantStarted)
	}
	if n := x.reg.Len(); n != 0 {
		t.Errorf("%d runs left in the registry", n)
	}
}

// TestTask checks what a handler gets, and that its calls reach the attempt's
// reporter.
func TestTask(t *testing.T) {
	for _, c := range []struct {
		name             string
		kindMax, wantMax int64
		attempts         int
	}{
		{name: "the kind's result limit", kindMax: 100, wantMax: 100, attempts: 2},
		{name: "the default result limit", wantMax: 1 << 20, attempts: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newFixture(nil, tasks.Record{Kind: testKind, Attempts: c.attempts, MaxAttempts: 3, Total: 10})
			var got Task
			x.handle(Kind{ResultMaxBytes: c.kindMax}, func(ctx context.Context, tk *Task, _ env) (*tasks.Result, error) {
				got = *tk
				for _, err := range []error{
					tk.Stage(ctx, "render", "Drawing"),
					tk.Progress(ctx, 5, 10, ""),
					tk.SetMetadata(ctx, map[string]any{"pages": 2}),
					tk.Append(ctx, "log", "line"),
				} {
					if err != nil {
						return nil, err
					}
				}
				if _, err := tk.NewResultWriter(ctx); err == nil {
					return nil, errors.New("NewResultWriter did not reach the store")
				}
				return &tasks.Result{Rows: 3}, nil
			})
			if err := x.deliver(t, `{"rows":3}`); err != nil {
				t.Fatal(err)
			}
			if got.ID != testID || got.Kind != testKind || got.Attempt != c.attempts || got.Owner != testOwner ||
				string(got.Params) != `{"rows":3}` || got.Total != 10 || got.ResultMaxBytes() != c.wantMax {
				t.Errorf("task %+v (limit %d); want id %s, kind %s, attempt %d, owner %s, total 10, limit %d",
					got, got.ResultMaxBytes(), testID, testKind, c.attempts, testOwner, c.wantMax)
			}
			wantEvents := []string{evStarted, evRun, "stage render Drawing", "progress 5/10 ", "metadata map[pages:2]",
				"append log [line]", evComplete}
			if !slices.Equal(x.j.events, wantEvents) {
				t.Errorf("events\n got %q\nwant %q", x.j.events, wantEvents)
			}
		})
	}
}

// TestTaskFuncWithoutSignature: an entry without a signature is an error for
// Machinery, and nothing is settled or written.
func TestTaskFuncWithoutSignature(t *testing.T) {
	x := newFixture(nil, tasks.Record{Kind: testKind, Attempts: 1})
	x.handle(Kind{}, result(3))
	if err := x.r.taskFunc(testKind)(context.Background(), `{}`); err == nil {
		t.Fatal("task function without a signature: no error")
	}
	if len(x.j.settles) != 0 || len(x.j.events) != 0 || x.j.calls["start"] != 0 {
		t.Errorf("settled %v, events %q, %d starts; want nothing", x.j.settles, x.j.events, x.j.calls["start"])
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err           error
		wantCode      string
		wantTransient bool
	}{
		{Permanent("bad_input", errors.New("x")), "bad_input", false},
		{Transient("upstream_down", errors.New("x")), "upstream_down", true},
		{fmt.Errorf("wrapped: %w", Permanent("bad_input", errors.New("x"))), "bad_input", false},
		{fmt.Errorf("w: %w", store.ErrResultTooLarge), CodeResultTooLarge, false},
		{errors.New("x"), CodeTaskError, true},
	} {
		info, transient := classify(c.err)
		if info.Code != c.wantCode || transient != c.wantTransient {
			t.Errorf("classify(%v) = %s, %v; want %s, %v", c.err, info.Code, transient, c.wantCode, c.wantTransient)
		}
	}
}
