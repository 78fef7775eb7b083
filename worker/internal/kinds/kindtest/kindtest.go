// Package kindtest runs kinds of task through the public worker SDK in a
// test: a worker in the test's process on the test bench's redis-server, tasks
// submitted as the server submits them, and helpers to read what the worker
// published. Every wait has a deadline.
package kindtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// Timeout bounds every wait of the helpers.
const Timeout = 60 * time.Second

// Start runs a worker with the kinds register registers against e's Redis
// until the test ends.
func Start(t testing.TB, e *testenv.Env, register func(w *worker.Worker)) {
	t.Helper()
	w, err := worker.New(worker.Options{
		RedisURL: "redis://" + e.Redis.Addr + "/0", Prefix: e.Prefix, Concurrency: 2,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("kindtest: new worker: %v", err)
	}
	register(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kindtest: worker: %v", err)
			}
		case <-time.After(Timeout):
			t.Errorf("kindtest: the worker did not stop within %v", Timeout)
		}
	})
}

// Submit creates the record of a task of kind with params (JSON) and queues
// it, as the server does; it returns the task's id.
func Submit(t testing.TB, e *testenv.Env, kind, params string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := &tasks.Record{
		ID: tasks.NewID(), Kind: tasks.Kind(kind), State: tasks.StateQueued, Owner: "tester",
		MaxAttempts: 3, Params: json.RawMessage(params), CreatedAt: time.Now().UTC(),
	}
	if err := e.Store.Create(ctx, rec); err != nil {
		t.Fatalf("kindtest: create: %v", err)
	}
	msg := &tasks.Message{ID: rec.ID, Kind: rec.Kind, Params: rec.Params, Owner: rec.Owner, EnqueuedAt: rec.CreatedAt}
	if err := e.Store.Enqueue(ctx, msg); err != nil {
		t.Fatalf("kindtest: enqueue: %v", err)
	}
	return rec.ID
}

// Names returns the names of the events of task id, in order, with the field
// field of each payload (the stage of task:stage events, the stream of
// task:stream ones), as "name" or "name field".
func Names(e *testenv.Env, id string) []string {
	var out []string
	for _, ev := range e.Events.Of(id) {
		s := ev.Name
		switch ev.Name {
		case "task:stage":
			s += " " + str(ev.Payload["stage"])
		case "task:stream":
			s += " " + str(ev.Payload["stream"])
		}
		out = append(out, s)
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Stages returns the stages task id went through, in order.
func Stages(e *testenv.Env, id string) []string {
	var out []string
	for _, ev := range e.Events.Of(id) {
		if ev.Name == "task:stage" {
			out = append(out, str(ev.Payload["stage"]))
		}
	}
	return out
}

// WaitEvent waits for an event of task id that match accepts.
func WaitEvent(t testing.TB, e *testenv.Env, id, what string, match func(testenv.Event) bool) {
	t.Helper()
	e.Events.Wait(t, Timeout, what, func(r *testenv.Recorder) bool {
		for _, ev := range r.Of(id) {
			if match(ev) {
				return true
			}
		}
		return false
	})
}

// Metadata decodes the metadata of rec.
func Metadata(t testing.TB, rec *tasks.Record) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Metadata, &m); err != nil {
		t.Fatalf("kindtest: metadata %q: %v", rec.Metadata, err)
	}
	return m
}

// Stream returns the kept items of stream name of task id.
func Stream(t testing.TB, e *testenv.Env, id, name string) []json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, err := e.Store.ReadStream(ctx, id, name, 0, 0)
	if err != nil {
		t.Fatalf("kindtest: read stream %s: %v", name, err)
	}
	return items.Items
}

// Result returns the stored result file of task id.
func Result(t testing.TB, e *testenv.Env, id string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := e.Store.OpenResult(ctx, id)
	if err != nil {
		t.Fatalf("kindtest: open result: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("kindtest: read result: %v", err)
	}
	return b
}

// Cancel asks the worker to cancel task id, as the server does.
func Cancel(t testing.TB, e *testenv.Env, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Store.RequestCancel(ctx, id); err != nil {
		t.Fatalf("kindtest: cancel: %v", err)
	}
}

// Schema returns the parameters schema the worker registered for kind,
// waiting for the registration.
func Schema(t testing.TB, e *testenv.Env, kind string) map[string]any {
	t.Helper()
	var info tasks.KindInfo
	testenv.Eventually(t, Timeout, "registration of kind "+kind, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := e.Store.Kind(ctx, kind)
		if err != nil || len(st.Versions) == 0 {
			return false
		}
		info = st.Versions[0].Info
		return true
	})
	var s map[string]any
	if err := json.Unmarshal(info.ParamsSchema, &s); err != nil {
		t.Fatalf("kindtest: schema of %s: %v", kind, err)
	}
	return s
}
