package taskservice_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// clock is a settable time source for the registry cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, cfg taskservice.Config) (*taskservice.Service, *store.Store, *clock) {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	clk := &clock{now: time.Now()}
	cfg.Store, cfg.Now = st, clk.Now
	return taskservice.New(cfg), st, clk
}

func counter(hash string, maxN int) tasks.KindInfo {
	schema := `{"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":` + itoa(maxN) + `}},"required":["n"],"additionalProperties":false}`
	return tasks.KindInfo{Name: "counter", ParamsSchema: json.RawMessage(schema), SchemaHash: hash, TotalParam: "n"}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestRegistryCache checks what the cache of the registry promises: a known
// kind is read at most once per TTL, a new kind is usable at once, and a new
// version of a kind is used once the TTL has passed.
func TestRegistryCache(t *testing.T) {
	svc, st, clk := newService(t, taskservice.Config{KindsCacheTTL: time.Second})
	ctx := context.Background()
	kindtest.RegisterExport(t, st)

	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"export","params":{"rows":5}}`)); err != nil {
		t.Fatal(err)
	}
	// A kind registered after the cache was filled is usable at once.
	kindtest.Register(t, st, "w1", counter("v1", 10))
	rec, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":7}}`))
	if err != nil || rec.SchemaHash != "v1" || rec.Total != 7 {
		t.Fatalf("new kind: %+v %v", rec, err)
	}
	// Once the cache holds the kind, a new version with more workers is used
	// after the TTL, not before.
	clk.Add(time.Second)
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":8}}`)); err != nil {
		t.Fatal(err)
	}
	kindtest.Register(t, st, "w2", counter("v2", 100))
	kindtest.Register(t, st, "w3", counter("v2", 100))
	var pe *taskservice.ParamsError
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":50}}`)); !errors.As(err, &pe) {
		t.Fatalf("within the TTL, checked against the cached version: %v", err)
	}
	clk.Add(time.Second)
	rec, err = svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":50}}`))
	if err != nil || rec.SchemaHash != "v2" {
		t.Fatalf("after the TTL: %+v %v", rec, err)
	}
	// Workers gone: seen after the TTL, and the task is still accepted.
	for _, w := range []string{"w1", "w2", "w3"} {
		v := "v2"
		if w == "w1" {
			v = "v1"
		}
		if err := st.UnregisterKinds(ctx, w, []tasks.KindInfo{counter(v, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Second)
	rec, err = svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":3}}`))
	if err != nil || !rec.NoLiveWorker {
		t.Fatalf("no live worker: %+v %v", rec, err)
	}
	got, err := svc.Get(ctx, "o", rec.ID)
	if err != nil || !got.NoLiveWorker || got.SchemaHash == "" {
		t.Fatalf("stored record %+v %v", got, err)
	}
}

func TestCreateErrors(t *testing.T) {
	svc, st, _ := newService(t, taskservice.Config{KindsCacheTTL: -1, MaxAttempts: 4})
	ctx := context.Background()
	kindtest.RegisterExport(t, st)
	info := counter("v1", 10)
	info.MaxAttempts = 9
	kindtest.Register(t, st, "w1", info)

	var uk *taskservice.UnknownKindError
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"nope","params":{}}`)); !errors.As(err, &uk) || uk.Kind != "nope" ||
		len(uk.Known) != 2 || uk.Known[0] != "counter" || uk.Known[1] != "export" || !errors.Is(err, taskservice.ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	var pe *taskservice.ParamsError
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":11,"m":1}}`)); !errors.As(err, &pe) ||
		len(pe.Details) != 2 || pe.Details[0].Field != "params.m" || pe.Details[1].Field != "params.n" || !errors.Is(err, taskservice.ErrInvalidParams) {
		t.Fatalf("invalid params: %v", err)
	}
	var ve *tasks.ValidationError
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":1},"socketId":"a b"}`)); !errors.As(err, &ve) || ve.Field != "socketId" {
		t.Fatalf("socket id: %v", err)
	}
	rec, err := svc.Create(ctx, "o", []byte(`{"kind":"counter","params":{"n":1}}`))
	if err != nil || rec.MaxAttempts != 9 {
		t.Fatalf("kind's max attempts: %+v %v", rec, err)
	}
	rec, err = svc.Create(ctx, "o", []byte(`{"kind":"export","params":{"rows":1}}`))
	if err != nil || rec.MaxAttempts != 4 {
		t.Fatalf("server's max attempts: %+v %v", rec, err)
	}
	// Nothing but the accepted tasks was queued.
	n, err := st.Client().XLen(ctx, st.Keys().Queue("counter")).Result()
	if err != nil || n != 1 {
		t.Fatalf("%d queued, %v", n, err)
	}
}

func TestKindsWhenRedisIsDown(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	kindtest.RegisterExport(t, st)
	svc := taskservice.New(taskservice.Config{Store: st})
	rs.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := svc.Kinds(ctx); !errors.Is(err, taskservice.ErrUnavailable) {
		t.Fatalf("kinds: %v", err)
	}
	if _, err := svc.Create(ctx, "o", []byte(`{"kind":"export","params":{"rows":1}}`)); !errors.Is(err, taskservice.ErrUnavailable) {
		t.Fatalf("create: %v", err)
	}
}

// TestConcurrentCreates creates tasks from many goroutines while the registry
// cache is empty, then stale: every creation sees the kind.
func TestConcurrentCreates(t *testing.T) {
	svc, st, clk := newService(t, taskservice.Config{})
	kindtest.RegisterExport(t, st)
	ctx := context.Background()
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.Create(ctx, "o", []byte(`{"kind":"export","params":{"rows":2}}`)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		clk.Add(2 * time.Second)
	}
	if n, err := st.Client().XLen(ctx, st.Keys().Queue(tasks.KindExport)).Result(); err != nil || n != 32 {
		t.Fatalf("%d queued, %v", n, err)
	}
}
