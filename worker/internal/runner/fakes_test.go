package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
)

// The fakes below stand for the task record, the event publisher and the broker,
// so the outcomes of an attempt are tested without Redis. They share a journal:
// the state the record would be in after the writes that succeeded, the events
// that were published, and the settle calls.

// errRedis stands for a Redis error that may go away.
var errRedis = errors.New("redis: connection refused")

// faults decides the error of a write: name is the write ("start", "get",
// "started", "completed", "failed", "cancelled", "requeued", "fail"), n counts its
// calls from 1. nil means every write succeeds.
type faults func(name string, n int) error

// always fails every call of write name with err.
func always(name string, err error) faults {
	return func(w string, _ int) error {
		if w == name {
			return err
		}
		return nil
	}
}

// first fails the first times calls of write name with err.
func first(name string, times int, err error) faults {
	return func(w string, n int) error {
		if w == name && n <= times {
			return err
		}
		return nil
	}
}

// settled is one call of Settle.
type settled struct {
	task, entry string
	outcome     broker.Outcome
}

// journal records what the fakes were asked to do.
type journal struct {
	mu      sync.Mutex
	faults  faults
	calls   map[string]int
	state   tasks.State
	events  []string
	info    *tasks.ErrorInfo // of the last failure written
	settles []settled
	limit   int // the limit StartAttemptLimit got
}

func newJournal(f faults) *journal {
	return &journal{faults: f, calls: map[string]int{}, state: tasks.StateQueued}
}

// write applies one write: on success it publishes event (when not empty) and
// moves the record to state (when not empty).
func (j *journal) write(name, event string, state tasks.State) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls[name]++
	if j.faults != nil {
		if err := j.faults(name, j.calls[name]); err != nil {
			return err
		}
	}
	if event != "" {
		j.events = append(j.events, event)
	}
	if state != "" {
		j.state = state
	}
	return nil
}

func (j *journal) failure(name string, info tasks.ErrorInfo) error {
	err := j.write(name, name+" "+info.Code, tasks.StateFailed)
	if err == nil {
		j.mu.Lock()
		j.info = &info
		j.mu.Unlock()
	}
	return err
}

// fakeStore is the task record (Store).
type fakeStore struct {
	j   *journal
	rec tasks.Record
}

func (s *fakeStore) StartAttemptLimit(_ context.Context, id string, _ time.Time, limit int) (*tasks.Record, error) {
	s.j.mu.Lock()
	s.j.limit = limit
	s.j.mu.Unlock()
	if err := s.j.write("start", "", tasks.StateRunning); err != nil {
		return nil, err
	}
	rec := s.rec
	rec.ID = id
	return &rec, nil
}

func (s *fakeStore) Get(_ context.Context, id string) (*tasks.Record, error) {
	if err := s.j.write("get", "", ""); err != nil {
		return nil, err
	}
	rec := s.rec
	rec.ID = id
	return &rec, nil
}

func (s *fakeStore) NewResultWriter(context.Context, string, int, int64) (*store.ResultWriter, error) {
	return nil, errors.New("fake store: no results")
}

// fakePublisher writes the events (publisher); fakeReporter those of one attempt
// (reporter).
type fakePublisher struct{ j *journal }

func (p *fakePublisher) Begin(*tasks.Record, float64) reporter { return &fakeReporter{j: p.j} }

func (p *fakePublisher) Fail(_ context.Context, _ string, info tasks.ErrorInfo) error {
	return p.j.failure("fail", info)
}

type fakeReporter struct{ j *journal }

func (r *fakeReporter) Started(_ context.Context, total int64) error {
	return r.j.write("started", fmt.Sprintf("started total=%d", total), "")
}

func (r *fakeReporter) Progress(_ context.Context, done, total int64, stage string) error {
	return r.j.write("progress", fmt.Sprintf("progress %d/%d %s", done, total, stage), "")
}

func (r *fakeReporter) Stage(_ context.Context, id, message string) error {
	return r.j.write("stage", "stage "+id+" "+message, "")
}

func (r *fakeReporter) Metadata(_ context.Context, fields map[string]any) error {
	return r.j.write("metadata", fmt.Sprintf("metadata %v", fields), "")
}

func (r *fakeReporter) Append(_ context.Context, name string, items ...any) error {
	return r.j.write("append", fmt.Sprintf("append %s %v", name, items), "")
}

func (r *fakeReporter) Completed(_ context.Context, res *tasks.Result) error {
	return r.j.write("completed", fmt.Sprintf("completed rows=%d", res.Rows), tasks.StateCompleted)
}

func (r *fakeReporter) Failed(_ context.Context, info tasks.ErrorInfo) error {
	return r.j.failure("failed", info)
}

func (r *fakeReporter) Cancelled(context.Context) error {
	return r.j.write("cancelled", "cancelled", tasks.StateCancelled)
}

func (r *fakeReporter) Requeued(_ context.Context, stage string, next *time.Time) error {
	at := "-"
	if next != nil {
		at = next.UTC().Format(time.RFC3339)
	}
	return r.j.write("requeued", "requeued "+stage+" next="+at, tasks.StateQueued)
}

// fakeBroker records the settle calls (Settler).
type fakeBroker struct{ j *journal }

func (b *fakeBroker) Settle(sig *mtasks.Signature, o broker.Outcome) {
	b.j.mu.Lock()
	defer b.j.mu.Unlock()
	b.j.settles = append(b.j.settles, settled{task: sig.UUID, entry: broker.Entry(sig), outcome: o})
}

// fakeObserver records what the Observer is told.
type fakeObserver struct {
	mu                sync.Mutex
	received, started int
	ended             []Ending
}

func (o *fakeObserver) Received(tasks.Kind) { o.mu.Lock(); o.received++; o.mu.Unlock() }
func (o *fakeObserver) Started(tasks.Kind)  { o.mu.Lock(); o.started++; o.mu.Unlock() }
func (o *fakeObserver) Ended(e Ending)      { o.mu.Lock(); o.ended = append(o.ended, e); o.mu.Unlock() }

// clock is a clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
