package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

func TestTaskRecordShowsDeliveryAndSeen(t *testing.T) {
	e := testenv.New(t)
	w := newWorker(t, e)
	ctx := context.Background()
	worker.Handle(w, "sum", func(ctx context.Context, t *worker.Task, p sumParams) (*worker.Result, error) {
		return worker.JSONResult(map[string]int{"sum": p.N}), nil
	})
	if _, err := w.TaskRecord(ctx, tasks.NewID()); !errors.Is(err, worker.ErrNoTask) {
		t.Fatalf("unknown task: %v", err)
	}
	if _, err := w.TaskRecord(ctx, "../x"); !errors.Is(err, worker.ErrNoTask) {
		t.Fatalf("not a task id: %v", err)
	}
	startWorker(t, w)
	id := e.SubmitKind("sum", `{"n":3}`)
	fin := e.WaitFinal(id, 20*time.Second)

	rec, err := w.TaskRecord(ctx, id)
	if err != nil || rec.State != tasks.StateCompleted || rec.DeliveredAt != nil || rec.SeenAt != nil {
		t.Fatalf("record %+v, %v", rec, err)
	}
	// A page of the owner confirms the final event, then marks it seen.
	at := time.Now().Truncate(time.Millisecond)
	if _, err := e.Store.MarkDelivered(ctx, fin.Owner, id, fin.Seq, at); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.AckInbox(ctx, fin.Owner, []string{id}, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rec, err = w.TaskRecord(ctx, id)
	if err != nil || rec.DeliveredAt == nil || !rec.DeliveredAt.Equal(at) || rec.SeenAt == nil || !rec.SeenAt.Equal(at.Add(time.Second)) {
		t.Fatalf("record after delivery: %+v, %v", rec, err)
	}
}
