package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

func TestIndexListAndCursor(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	var ids []string
	for i := range 25 {
		r := newRecord([]string{"alice", "bob"}[i%2])
		// Three tasks per millisecond: the cursor must split ties.
		r.CreatedAt = base.Add(time.Duration(i/3) * time.Millisecond)
		if i%5 == 0 {
			r.State = tasks.StateFailed
		}
		create := s.Create
		if i%2 == 1 {
			create = func(ctx context.Context, r *tasks.Record) error { _, err := s.CreateLimited(ctx, r, 100); return err }
		}
		if err := create(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if n := rdb.ZCard(ctx, s.Keys().AllTasks()).Val(); n != 25 {
		t.Fatalf("index has %d entries, want 25 (Create and CreateLimited both index)", n)
	}
	seen := map[string]bool{}
	var cursor *store.TaskCursor
	var last time.Time
	for pages := 0; ; pages++ {
		p, err := s.ListTasks(ctx, store.TaskFilter{}, 4, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range p.Tasks {
			if seen[tk.ID] {
				t.Fatalf("task %s on two pages", tk.ID)
			}
			if !last.IsZero() && tk.CreatedAt.After(last) {
				t.Fatalf("not newest first: %v after %v", tk.CreatedAt, last)
			}
			seen[tk.ID], last = true, tk.CreatedAt
			if tk.Owner == "" {
				t.Fatalf("no owner in %+v", tk)
			}
		}
		if p.Next == nil {
			break
		}
		c, err := store.ParseTaskCursor(p.Next.String())
		if err != nil {
			t.Fatal(err)
		}
		cursor = &c
		if pages > 20 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 25 {
		t.Fatalf("paged through %d tasks, want 25", len(seen))
	}

	p, err := s.ListTasks(ctx, store.TaskFilter{State: tasks.StateFailed, Owner: "alice"}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Failed: i = 0, 5, 10, 15, 20; alice: even i.
	if len(p.Tasks) != 3 {
		t.Fatalf("failed tasks of alice: %d, want 3", len(p.Tasks))
	}
	p, err = s.ListTasks(ctx, store.TaskFilter{CreatedBefore: base.Add(2 * time.Millisecond)}, 100, nil)
	if err != nil || len(p.Tasks) != 6 {
		t.Fatalf("created before base+2ms: %d tasks (err %v), want 6", len(p.Tasks), err)
	}

	groups, scanned, more, err := s.Failures(ctx)
	if err != nil || scanned != 25 || more || len(groups) != 1 || groups[0].Count != 5 {
		t.Fatalf("failures: %+v scanned=%d more=%v err=%v", groups, scanned, more, err)
	}

	// Two records expire: purge forgets their index entries, and only theirs.
	rdb.Del(ctx, s.Keys().Task(ids[3]), s.Keys().Task(ids[7]))
	p, _ = s.ListTasks(ctx, store.TaskFilter{}, 100, nil)
	if p.Expired != 2 || len(p.Tasks) != 23 {
		t.Fatalf("before purge: %d tasks, %d expired", len(p.Tasks), p.Expired)
	}
	// Without a filter, the records are read only for the page: one that
	// expired leaves its place to the next task, on the same page.
	newest, err := s.ListTasks(ctx, store.TaskFilter{}, 1, nil)
	if err != nil || len(newest.Tasks) != 1 {
		t.Fatalf("newest task: %+v (err %v)", newest, err)
	}
	rdb.Del(ctx, s.Keys().Task(newest.Tasks[0].ID))
	p, err = s.ListTasks(ctx, store.TaskFilter{}, 2, nil)
	if err != nil || len(p.Tasks) != 2 || p.Expired != 1 || p.Next == nil {
		t.Fatalf("the two newest tasks, the newest expired: %d tasks, %d expired, next %v (err %v), want 2, 1 and a cursor",
			len(p.Tasks), p.Expired, p.Next, err)
	}
	for _, tk := range p.Tasks {
		if tk.ID == newest.Tasks[0].ID {
			t.Fatalf("the expired task %s is on the page", tk.ID)
		}
	}
	removed, scanned, more, err := s.PurgeExpired(ctx, 1000)
	if err != nil || removed != 3 || scanned != 25 || more {
		t.Fatalf("purge: removed=%d scanned=%d more=%v err=%v", removed, scanned, more, err)
	}
	if n := rdb.ZCard(ctx, s.Keys().AllTasks()).Val(); n != 22 {
		t.Fatalf("index has %d entries after purge, want 22", n)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := newRecord("alice")
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retry(ctx, r.ID, time.Now(), 3); !errors.Is(err, store.ErrNotFailed) {
		t.Fatalf("retry of a queued task: %v, want ErrNotFailed", err)
	}
	for range 3 {
		if _, err := s.StartAttempt(ctx, r.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rdb.HSet(ctx, s.Keys().Task(r.ID), tasks.FieldState, "failed", tasks.FieldErrorCode, "boom", tasks.FieldErrorMessage, "it broke",
		tasks.FieldFinishedAt, time.Now().UnixMilli())
	rec, err := s.Retry(ctx, r.ID, time.Now(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != tasks.StateQueued || rec.Error != nil || rec.FinishedAt != nil || rec.Attempts != 3 || rec.MaxAttempts != 6 {
		t.Fatalf("after retry: %+v", rec)
	}
	got, err := s.GetIndexed(ctx, r.ID)
	if err != nil || got.Retries != 1 {
		t.Fatalf("retries = %v (err %v), want 1", got, err)
	}
	if !rdb.SIsMember(ctx, s.Keys().ActiveTasks("alice"), r.ID).Val() {
		t.Fatal("a retried task counts among its owner's active tasks again")
	}
	// The next attempt may start: 3 of 6.
	if _, err := s.StartAttempt(ctx, r.ID, time.Now()); err != nil {
		t.Fatalf("start after retry: %v", err)
	}
	// A second retry adds the first budget again, not the grown bound.
	rdb.HSet(ctx, s.Keys().Task(r.ID), tasks.FieldState, "failed")
	if rec, err = s.Retry(ctx, r.ID, time.Now(), 3); err != nil || rec.MaxAttempts != 7 {
		t.Fatalf("second retry: %+v, %v (want maxAttempts 4+3)", rec, err)
	}
	if _, err := s.Retry(ctx, tasks.NewID(), time.Now(), 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retry of no task: %v", err)
	}
}

func TestHeartbeats(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	now := time.Now().UTC()
	if err := s.PutWorker(ctx, &store.WorkerInfo{ID: "w1", Kinds: []string{"export"}, Concurrency: 4, Running: []string{"t1"}, LastHeartbeat: now}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWorker(ctx, &store.WorkerInfo{ID: "w0", LastHeartbeat: now.Add(-time.Hour)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ws, err := s.Workers(ctx, now)
	if err != nil || len(ws) != 1 || ws[0].ID != "w1" || ws[0].Concurrency != 4 || len(ws[0].Running) != 1 {
		t.Fatalf("workers: %+v, %v (the ended heartbeat is left out)", ws, err)
	}
	if err := s.DeleteWorker(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.Workers(ctx, now); len(ws) != 0 {
		t.Fatalf("after delete: %+v", ws)
	}
	if err := s.PutServer(ctx, &store.ServerInfo{ID: "s1", Sockets: 2, Connections: map[string]int{"websocket": 2}, LastHeartbeat: now}, time.Minute); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Servers(ctx, now)
	if err != nil || len(vs) != 1 || vs[0].Connections["websocket"] != 2 {
		t.Fatalf("servers: %+v, %v", vs, err)
	}
}
