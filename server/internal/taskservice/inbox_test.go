package taskservice_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// TestSweepUndelivered runs the sweep of two server replicas: a task that
// finished more than the TTL ago and was never delivered is counted once;
// a delivered one and a recent one are not.
func TestSweepUndelivered(t *testing.T) {
	svc, st, clk := newService(t, taskservice.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := st.Client()
	add := func(fin time.Time) *tasks.Record {
		r := &tasks.Record{ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: "alice",
			Total: 1, MaxAttempts: 1, Params: []byte(`{}`), CreatedAt: fin}
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 1, Fields: map[string]any{
			tasks.FieldState: string(tasks.StateCompleted), tasks.FieldFinishedAt: fin.UnixMilli()}}); err != nil {
			t.Fatal(err)
		}
		rdb.ZAddNX(ctx, st.Keys().Undelivered(), redis.Z{Score: float64(fin.UnixMilli()), Member: r.ID})
		r.Seq = 1
		return r
	}
	now := clk.Now()
	add(now.Add(-store.DefaultTTL - time.Minute))
	delivered := add(now.Add(-store.DefaultTTL - 2*time.Minute))
	add(now.Add(-time.Minute))
	if _, err := svc.Received(ctx, "alice", delivered.ID, delivered.Seq); err != nil {
		t.Fatal(err)
	}

	counted := make(chan int, 16)
	other := taskservice.New(taskservice.Config{Store: st, Now: clk.Now})
	for _, s := range []*taskservice.Service{svc, other} {
		go s.SweepUndelivered(ctx, 5*time.Millisecond, func(n int) { counted <- n })
	}
	select {
	case n := <-counted:
		if n != 1 {
			t.Fatalf("counted %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sweep counted nothing within 5 s")
	}
	// Many more sweeps of both replicas: nothing more to count.
	time.Sleep(100 * time.Millisecond)
	select {
	case n := <-counted:
		t.Fatalf("counted %d more", n)
	default:
	}
	if n := rdb.ZCard(ctx, st.Keys().Undelivered()).Val(); n != 1 {
		t.Fatalf("%d left undelivered, want the recent one", n)
	}
}
