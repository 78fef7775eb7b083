package taskctx

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/tasks"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	a, stopA := r.Start(context.Background(), "a")
	b, stopB := r.Start(context.Background(), "b")
	defer stopB()
	if r.Len() != 2 {
		t.Fatalf("len %d", r.Len())
	}
	if !r.Cancel("a", ErrCancelRequested) || r.Cancel("zzz", ErrCancelRequested) {
		t.Fatal("cancel reported the wrong runs")
	}
	if !errors.Is(context.Cause(a), ErrCancelRequested) || b.Err() != nil {
		t.Fatalf("causes: a %v, b %v", context.Cause(a), context.Cause(b))
	}
	stopA()
	if r.Len() != 1 {
		t.Fatalf("len after stop %d", r.Len())
	}
	if n := r.CancelAll(ErrShutdown); n != 1 || !errors.Is(context.Cause(b), ErrShutdown) {
		t.Fatalf("cancel all: %d, %v", n, context.Cause(b))
	}
}

func TestListen(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	r := NewRegistry()
	id := tasks.NewID()
	ctx, stop := r.Start(context.Background(), id)
	defer stop()
	lctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Listen(lctx, rdb, "cancel", r, slog.New(slog.DiscardHandler), ready)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed")
	}
	for _, msg := range []string{"not an id", tasks.NewID(), id} {
		if err := rdb.Publish(context.Background(), "cancel", msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrCancelRequested) {
			t.Fatalf("cause %v", context.Cause(ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the task was not cancelled")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return")
	}
}
