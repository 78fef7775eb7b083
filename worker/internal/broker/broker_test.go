package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

var keys = store.Keys{Prefix: "btest"}

// processor is a TaskProcessor for tests: it records what it gets and settles
// with decide, which may block.
type processor struct {
	b      *Broker
	decide func(sig *mtasks.Signature, n int) Outcome

	mu    sync.Mutex
	seen  map[string]int
	order []string
	got   chan string
}

func newProcessor(decide func(sig *mtasks.Signature, n int) Outcome) *processor {
	return &processor{decide: decide, seen: map[string]int{}, got: make(chan string, 1000)}
}

func (p *processor) Process(sig *mtasks.Signature) error {
	p.mu.Lock()
	p.seen[sig.UUID]++
	n := p.seen[sig.UUID]
	p.order = append(p.order, sig.UUID)
	p.mu.Unlock()
	p.got <- sig.UUID
	o := Ack
	if p.decide != nil {
		o = p.decide(sig, n)
	}
	p.b.Settle(sig, o)
	return nil
}

func (p *processor) CustomQueue() string     { return "" }
func (p *processor) PreConsumeHandler() bool { return true }

func (p *processor) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id]
}

// expect waits for the processor to get id.
func (p *processor) expect(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-p.got:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("task %s not processed within %v (seen %v)", id, timeout, p.seen)
		}
	}
}

type rejection struct {
	id   string
	info tasks.ErrorInfo
}

// consumer runs a broker with concurrency slots until the test ends.
type consumer struct {
	b        *Broker
	p        *processor
	rejected chan rejection
	lost     chan string
	done     chan struct{}
}

func startConsumer(t *testing.T, addr string, name string, concurrency int, lease time.Duration, p *processor) *consumer {
	t.Helper()
	return startConsumerKinds(t, addr, name, concurrency, lease, p, []tasks.Kind{tasks.KindExport})
}

func startConsumerKinds(t *testing.T, addr string, name string, concurrency int, lease time.Duration, p *processor, kinds []tasks.Kind) *consumer {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	c := &consumer{p: p, rejected: make(chan rejection, 100), lost: make(chan string, 100), done: make(chan struct{})}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("consumer", name)
	}
	c.b = New(rdb, Options{
		Keys: keys, Lease: lease, Block: 200 * time.Millisecond, PromoteEvery: 50 * time.Millisecond, Logger: log,
		Reject: func(_ context.Context, id string, info tasks.ErrorInfo) error {
			c.rejected <- rejection{id, info}
			return nil
		},
		LeaseLost: func(id string) { c.lost <- id },
		Kinds:     kinds,
	})
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	c.b.SetRegisteredTaskNames(names)
	p.b = c.b
	go func() {
		defer close(c.done)
		_, _ = c.b.StartConsuming(name, concurrency, p)
	}()
	t.Cleanup(func() {
		c.stop(t)
		rdb.Close()
	})
	return c
}

func (c *consumer) stop(t *testing.T) {
	stopped := make(chan struct{})
	go func() { c.b.StopConsuming(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Errorf("broker did not stop within 20 s")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func add(t *testing.T, rdb *redis.Client, values ...any) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Queue(tasks.KindExport), Values: values}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// enqueue adds a valid task message and returns the task id.
func enqueue(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	id := tasks.NewID()
	m := &tasks.Message{ID: id, Kind: tasks.KindExport, Params: []byte(`{"rows":1}`), Owner: "o", EnqueuedAt: time.Now()}
	b, _ := m.Encode()
	add(t, rdb, store.QueueField, b)
	return id
}

func client(t *testing.T, srv *redistest.Server) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func pendingOf(t *testing.T, rdb *redis.Client, consumer string) int {
	t.Helper()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: keys.Queue(tasks.KindExport), Group: store.QueueGroup, Start: "-", End: "+", Count: 100, Consumer: consumer,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

func TestMalformedEntriesDoNotStopTheNextTask(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	p := newProcessor(nil)
	c := startConsumer(t, srv.Addr, "a", 1, 2*time.Second, p)

	badID := tasks.NewID()
	add(t, rdb, store.QueueField, "{garbage")
	add(t, rdb, "not-the-task-field", "1")
	add(t, rdb, store.QueueField, fmt.Sprintf(`{"id":%q,"kind":"export","params":["many"]}`, badID))
	add(t, rdb, store.QueueField, fmt.Sprintf(`{"id":%q,"kind":"teleport","params":{}}`, tasks.NewID()))
	good := enqueue(t, rdb)

	p.expect(t, good, 10*time.Second)
	var rej []rejection
	for len(rej) < 4 {
		select {
		case r := <-c.rejected:
			rej = append(rej, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d rejections: %v", len(rej), rej)
		}
	}
	var withID int
	for _, r := range rej {
		// A kind that no worker of this stream serves is refused as such; the
		// rest cannot be read as a task.
		if want := CodeMalformed; r.info.Code != want && !(r.info.Code == CodeUnknownKind && strings.Contains(r.info.Message, "teleport")) {
			t.Errorf("rejection %+v: code %q", r, r.info.Code)
		}
		if r.id == badID {
			withID++
			if !strings.Contains(r.info.Message, "params must be a JSON object") {
				t.Errorf("rejection message %q does not say what is wrong", r.info.Message)
			}
		}
	}
	if withID != 1 {
		t.Fatalf("the readable id was not passed on: %v", rej)
	}
	testenv.Eventually(t, 10*time.Second, "empty stream", func() bool {
		n, _ := rdb.XLen(context.Background(), keys.Queue(tasks.KindExport)).Result()
		return n == 0 && pendingOf(t, rdb, "a") == 0
	})
}

func TestRedisRestartWithoutData(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	p := newProcessor(nil)
	c := startConsumer(t, srv.Addr, "a", 2, 2*time.Second, p)

	first := enqueue(t, rdb)
	p.expect(t, first, 10*time.Second)
	// An outage of two seconds, then a Redis with an empty dataset: the stream
	// and the group are gone.
	srv.Stop()
	time.Sleep(2 * time.Second) // the length of the outage, not a synchronisation
	srv.Restart()
	// The broker creates the group again; tasks queued after the restart run.
	for range 3 {
		id := enqueue(t, rdb)
		p.expect(t, id, 20*time.Second)
	}
	// It waited between failed reads instead of spinning.
	s := c.b.Stats()
	if s.ReadFailures == 0 || s.ReadFailures > 30 {
		t.Fatalf("%d failed reads during a 2 s outage", s.ReadFailures)
	}
}

func TestRedisRestartKeepsRunningEntries(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := client(t, srv)
	release := make(chan struct{})
	p := newProcessor(func(sig *mtasks.Signature, n int) Outcome {
		if n == 1 {
			<-release
		}
		return Ack
	})
	startConsumer(t, srv.Addr, "a", 2, 2*time.Second, p)

	running := enqueue(t, rdb)
	p.expect(t, running, 10*time.Second)
	srv.Restart() // the data survive (append-only file)
	later := enqueue(t, rdb)
	p.expect(t, later, 20*time.Second)
	close(release)
	testenv.Eventually(t, 20*time.Second, "empty stream", func() bool {
		n, err := rdb.XLen(context.Background(), keys.Queue(tasks.KindExport)).Result()
		return err == nil && n == 0
	})
	if n := p.count(running); n != 1 {
		t.Fatalf("the running task was delivered %d times", n)
	}
}

func TestNoPrefetchBeyondFreeSlots(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	release := make(chan struct{})
	block := func(*mtasks.Signature, int) Outcome { <-release; return Ack }
	a := newProcessor(block)
	startConsumer(t, srv.Addr, "a", 1, 10*time.Second, a)
	var ids []string
	for range 4 {
		ids = append(ids, enqueue(t, rdb))
	}
	a.expect(t, ids[0], 10*time.Second)
	// A is busy with one task and holds nothing else: a second consumer gets the
	// next one.
	b := newProcessor(block)
	startConsumer(t, srv.Addr, "b", 1, 10*time.Second, b)
	b.expect(t, ids[1], 10*time.Second)
	if n := pendingOf(t, rdb, "a"); n != 1 {
		t.Fatalf("consumer a holds %d entries, want 1", n)
	}
	if n := pendingOf(t, rdb, "b"); n != 1 {
		t.Fatalf("consumer b holds %d entries, want 1", n)
	}
	groups, err := rdb.XInfoGroups(context.Background(), keys.Queue(tasks.KindExport)).Result()
	if err != nil || len(groups) != 1 || groups[0].Lag != 2 {
		t.Fatalf("groups %+v %v: want 2 entries not yet read", groups, err)
	}
	close(release)
	// Whichever frees first takes the rest; each task runs once.
	testenv.Eventually(t, 10*time.Second, "all four tasks run", func() bool {
		for _, id := range ids {
			if a.count(id)+b.count(id) != 1 {
				return false
			}
		}
		return true
	})
}

func TestLeaseIsRenewedWhileRunning(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	lease := 600 * time.Millisecond
	release := make(chan struct{})
	a := newProcessor(func(*mtasks.Signature, int) Outcome { <-release; return Ack })
	startConsumer(t, srv.Addr, "a", 1, lease, a)
	long := enqueue(t, rdb)
	a.expect(t, long, 10*time.Second)
	// Another consumer runs tasks for five leases; the long task is never taken
	// from a.
	b := newProcessor(nil)
	startConsumer(t, srv.Addr, "b", 2, lease, b)
	deadline := time.Now().Add(5 * lease)
	for time.Now().Before(deadline) {
		id := enqueue(t, rdb)
		b.expect(t, id, 10*time.Second)
	}
	close(release)
	testenv.Eventually(t, 10*time.Second, "entry settled", func() bool { return pendingOf(t, rdb, "a") == 0 })
	if n := b.count(long); n != 0 {
		t.Fatalf("the running task was taken over %d times", n)
	}
}

func TestEntriesOfALostConsumerAreTakenOver(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, keys.Queue(tasks.KindExport), store.QueueGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, rdb)
	// A consumer reads it and dies without a heartbeat.
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: store.QueueGroup, Consumer: "ghost", Streams: []string{keys.Queue(tasks.KindExport), ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	lease := 500 * time.Millisecond
	p := newProcessor(nil)
	c := startConsumer(t, srv.Addr, "a", 1, lease, p)
	p.expect(t, id, 10*time.Second)
	testenv.Eventually(t, 10*time.Second, "entry settled", func() bool { return pendingOf(t, rdb, "ghost") == 0 })
	if s := c.b.Stats(); s.Reclaimed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLeaseLostIsReported(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	release := make(chan struct{})
	p := newProcessor(func(*mtasks.Signature, int) Outcome { <-release; return HandBack })
	c := startConsumer(t, srv.Addr, "a", 1, 600*time.Millisecond, p)
	id := enqueue(t, rdb)
	p.expect(t, id, 10*time.Second)
	// Another consumer takes the entry (as if a's heartbeats had stopped).
	entries, err := rdb.XRange(context.Background(), keys.Queue(tasks.KindExport), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatal(entries, err)
	}
	if err := rdb.XClaim(context.Background(), &redis.XClaimArgs{Stream: keys.Queue(tasks.KindExport), Group: store.QueueGroup, Consumer: "thief", Messages: []string{entries[0].ID}}).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-c.lost:
		if got != id {
			t.Fatalf("lease lost for %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lease loss not reported")
	}
	close(release)
	// The hand-back of an entry that is no longer ours does nothing.
	testenv.Eventually(t, 10*time.Second, "settled", func() bool { return c.b.Stats().InFlight == 0 })
	if n, _ := rdb.XLen(context.Background(), keys.Queue(tasks.KindExport)).Result(); n != 1 || pendingOf(t, rdb, "thief") != 1 {
		t.Fatalf("stream has %d entries; the thief's entry must stay its own", n)
	}
}

func TestHandBackAndRetry(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	p := newProcessor(func(sig *mtasks.Signature, n int) Outcome {
		switch n {
		case 1:
			return HandBack
		case 2:
			return RetryAt(time.Now().Add(300 * time.Millisecond))
		}
		return Ack
	})
	c := startConsumer(t, srv.Addr, "a", 1, 2*time.Second, p)
	id := enqueue(t, rdb)
	for range 3 {
		p.expect(t, id, 10*time.Second)
	}
	testenv.Eventually(t, 10*time.Second, "all settled", func() bool {
		n, _ := rdb.XLen(context.Background(), keys.Queue(tasks.KindExport)).Result()
		z, _ := rdb.ZCard(context.Background(), keys.Delayed()).Result()
		return n == 0 && z == 0 && c.b.Stats().InFlight == 0
	})
	s := c.b.Stats()
	if s.HandedBack != 1 || s.Delayed != 1 || s.Promoted != 1 || s.Delivered != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPublish(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	b := New(rdb, Options{Keys: keys})
	id := tasks.NewID()
	sig := &mtasks.Signature{UUID: id, Name: "export", Args: []mtasks.Arg{{Type: "string", Value: `{"rows":3}`}},
		Headers: mtasks.Headers{HeaderOwner: "alice"}}
	if err := b.Publish(context.Background(), sig); err != nil {
		t.Fatal(err)
	}
	pending, err := b.GetPendingTasks("")
	if err != nil || len(pending) != 1 || pending[0].UUID != id || Owner(pending[0]) != "alice" {
		t.Fatalf("pending %v %v", pending, err)
	}
	eta := time.Now().Add(time.Hour)
	sig2 := *sig
	sig2.UUID = tasks.NewID()
	sig2.ETA = &eta
	if err := b.Publish(context.Background(), &sig2); err != nil {
		t.Fatal(err)
	}
	delayed, err := b.GetDelayedTasks()
	if err != nil || len(delayed) != 1 || delayed[0].UUID != sig2.UUID || delayed[0].ETA.UnixMilli() != eta.UnixMilli() {
		t.Fatalf("delayed %v %v", delayed, err)
	}
	bad := *sig
	bad.UUID = "task_not-an-id"
	if err := b.Publish(context.Background(), &bad); err == nil {
		t.Fatal("published a signature without a task id")
	}
}

// queueMessage adds a valid message of kind to stream and returns the task id.
func queueMessage(t *testing.T, rdb *redis.Client, stream string, kind tasks.Kind) string {
	t.Helper()
	id := tasks.NewID()
	m := &tasks.Message{ID: id, Kind: kind, Params: []byte(`{}`), Owner: "o", EnqueuedAt: time.Now()}
	b, _ := m.Encode()
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []any{store.QueueField, b}}).Err(); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestKindsHaveTheirOwnQueues(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	thumbs := newProcessor(nil)
	reports := newProcessor(nil)
	startConsumerKinds(t, srv.Addr, "thumbs", 2, 2*time.Second, thumbs, []tasks.Kind{"thumbnail", "resize"})
	startConsumerKinds(t, srv.Addr, "reports", 1, 2*time.Second, reports, []tasks.Kind{"report"})

	var thumbIDs, reportIDs []string
	for range 5 {
		thumbIDs = append(thumbIDs, queueMessage(t, rdb, keys.Queue("thumbnail"), "thumbnail"))
		thumbIDs = append(thumbIDs, queueMessage(t, rdb, keys.Queue("resize"), "resize"))
		reportIDs = append(reportIDs, queueMessage(t, rdb, keys.Queue("report"), "report"))
	}
	// Tasks queued by a server of the previous release, on its one stream, go to
	// the workers of their kind.
	thumbIDs = append(thumbIDs, queueMessage(t, rdb, keys.LegacyQueue(), "thumbnail"))
	reportIDs = append(reportIDs, queueMessage(t, rdb, keys.LegacyQueue(), "report"))
	testenv.Eventually(t, 10*time.Second, "every task processed", func() bool {
		for _, id := range thumbIDs {
			if thumbs.count(id) == 0 {
				return false
			}
		}
		for _, id := range reportIDs {
			if reports.count(id) == 0 {
				return false
			}
		}
		return true
	})
	for _, id := range thumbIDs {
		if reports.count(id) != 0 || thumbs.count(id) != 1 {
			t.Fatalf("thumbnail task %s ran %d times here, %d times on the report worker", id, thumbs.count(id), reports.count(id))
		}
	}
	for _, id := range reportIDs {
		if thumbs.count(id) != 0 || reports.count(id) != 1 {
			t.Fatalf("report task %s ran %d times on the report worker, %d on the other", id, reports.count(id), thumbs.count(id))
		}
	}
	testenv.Eventually(t, 10*time.Second, "every stream empty", func() bool {
		for _, k := range []string{keys.Queue("thumbnail"), keys.Queue("resize"), keys.Queue("report"), keys.LegacyQueue()} {
			if n, _ := rdb.XLen(context.Background(), k).Result(); n != 0 {
				return false
			}
		}
		return true
	})
}
