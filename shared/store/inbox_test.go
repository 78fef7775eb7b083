package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// finishAt creates a task of owner and makes it final in state at finishedAt,
// with the update script, as a worker does. The inbox and the undelivered
// set get the task as the update script adds it (ZADD NX: a no-op where the
// script already did).
func finishAt(t *testing.T, s *store.Store, rdb *redis.Client, owner string, state tasks.State, finishedAt time.Time) *tasks.Record {
	t.Helper()
	ctx := context.Background()
	r := newRecord(owner)
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	fields := map[string]any{tasks.FieldState: string(state), tasks.FieldFinishedAt: finishedAt.UnixMilli()}
	if state == tasks.StateFailed {
		fields[tasks.FieldErrorCode], fields[tasks.FieldErrorMessage] = "boom", "it broke"
	}
	if err := s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 3, Fields: fields}); err != nil {
		t.Fatal(err)
	}
	z := redis.Z{Score: float64(finishedAt.UnixMilli()), Member: r.ID}
	if err := rdb.ZAddNX(ctx, s.Keys().Inbox(owner), z).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAddNX(ctx, s.Keys().Undelivered(), z).Err(); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func inboxIDs(t *testing.T, s *store.Store, owner string, now time.Time) []string {
	t.Helper()
	list, err := s.ListInbox(context.Background(), owner, now)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.TaskID
	}
	return ids
}

func equalIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestListInboxNewestFirstDropsExpired(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	now := time.Now().Truncate(time.Millisecond)
	old := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-store.DefaultTTL-time.Minute))
	a := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-2*time.Minute))
	b := finishAt(t, s, rdb, "alice", tasks.StateFailed, now.Add(-time.Minute))
	gone := finishAt(t, s, rdb, "alice", tasks.StateCancelled, now.Add(-30*time.Second))
	finishAt(t, s, rdb, "bob", tasks.StateCompleted, now)
	if err := rdb.Del(ctx, s.Keys().Task(gone.ID)).Err(); err != nil { // expired
		t.Fatal(err)
	}

	list, err := s.ListInbox(ctx, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].TaskID != b.ID || list[1].TaskID != a.ID {
		t.Fatalf("inbox = %+v, want b then a", list)
	}
	e := list[0]
	if e.State != tasks.StateFailed || e.Kind != tasks.KindExport || e.Seq != 3 || !e.FinishedAt.Equal(now.Add(-time.Minute)) ||
		e.Error == nil || e.Error.Code != "boom" {
		t.Fatalf("entry %+v", e)
	}
	if list[1].Error != nil {
		t.Fatalf("completed entry has an error: %+v", list[1])
	}
	for _, id := range []string{old.ID, gone.ID} {
		if rdb.ZScore(ctx, s.Keys().Inbox("alice"), id).Err() != redis.Nil {
			t.Fatalf("expired item %s is still in the inbox", id)
		}
	}
	if got := inboxIDs(t, s, "nobody", now); len(got) != 0 {
		t.Fatalf("empty inbox: %v", got)
	}
}

func TestAckInboxAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	now := time.Now().Truncate(time.Millisecond)
	a := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-2*time.Second))
	b := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-time.Second))
	foreign := finishAt(t, s, rdb, "bob", tasks.StateCompleted, now)
	running := newRecord("alice")
	if err := s.Create(ctx, running); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		ids  []string
		want error
		bad  string
	}{
		{"foreign", []string{a.ID, foreign.ID}, store.ErrNotFound, foreign.ID},
		{"unknown", []string{tasks.NewID(), a.ID}, store.ErrNotFound, ""},
		{"not finished", []string{a.ID, running.ID}, store.ErrNotFinished, running.ID},
	} {
		_, err := s.AckInbox(ctx, "alice", tc.ids, now)
		var ie *store.IDError
		if !errors.Is(err, tc.want) || !errors.As(err, &ie) || (tc.bad != "" && ie.ID != tc.bad) {
			t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if got := inboxIDs(t, s, "alice", now); !equalIDs(got, []string{b.ID, a.ID}) {
			t.Fatalf("%s: the inbox changed: %v", tc.name, got)
		}
		if rec, _ := s.Get(ctx, a.ID); rec.SeenAt != nil {
			t.Fatalf("%s: seenAt set by a refused ack", tc.name)
		}
	}
	many := make([]string, store.MaxInboxAck+1)
	for i := range many {
		many[i] = tasks.NewID()
	}
	if _, err := s.AckInbox(ctx, "alice", many, now); !errors.Is(err, store.ErrTooManyIDs) {
		t.Fatalf("too many: %v", err)
	}

	got, err := s.AckInbox(ctx, "alice", []string{a.ID, a.ID}, now)
	if err != nil || !equalIDs(got, []string{a.ID}) {
		t.Fatalf("ack = %v, %v", got, err)
	}
	if ids := inboxIDs(t, s, "alice", now); !equalIDs(ids, []string{b.ID}) {
		t.Fatalf("inbox after ack: %v", ids)
	}
	rec, _ := s.Get(ctx, a.ID)
	if rec.SeenAt == nil || !rec.SeenAt.Equal(now) {
		t.Fatalf("seenAt = %v, want %v", rec.SeenAt, now)
	}
	// A second ack is accepted and keeps the first time.
	if _, err := s.AckInbox(ctx, "alice", []string{a.ID, b.ID}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, _ = s.Get(ctx, a.ID)
	if !rec.SeenAt.Equal(now) {
		t.Fatalf("seenAt moved to %v", rec.SeenAt)
	}
	if ids := inboxIDs(t, s, "alice", now); len(ids) != 0 {
		t.Fatalf("inbox after acking all: %v", ids)
	}
	if rec, _ := s.Get(ctx, foreign.ID); rec.SeenAt != nil {
		t.Fatal("bob's task was marked seen")
	}
}

func TestMarkDeliveredOnce(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	fin := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	r := finishAt(t, s, rdb, "alice", tasks.StateCompleted, fin)
	running := newRecord("alice")
	if err := s.Create(ctx, running); err != nil {
		t.Fatal(err)
	}
	now := fin.Add(3 * time.Second)

	if _, err := s.MarkDelivered(ctx, "bob", r.ID, r.Seq, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign: %v", err)
	}
	if _, err := s.MarkDelivered(ctx, "alice", tasks.NewID(), 1, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := s.MarkDelivered(ctx, "alice", running.ID, 0, now); !errors.Is(err, store.ErrNotFinished) {
		t.Fatalf("running: %v", err)
	}
	for _, seq := range []int64{r.Seq - 1, r.Seq + 1} {
		var se *store.SeqError
		if _, err := s.MarkDelivered(ctx, "alice", r.ID, seq, now); !errors.As(err, &se) || se.Final != r.Seq {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if rec, _ := s.Get(ctx, r.ID); rec.DeliveredAt != nil {
		t.Fatal("deliveredAt set by a refused confirmation")
	}

	var wg sync.WaitGroup
	firsts := make(chan bool, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.MarkDelivered(ctx, "alice", r.ID, r.Seq, now.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			if !d.FinishedAt.Equal(fin) {
				t.Errorf("finishedAt %v, want %v", d.FinishedAt, fin)
			}
			firsts <- d.First
		}()
	}
	wg.Wait()
	close(firsts)
	n := 0
	for f := range firsts {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d confirmations were the first, want 1", n)
	}
	rec, _ := s.Get(ctx, r.ID)
	d, err := s.MarkDelivered(ctx, "alice", r.ID, r.Seq, now.Add(time.Hour))
	if err != nil || d.First || rec.DeliveredAt == nil || !d.At.Equal(*rec.DeliveredAt) {
		t.Fatalf("again: %+v, %v; record %v", d, err, rec.DeliveredAt)
	}
	if rdb.ZScore(ctx, s.Keys().Undelivered(), r.ID).Err() != redis.Nil {
		t.Fatal("a delivered task is still undelivered")
	}
}

func TestSweepUndeliveredCountsEachOnce(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	now := time.Now().Truncate(time.Millisecond)
	ttl := time.Hour
	var replicas []*store.Store
	for range 4 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		replicas = append(replicas, store.New(rdb, &store.Options{TTL: ttl}))
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := replicas[0]
	const expired = 50
	for i := range expired {
		finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-ttl-time.Duration(i+1)*time.Second))
	}
	fresh := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-time.Minute))
	delivered := finishAt(t, s, rdb, "alice", tasks.StateCompleted, now.Add(-ttl-time.Hour))
	if _, err := s.MarkDelivered(ctx, "alice", delivered.ID, delivered.Seq, now); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	counts := make(chan int, len(replicas)*3)
	for _, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				n, err := r.SweepUndelivered(ctx, now)
				if err != nil {
					t.Error(err)
				}
				counts <- n
			}
		}()
	}
	wg.Wait()
	close(counts)
	total := 0
	for n := range counts {
		total += n
	}
	if total != expired {
		t.Fatalf("the replicas counted %d, want %d", total, expired)
	}
	left, _ := rdb.ZRange(ctx, s.Keys().Undelivered(), 0, -1).Result()
	if !equalIDs(left, []string{fresh.ID}) {
		t.Fatalf("left undelivered: %v, want the fresh one", left)
	}
}
