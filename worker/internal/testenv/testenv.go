// Package testenv is the test bench of the worker's tests: a real redis-server,
// the task store, a way to submit tasks as the server does, and a recorder of the
// events the worker publishes, decoded with the wire codec as a Socket.IO server
// would decode them. Every wait has a deadline and fails the test with what it saw.
package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// Env is one test's Redis with helpers.
type Env struct {
	T      testing.TB
	Redis  *redistest.Server
	Client *redis.Client
	Store  *store.Store
	Events *Recorder
	// Prefix is the store prefix; the worker under test must use the same.
	Prefix string
}

// New starts a redis-server (extra arguments go to it) and an event recorder.
func New(t testing.TB, redisArgs ...string) *Env {
	t.Helper()
	srv := redistest.Start(t, redisArgs...)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 5, MinRetryBackoff: 50 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	e := &Env{T: t, Redis: srv, Client: rdb, Prefix: "twtest", Store: store.New(rdb, &store.Options{Prefix: "twtest"})}
	e.Events = Record(t, srv.Addr, wire.DefaultKey)
	return e
}

// Create creates the record of a queued export of rows rows, as the server does,
// without queueing it. mutate, when not nil, changes the record first.
func (e *Env) Create(rows int, mutate func(*tasks.Record)) string {
	e.T.Helper()
	rec := e.newRecord(rows, mutate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Store.Create(ctx, rec); err != nil {
		e.T.Fatalf("testenv: create: %v", err)
	}
	return rec.ID
}

// Submit creates the record of an export of rows rows and queues it, as the server
// does. mutate, when not nil, changes the record before it is created.
func (e *Env) Submit(rows int, mutate func(*tasks.Record)) string {
	e.T.Helper()
	rec := e.newRecord(rows, mutate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Store.Create(ctx, rec); err != nil {
		e.T.Fatalf("testenv: create: %v", err)
	}
	e.Enqueue(rec.ID, rows)
	return rec.ID
}

// Enqueue queues the export of task id, whose record exists.
func (e *Env) Enqueue(id string, rows int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	params := []byte(fmt.Sprintf(`{"rows":%d}`, rows))
	msg := &tasks.Message{ID: id, Kind: tasks.KindExport, Params: params, Owner: "tester", EnqueuedAt: time.Now().UTC()}
	if err := e.Store.Enqueue(ctx, msg); err != nil {
		e.T.Fatalf("testenv: enqueue: %v", err)
	}
}

// SubmitKind creates the record of a task of kind with params (JSON) and queues
// it, as the server does.
func (e *Env) SubmitKind(kind, params string) string {
	e.T.Helper()
	rec := &tasks.Record{
		ID: tasks.NewID(), Kind: tasks.Kind(kind), State: tasks.StateQueued, Owner: "tester",
		MaxAttempts: 3, Params: []byte(params), CreatedAt: time.Now().UTC(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Store.Create(ctx, rec); err != nil {
		e.T.Fatalf("testenv: create: %v", err)
	}
	msg := &tasks.Message{ID: rec.ID, Kind: rec.Kind, Params: rec.Params, Owner: "tester", EnqueuedAt: time.Now().UTC()}
	if err := e.Store.Enqueue(ctx, msg); err != nil {
		e.T.Fatalf("testenv: enqueue: %v", err)
	}
	return rec.ID
}

func (e *Env) newRecord(rows int, mutate func(*tasks.Record)) *tasks.Record {
	rec := &tasks.Record{
		ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: "tester",
		Total: int64(rows), MaxAttempts: 3, Params: []byte(fmt.Sprintf(`{"rows":%d}`, rows)), CreatedAt: time.Now().UTC(),
	}
	if mutate != nil {
		mutate(rec)
	}
	return rec
}

// Record returns the record of task id, failing the test when it cannot.
func (e *Env) Record(id string) *tasks.Record {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := e.Store.Get(ctx, id)
	if err != nil {
		e.T.Fatalf("testenv: get %s: %v", id, err)
	}
	return rec
}

// WaitFinal waits for the final event of task id and returns the record.
func (e *Env) WaitFinal(id string, timeout time.Duration) *tasks.Record {
	e.T.Helper()
	e.Events.Wait(e.T, timeout, "final event of "+id, func(r *Recorder) bool { return r.Final(id) != nil })
	return e.Record(id)
}

// Event is one event the worker published, as a server decodes it.
type Event struct {
	Name    string
	Room    string
	TaskID  string
	Seq     int64
	Payload map[string]any
	At      time.Time
}

// Recorder subscribes to every broadcast of the main namespace and keeps the
// task events in order.
type Recorder struct {
	mu      sync.Mutex
	events  []Event
	totals  map[string]int
	changed chan struct{}
	bad     []string
}

// Record starts a recorder on the Redis at addr, for channel prefix key.
func Record(t testing.TB, addr, key string) *Recorder {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ch := wire.Channels{Key: key, Nsp: "/"}
	ctx, cancel := context.WithCancel(context.Background())
	ps := rdb.PSubscribe(ctx, ch.BroadcastPattern())
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("testenv: psubscribe: %v", err)
	}
	r := &Recorder{changed: make(chan struct{}), totals: make(map[string]int)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel(redis.WithChannelSize(10000)) {
			r.add(ch, m)
		}
	}()
	t.Cleanup(func() {
		cancel()
		ps.Close()
		<-done
		rdb.Close()
	})
	return r
}

// eventData reads the event data ([event, args...]) of a broadcast, the msgpack
// array [uid, {type, data, nsp}, opts].
func eventData(payload []byte) ([]any, error) {
	var msg []any
	if err := msgpack.Unmarshal(payload, &msg); err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	if len(msg) != 3 {
		return nil, fmt.Errorf("broadcast: %d elements, want 3", len(msg))
	}
	pkt, ok := msg[1].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("broadcast: packet is %T", msg[1])
	}
	data, ok := pkt["data"].([]any)
	if !ok {
		return nil, fmt.Errorf("broadcast: data is %T", pkt["data"])
	}
	return data, nil
}

func (r *Recorder) add(ch wire.Channels, m *redis.Message) {
	data, err := eventData([]byte(m.Payload))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		return
	}
	room, _ := ch.RoomOf(m.Channel)
	ev := Event{Room: room, At: time.Now()}
	if len(data) > 0 {
		ev.Name, _ = data[0].(string)
	}
	if len(data) > 1 {
		ev.Payload, _ = data[1].(map[string]any)
	}
	ev.TaskID, _ = ev.Payload["taskId"].(string)
	ev.Seq = Int(ev.Payload["seq"])
	r.events = append(r.events, ev)
	r.totals[ev.Name]++
	close(r.changed)
	r.changed = make(chan struct{})
}

// Int converts a decoded msgpack number to int64.
func Int(v any) int64 {
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	case float64:
		return int64(n)
	case float32:
		return int64(n)
	case int:
		return int64(n)
	}
	return -1
}

// Float converts a decoded msgpack number to float64.
func Float(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	}
	return float64(Int(v))
}

// Of returns the events of task id to its room, in order (not the inbox:item
// its owner gets when it ends; see Inbox).
func (r *Recorder) Of(id string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.TaskID == id && e.Name != events.InboxItem {
			out = append(out, e)
		}
	}
	return out
}

// Inbox returns the inbox:item events of task id, in order.
func (r *Recorder) Inbox(id string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.TaskID == id && e.Name == events.InboxItem {
			out = append(out, e)
		}
	}
	return out
}

// All returns every event so far.
func (r *Recorder) All() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Malformed returns the decoding errors of messages that were not broadcasts.
func (r *Recorder) Malformed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// Total returns how many events called name were published, for all tasks.
func (r *Recorder) Total(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.totals[name]
}

// Count returns how many events called name task id got.
func (r *Recorder) Count(id, name string) int {
	n := 0
	for _, e := range r.Of(id) {
		if e.Name == name {
			n++
		}
	}
	return n
}

// Final returns the first final event of task id, or nil.
func (r *Recorder) Final(id string) *Event {
	for _, e := range r.Of(id) {
		switch e.Name {
		case "task:completed", "task:failed", "task:cancelled":
			return &e
		}
	}
	return nil
}

// Wait waits until cond holds, failing t after timeout with what it saw.
func (r *Recorder) Wait(t testing.TB, timeout time.Duration, what string, cond func(*Recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("testenv: no %s within %v; events seen:\n%s", what, timeout, r.Dump())
		}
	}
}

// Dump returns the events as text, for failure messages.
func (r *Recorder) Dump() string {
	var b strings.Builder
	for _, e := range r.All() {
		fmt.Fprintf(&b, "  %s %s seq=%d %v\n", e.TaskID, e.Name, e.Seq, e.Payload)
	}
	return b.String()
}

// Eventually polls cond every 20 ms until it holds, failing t after timeout. It is
// for states that publish no event (queue lengths, keys); events are awaited with
// Recorder.Wait.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: no %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
