package taskservice_test

import (
	"context"
	"errors"
	"testing"

	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// cancelledTask creates a task of alice and cancels it while it is queued.
func cancelledTask(t *testing.T, cfg taskservice.Config) (*taskservice.Service, *store.Store, *tasks.Record) {
	t.Helper()
	ctx := context.Background()
	svc, st, _ := newService(t, cfg)
	kindtest.RegisterExport(t, st)
	rec, err := svc.Create(ctx, "alice", []byte(`{"kind":"export","params":{"rows":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Cancel(ctx, "alice", rec.ID); err != nil {
		t.Fatal(err)
	}
	return svc, st, rec
}

// A task cancelled while queued has its task:cancelled in its history and
// its owner's inbox; History checks the owner and since.
func TestCancelledTaskHistory(t *testing.T) {
	ctx := context.Background()
	svc, st, rec := cancelledTask(t, taskservice.Config{})
	page, err := svc.History(ctx, "alice", rec.ID, 0, 0)
	if err != nil || !page.Recovered || len(page.Events) != 1 || page.Events[0].Event != events.TaskCancelled || page.Record.Seq != 1 {
		t.Fatalf("history: %+v, %v", page, err)
	}
	if _, err := st.Client().ZScore(ctx, st.Keys().Inbox("alice"), rec.ID).Result(); err != nil {
		t.Fatalf("inbox: %v", err)
	}
	if _, err := svc.History(ctx, "alice", rec.ID, 2, 0); !errors.Is(err, taskservice.ErrBadSince) {
		t.Fatalf("since ahead: %v", err)
	}
	for _, since := range []int64{0, 2} {
		if _, err := svc.History(ctx, "bob", rec.ID, since, 0); !errors.Is(err, taskservice.ErrNotFound) {
			t.Fatalf("someone else's task, since %d: %v", since, err)
		}
	}
	if page, err := svc.History(ctx, taskservice.Anyone, rec.ID, 1, 0); err != nil || !page.Recovered {
		t.Fatalf("an API key: %+v, %v", page, err)
	}
}

// HistoryLimit < 0 (TASK_HISTORY_LIMIT=0) keeps no history: a client that
// resumes gets the record and "trimmed".
func TestNoHistory(t *testing.T) {
	ctx := context.Background()
	svc, _, rec := cancelledTask(t, taskservice.Config{HistoryLimit: -1})
	page, err := svc.History(ctx, "alice", rec.ID, 0, 0)
	if err != nil || page.Recovered || page.Reason != events.ReasonTrimmed || page.Record.State != "cancelled" {
		t.Fatalf("history: %+v, %v", page, err)
	}
}
