package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

func newStore(t *testing.T) (*store.Store, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return store.New(rdb, nil), rdb
}

func newRecord(owner string) *tasks.Record {
	return &tasks.Record{
		ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: owner,
		Total: 10, MaxAttempts: 3, Params: []byte(`{"rows":10}`), CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
}

func TestCreateGetList(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a, b := newRecord("alice"), newRecord("alice")
	b.CreatedAt = a.CreatedAt.Add(time.Second)
	for _, r := range []*tasks.Record{a, b, newRecord("bob")} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "alice" || got.State != tasks.StateQueued || !got.CreatedAt.Equal(a.CreatedAt) || string(got.Params) != `{"rows":10}` {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.Get(ctx, tasks.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrNotFound", err)
	}
	list, err := s.ListByOwner(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("list = %v, want b then a", list)
	}
}

func TestApplyGuards(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := newRecord("alice")
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	rec, err := s.StartAttempt(ctx, r.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 1 || rec.State != tasks.StateRunning || rec.StartedAt == nil {
		t.Fatalf("after start: %+v", rec)
	}
	sub := rdb.Subscribe(ctx, "events")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	upd := func(attempt int, seq int64, state tasks.State) error {
		return s.Apply(ctx, &store.Update{TaskID: r.ID, Attempt: attempt, Seq: seq,
			Fields:  map[string]any{tasks.FieldState: string(state), tasks.FieldDone: seq},
			Publish: &store.Publish{Channel: "events", Payload: []byte{byte(seq)}}})
	}
	if err := upd(1, 1, tasks.StateRunning); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "\x01" {
		t.Fatalf("published %q, %v", msg.Payload, err)
	}
	if err := upd(1, 1, tasks.StateRunning); !errors.Is(err, store.ErrStale) {
		t.Fatalf("same seq: %v, want ErrStale", err)
	}
	if err := upd(2, 2, tasks.StateRunning); !errors.Is(err, store.ErrStale) {
		t.Fatalf("other attempt: %v, want ErrStale", err)
	}
	if err := upd(1, 2, tasks.StateCompleted); err != nil {
		t.Fatal(err)
	}
	if err := upd(1, 3, tasks.StateRunning); !errors.Is(err, store.ErrFinal) {
		t.Fatalf("after final: %v, want ErrFinal", err)
	}
	if _, err := s.StartAttempt(ctx, r.ID, time.Now()); !errors.Is(err, store.ErrFinal) {
		t.Fatalf("start after final: %v, want ErrFinal", err)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.Seq != 2 || got.Done != 2 || got.State != tasks.StateCompleted {
		t.Fatalf("record %+v", got)
	}
	ttl := rdb.PTTL(ctx, s.Keys().Task(r.ID)).Val()
	if ttl <= 0 || ttl > store.DefaultTTL {
		t.Fatalf("ttl %v", ttl)
	}
}

func TestResultRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := newRecord("alice")
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttempt(ctx, r.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	w, err := s.NewResultWriter(ctx, r.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 200000; i++ { // several chunks even after compression
		line := strings.Repeat("x", i%97) + "\n"
		want.WriteString(line)
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenResult(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before commit: %v, want ErrNotFound", err)
	}
	err = s.Apply(ctx, &store.Update{TaskID: r.ID, Attempt: 1, Seq: 1, CommitResult: true,
		Fields: map[string]any{tasks.FieldState: string(tasks.StateCompleted)}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.OpenResult(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("result differs: %d bytes, want %d", len(got), want.Len())
	}
}

func TestResultLimit(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	w, err := s.NewResultWriter(ctx, "x", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("a")); !errors.Is(err, store.ErrResultTooLarge) {
		t.Fatalf("err = %v, want ErrResultTooLarge", err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, s.Keys().ResultTemp("x", 1)).Val(); n != 0 {
		t.Fatalf("temp result left behind")
	}
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	sub := rdb.Subscribe(ctx, "events", s.Keys().CancelChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	event := func(_ *tasks.Record, u *store.Update) error {
		u.Publish = &store.Publish{Channel: "events", Payload: []byte{byte(u.Seq)}}
		return nil
	}

	queued := newRecord("alice")
	if err := s.Create(ctx, queued); err != nil {
		t.Fatal(err)
	}
	rec, err := s.CancelQueued(ctx, queued.ID, time.Now(), event)
	if err != nil || rec.State != tasks.StateCancelled || rec.Seq != 1 || rec.FinishedAt == nil {
		t.Fatalf("cancel queued: %+v, %v", rec, err)
	}
	for _, want := range []string{"events", s.Keys().CancelChannel()} {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Channel != want {
			t.Fatalf("got %v %v, want a message on %s", m, err, want)
		}
	}
	if _, err := s.CancelQueued(ctx, queued.ID, time.Now(), event); !errors.Is(err, store.ErrFinal) {
		t.Fatalf("cancel twice: %v, want ErrFinal", err)
	}
	if _, err := s.StartAttempt(ctx, queued.ID, time.Now()); !errors.Is(err, store.ErrFinal) {
		t.Fatalf("a cancelled task started: %v", err)
	}

	running := newRecord("alice")
	if err := s.Create(ctx, running); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttempt(ctx, running.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelQueued(ctx, running.ID, time.Now(), event); !errors.Is(err, store.ErrRunning) {
		t.Fatalf("cancel running as queued: %v, want ErrRunning", err)
	}
	rec, err = s.RequestCancel(ctx, running.ID)
	if err != nil || !rec.CancelRequested || rec.State != tasks.StateRunning {
		t.Fatalf("request cancel: %+v, %v", rec, err)
	}
	if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != running.ID {
		t.Fatalf("cancel channel: %v %v", m, err)
	}
	if _, err := s.RequestCancel(ctx, tasks.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
