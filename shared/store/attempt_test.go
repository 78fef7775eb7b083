package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

func TestStartAttemptLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	// The record's own bound wins over the caller's.
	r := newRecord("alice")
	r.MaxAttempts = 2
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		rec, err := s.StartAttemptLimit(ctx, r.ID, time.Now(), 5)
		if err != nil || rec.Attempts != want {
			t.Fatalf("attempt %d: %+v, %v", want, rec, err)
		}
	}
	if _, err := s.StartAttemptLimit(ctx, r.ID, time.Now(), 5); !errors.Is(err, store.ErrExhausted) {
		t.Fatalf("third attempt: %v, want ErrExhausted", err)
	}
	if got, _ := s.Get(ctx, r.ID); got.Attempts != 2 || got.State != tasks.StateRunning {
		t.Fatalf("an exhausted start changed the record: %+v", got)
	}

	// Without a bound in the record the caller's applies.
	r2 := newRecord("alice")
	r2.MaxAttempts = 0
	if err := s.Create(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttemptLimit(ctx, r2.ID, time.Now(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttemptLimit(ctx, r2.ID, time.Now(), 1); !errors.Is(err, store.ErrExhausted) {
		t.Fatalf("second attempt with limit 1: %v, want ErrExhausted", err)
	}

	// Final and unknown tasks keep their own errors.
	if _, err := s.StartAttemptLimit(ctx, tasks.NewID(), time.Now(), 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestApplyChecked(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := newRecord("alice")
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttempt(ctx, r.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	upd := func(seq int64) *store.Update {
		return &store.Update{TaskID: r.ID, Attempt: 1, Seq: seq, Fields: map[string]any{tasks.FieldDone: seq}}
	}
	if c, err := s.ApplyChecked(ctx, upd(1)); err != nil || c {
		t.Fatalf("before cancel: %v, %v", c, err)
	}
	if _, err := s.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ApplyChecked(ctx, upd(2)); err != nil || !c {
		t.Fatalf("after cancel request: %v, %v; want true", c, err)
	}
	// Apply itself is unchanged: a cancel request is not an error.
	if err := s.Apply(ctx, upd(3)); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ApplyChecked(ctx, upd(3)); !errors.Is(err, store.ErrStale) || c {
		t.Fatalf("stale: %v, %v", c, err)
	}
}
