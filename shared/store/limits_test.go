package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

func finish(t *testing.T, s *store.Store, id string, state tasks.State) {
	t.Helper()
	rec, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background(), &store.Update{TaskID: id, Seq: rec.Seq + 1,
		Fields: map[string]any{tasks.FieldState: string(state), tasks.FieldFinishedAt: time.Now().UnixMilli()}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateLimited(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	const max = 4
	var ids []string
	for i := range max {
		r := newRecord("alice")
		n, err := s.CreateLimited(ctx, r, max)
		if err != nil || n != i+1 {
			t.Fatalf("create %d: active %d, %v", i, n, err)
		}
		ids = append(ids, r.ID)
	}
	// Another identity has its own bound.
	if _, err := s.CreateLimited(ctx, newRecord("bob"), max); err != nil {
		t.Fatalf("bob: %v", err)
	}
	refused := newRecord("alice")
	n, err := s.CreateLimited(ctx, refused, max)
	if !errors.Is(err, store.ErrTooManyActive) || n != max {
		t.Fatalf("over the bound: active %d, %v; want %d, ErrTooManyActive", n, err, max)
	}
	if _, err := s.Get(ctx, refused.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused task has a record: %v", err)
	}
	if list, _ := s.ListByOwner(ctx, "alice", 0); len(list) != max {
		t.Fatalf("the index has %d tasks, want %d", len(list), max)
	}

	// A running task still counts; each way a task ends frees its slot: completed,
	// failed, cancelled while queued, and a record that is gone (expired).
	if _, err := s.StartAttempt(ctx, ids[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateLimited(ctx, newRecord("alice"), max); !errors.Is(err, store.ErrTooManyActive) {
		t.Fatalf("running task not counted: %v", err)
	}
	free := []func(){
		func() { finish(t, s, ids[0], tasks.StateCompleted) },
		func() { finish(t, s, ids[1], tasks.StateFailed) },
		func() {
			if _, err := s.CancelQueued(ctx, ids[2], time.Now(), func(*tasks.Record, *store.Update) error { return nil }); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			// Expiry, for real: the record's TTL runs out.
			if err := rdb.PExpire(ctx, s.Keys().Task(ids[3]), time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 5*time.Second, "the record to expire", func() bool { return rdb.Exists(ctx, s.Keys().Task(ids[3])).Val() == 0 })
		},
	}
	for i, f := range free {
		f()
		r := newRecord("alice")
		n, err := s.CreateLimited(ctx, r, max)
		if err != nil || n != max {
			t.Fatalf("after freeing slot %d: active %d, %v", i, n, err)
		}
		if _, err := s.CreateLimited(ctx, newRecord("alice"), max); !errors.Is(err, store.ErrTooManyActive) {
			t.Fatalf("after refilling slot %d: %v", i, err)
		}
		ids[i] = r.ID
	}
	// The set holds no more ids than the bound, and expires with the records.
	if n := rdb.SCard(ctx, s.Keys().ActiveTasks("alice")).Val(); n != max {
		t.Fatalf("active set has %d ids, want %d", n, max)
	}
	if ttl := rdb.PTTL(ctx, s.Keys().ActiveTasks("alice")).Val(); ttl <= 0 || ttl > s.TTL() {
		t.Fatalf("active set TTL %v", ttl)
	}
	// No bound: plain Create.
	if n, err := s.CreateLimited(ctx, newRecord("alice"), 0); err != nil || n != 0 {
		t.Fatalf("unbounded: %d, %v", n, err)
	}
}

// TestCreateLimitedAcrossReplicas creates tasks for one identity from two clients
// (two server replicas) at once: exactly the bound gets through.
func TestCreateLimitedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var stores []*store.Store
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 20})
		t.Cleanup(func() { rdb.Close() })
		stores = append(stores, store.New(rdb, nil))
	}
	const max, tries = 5, 60
	var created, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].CreateLimited(context.Background(), newRecord("carol"), max)
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, store.ErrTooManyActive):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != max || refused.Load() != tries-max {
		t.Fatalf("created %d, refused %d; want %d and %d", created.Load(), refused.Load(), max, tries-max)
	}
}

func TestAllow(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	var stores []*store.Store
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		stores = append(stores, store.New(rdb, nil))
	}
	key := stores[0].Keys().CreateRate("alice")
	// A full bucket of 3, shared by both replicas; refilling at 2 per second.
	for i := range 3 {
		ok, wait, err := stores[i%2].Allow(ctx, key, 2, 3)
		if err != nil || !ok || wait != 0 {
			t.Fatalf("token %d: %v %v %v", i, ok, wait, err)
		}
	}
	ok, wait, err := stores[1].Allow(ctx, key, 2, 3)
	if err != nil || ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("empty bucket: ok %v, wait %v, %v (want refused, wait in (0, 500ms])", ok, wait, err)
	}
	// Other keys have their own buckets.
	if ok, _, _ := stores[0].Allow(ctx, stores[0].Keys().CreateRate("bob"), 2, 3); !ok {
		t.Fatal("bob's bucket is empty")
	}
	// The bucket refills at the rate: after the announced wait there is a token.
	time.Sleep(wait)
	if ok, w, err := stores[0].Allow(ctx, key, 2, 3); err != nil || !ok {
		t.Fatalf("after waiting %v: ok %v, wait %v, %v", wait, ok, w, err)
	}
	// The bucket expires when it would be full again.
	rdb := stores[0].Client()
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 2500*time.Millisecond {
		t.Fatalf("bucket TTL %v", ttl)
	}
	for _, bad := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {1, 0}} {
		if _, _, err := stores[0].Allow(ctx, key, bad.rate, bad.burst); err == nil {
			t.Errorf("rate %v burst %d accepted", bad.rate, bad.burst)
		}
	}
}

// TestAllowSustainedRate draws tokens as fast as possible for a while: the number
// granted is the burst plus what the rate refilled, never more.
func TestAllowSustainedRate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	key := s.Keys().CreateRate("dave")
	const rate, burst = 50.0, 5
	start := time.Now()
	granted := 0
	for time.Since(start) < 300*time.Millisecond {
		ok, _, err := s.Allow(ctx, key, rate, burst)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			granted++
		}
	}
	elapsed := time.Since(start).Seconds()
	if most := burst + int(rate*elapsed) + 1; granted > most || granted < burst {
		t.Fatalf("granted %d in %.3fs; want between %d and %d", granted, elapsed, burst, most)
	}
}
