package progress

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T, rows int) (*testenv.Env, *Publisher, *clock, *tasks.Record) {
	t.Helper()
	e := testenv.New(t)
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	pub := NewPublisher(e.Store, emitter.New(e.Client, nil), &Options{MaxRate: 10, Now: clk.Now})
	id := e.Create(rows, nil)
	rec, err := e.Store.StartAttempt(context.Background(), id, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e, pub, clk, rec
}

func TestReporterLifecycle(t *testing.T) {
	ctx := context.Background()
	e, pub, clk, rec := setup(t, 1000)
	id := rec.ID
	rep := pub.Begin(rec, 0)
	if err := rep.Started(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	// Steps every 10 ms for a second: about ten get through.
	for done := int64(10); done < 1000; done += 10 {
		clk.advance(10 * time.Millisecond)
		if err := rep.Progress(ctx, done, 1000, "exporting"); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(10 * time.Millisecond)
	if err := rep.Progress(ctx, 1000, 1000, "exporting"); err != nil { // the last one always goes
		t.Fatal(err)
	}
	// The result the attempt wrote is committed by Completed.
	w, err := e.Store.NewResultWriter(ctx, id, rec.Attempts, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("id\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res := &tasks.Result{URL: "/api/v1/tasks/" + id + "/result", Rows: 1000, Bytes: 3, ContentType: "text/csv", Filename: "x.csv"}
	if err := rep.Completed(ctx, res); err != nil {
		t.Fatal(err)
	}
	if err := rep.Progress(ctx, 1, 1000, "late"); !errors.Is(err, ErrFinished) {
		t.Fatalf("progress after the end: %v", err)
	}

	e.Events.Wait(t, 5*time.Second, "completed event", func(r *testenv.Recorder) bool { return r.Final(id) != nil })
	evs := e.Events.Of(id)
	progress := 0
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d:\n%s", i, ev.Seq, e.Events.Dump())
		}
		if ev.Name == events.TaskProgress {
			progress++
		}
	}
	// started + ~10 throttled + the last one.
	if progress < 10 || progress > 13 {
		t.Fatalf("%d progress events:\n%s", progress, e.Events.Dump())
	}
	last := evs[len(evs)-2]
	if testenv.Float(last.Payload["percent"]) != 100 || testenv.Float(last.Payload["etaSeconds"]) != 0 {
		t.Fatalf("last progress %v", last.Payload)
	}
	mid := evs[len(evs)/2]
	if eta, ok := mid.Payload["etaSeconds"]; !ok || testenv.Float(eta) <= 0 {
		t.Fatalf("mid progress without a positive eta: %v", mid.Payload)
	}
	got := e.Record(id)
	if got.State != tasks.StateCompleted || got.Seq != int64(len(evs)) || got.Result == nil || got.Result.Rows != 1000 ||
		got.EtaSeconds != nil || got.FinishedAt == nil {
		t.Fatalf("record %+v", got)
	}
	if _, err := e.Store.OpenResult(ctx, id); err != nil {
		t.Fatalf("result not committed: %v", err)
	}
}

func TestReporterSeesCancelRequest(t *testing.T) {
	ctx := context.Background()
	e, pub, clk, rec := setup(t, 100)
	rep := pub.Begin(rec, 0)
	if err := rep.Started(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.RequestCancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	if err := rep.Progress(ctx, 10, 100, "x"); !errors.Is(err, taskctx.ErrCancelRequested) {
		t.Fatalf("progress after a cancel request: %v", err)
	}
	if err := rep.Cancelled(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Record(rec.ID); got.State != tasks.StateCancelled {
		t.Fatalf("record %+v", got)
	}
}

func TestReporterOfALostAttempt(t *testing.T) {
	ctx := context.Background()
	e, pub, clk, rec := setup(t, 100)
	rep := pub.Begin(rec, 0)
	if err := rep.Started(ctx, 100); err != nil {
		t.Fatal(err)
	}
	// Another worker starts attempt 2.
	rec2, err := e.Store.StartAttempt(ctx, rec.ID, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	if err := rep.Progress(ctx, 10, 100, "x"); !errors.Is(err, store.ErrStale) {
		t.Fatalf("progress of the old attempt: %v", err)
	}
	if err := rep.Failed(ctx, tasks.ErrorInfo{Code: "x", Message: "y"}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("failure of the old attempt: %v", err)
	}
	// The new attempt continues the sequence.
	rep2 := pub.Begin(rec2, 0)
	if err := rep2.Started(ctx, 100); err != nil || rep2.Seq() != 2 {
		t.Fatalf("new attempt: seq %d, %v", rep2.Seq(), err)
	}
}

func TestReporterCatchesUpWithOtherWriters(t *testing.T) {
	ctx := context.Background()
	e, pub, clk, rec := setup(t, 100)
	rep := pub.Begin(rec, 0)
	if err := rep.Started(ctx, 100); err != nil {
		t.Fatal(err)
	}
	// Somebody else publishes for the task (seq 2 and 3) without changing the
	// attempt.
	for seq := int64(2); seq <= 3; seq++ {
		if err := e.Store.Apply(ctx, &store.Update{TaskID: rec.ID, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(time.Second)
	if err := rep.Progress(ctx, 50, 100, "x"); err != nil {
		t.Fatal(err)
	}
	if rep.Seq() != 4 || e.Record(rec.ID).Seq != 4 || e.Record(rec.ID).Done != 50 {
		t.Fatalf("seq %d, record %+v", rep.Seq(), e.Record(rec.ID))
	}
}

func TestPublisherFail(t *testing.T) {
	ctx := context.Background()
	e := testenv.New(t)
	pub := NewPublisher(e.Store, emitter.New(e.Client, nil), nil)
	id := e.Create(10, nil)
	info := tasks.ErrorInfo{Code: "malformed_message", Message: "bad"}
	if err := pub.Fail(ctx, id, info); err != nil {
		t.Fatal(err)
	}
	rec := e.Record(id)
	if rec.State != tasks.StateFailed || rec.Error == nil || *rec.Error != info || rec.Seq != 1 {
		t.Fatalf("record %+v", rec)
	}
	if err := pub.Fail(ctx, id, info); !errors.Is(err, store.ErrFinal) {
		t.Fatalf("second fail: %v", err)
	}
	if err := pub.Fail(ctx, tasks.NewID(), info); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	e.Events.Wait(t, 5*time.Second, "failed event", func(r *testenv.Recorder) bool { return r.Final(id) != nil })
	if ev := e.Events.Final(id); ev.Name != events.TaskFailed || ev.Seq != 1 {
		t.Fatalf("event %+v", ev)
	}
}
