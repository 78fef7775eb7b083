package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// startWorker runs w until the test ends.
func startWorker(t *testing.T, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the worker did not stop within 30 s")
		}
	})
}

func newWorker(t *testing.T, e *testenv.Env) *worker.Worker {
	t.Helper()
	w, err := worker.New(worker.Options{
		RedisURL: e.Redis.URL, Prefix: e.Prefix, LeaseTimeout: 2 * time.Second, Concurrency: 4,
		ProgressMaxRate: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type sumParams struct {
	N     int    `json:"n" jsonschema:"required,minimum=1,maximum=1000"`
	Label string `json:"label" jsonschema:"default=sum"`
}

func TestEveryCallReachesRecordAndEvents(t *testing.T) {
	e := testenv.New(t)
	w := newWorker(t, e)
	worker.Handle(w, "sum", func(ctx context.Context, t *worker.Task, p sumParams) (*worker.Result, error) {
		if err := t.Stage(ctx, "adding", "Adding "+p.Label); err != nil {
			return nil, err
		}
		total := 0
		for i := 1; i <= p.N; i++ {
			total += i
			if err := t.Append(ctx, "partial", map[string]int{"i": i, "sum": total}); err != nil {
				return nil, err
			}
			if err := t.Progress(ctx, int64(i), int64(p.N)); err != nil {
				return nil, err
			}
		}
		if err := t.Append(ctx, "log", "done"); err != nil {
			return nil, err
		}
		if err := t.SetMetadata(ctx, map[string]any{"n": p.N, "label": p.Label}); err != nil {
			return nil, err
		}
		return worker.JSONResult(map[string]int{"sum": total}), nil
	})
	startWorker(t, w)

	// The kind is in the registry.
	testenv.Eventually(t, 10*time.Second, "registration", func() bool {
		k, err := e.Store.Kind(context.Background(), "sum")
		return err == nil && k.Workers() == 1
	})
	id := e.SubmitKind("sum", `{"n":50}`)
	rec := e.WaitFinal(id, 20*time.Second)
	if rec.State != tasks.StateCompleted || rec.Result == nil || string(rec.Result.Value) != `{"sum":1275}` ||
		rec.Result.ContentType != "application/json" {
		t.Fatalf("record %+v result %+v", rec, rec.Result)
	}
	if rec.Stage != "adding" || rec.StageMessage != "Adding sum" || string(rec.Metadata) != `{"label":"sum","n":50}` ||
		rec.Streams["partial"] != 50 || rec.Streams["log"] != 1 {
		t.Fatalf("record stage %q %q metadata %s streams %v", rec.Stage, rec.StageMessage, rec.Metadata, rec.Streams)
	}
	items, err := e.Store.ReadStream(context.Background(), id, "partial", 49, 0)
	if err != nil || len(items.Items) != 1 || string(items.Items[0]) != `{"i":50,"sum":1275}` {
		t.Fatalf("stream read %+v %v", items, err)
	}
	// Events: one seq per task across every event, increasing; every stream item
	// exactly once, in order, at its offset; every event with the attempt.
	evs := e.Events.Of(id)
	var last int64
	var got []int64
	names := map[string]int{}
	for _, ev := range evs {
		if ev.Seq <= last {
			t.Fatalf("seq %d after %d (%s)", ev.Seq, last, ev.Name)
		}
		last = ev.Seq
		names[ev.Name]++
		if testenv.Int(ev.Payload["attempt"]) != 1 {
			t.Fatalf("event %s without attempt 1: %v", ev.Name, ev.Payload)
		}
		if ev.Name == "task:stream" && ev.Payload["stream"] == "partial" {
			items, _ := ev.Payload["items"].([]any)
			if off := testenv.Int(ev.Payload["offset"]); off != int64(len(got)) {
				t.Fatalf("chunk at offset %d after %d items", off, len(got))
			}
			for _, it := range items {
				got = append(got, testenv.Int(it.(map[string]any)["i"]))
			}
		}
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("stream items %v", got)
		}
	}
	if len(got) != 50 || names["task:stage"] != 1 || names["task:metadata"] != 1 || names["task:completed"] != 1 {
		t.Fatalf("events %v, %d items", names, len(got))
	}
	final := e.Events.Final(id)
	res, _ := final.Payload["result"].(map[string]any)
	if v, _ := res["value"].(map[string]any); testenv.Int(v["sum"]) != 1275 {
		t.Fatalf("completed payload %v", final.Payload)
	}
}

type noParams struct{}

func TestBadInputAndBounds(t *testing.T) {
	e := testenv.New(t)
	w := newWorker(t, e)
	worker.Handle(w, "panics", func(ctx context.Context, t *worker.Task, p noParams) (*worker.Result, error) {
		panic("boom")
	})
	worker.Handle(w, "bounds", func(ctx context.Context, t *worker.Task, p noParams) (*worker.Result, error) {
		if err := t.SetMetadata(ctx, map[string]any{"big": strings.Repeat("x", tasks.MaxMetadataBytes)}); !errors.Is(err, worker.ErrMetadataTooLarge) {
			return nil, fmt.Errorf("metadata over the bound: %v", err)
		}
		if err := t.Append(ctx, "s", strings.Repeat("x", 70<<10)); !errors.Is(err, worker.ErrStreamItemsTooLarge) {
			return nil, fmt.Errorf("stream item over the bound: %v", err)
		}
		if err := t.Append(ctx, "Not A Name", 1); !errors.Is(err, worker.ErrInvalidName) {
			return nil, fmt.Errorf("bad stream name: %v", err)
		}
		if err := t.SetMetadata(ctx, map[string]any{"ok": true}); err != nil {
			return nil, err
		}
		return worker.JSONResult("fine"), nil
	})
	worker.Handle(w, "toolarge", func(ctx context.Context, t *worker.Task, p noParams) (*worker.Result, error) {
		out, err := t.CreateResult(ctx, "x.bin", "")
		if err != nil {
			return nil, err
		}
		if _, err := out.Write(make([]byte, 2048)); err != nil {
			return nil, err
		}
		return worker.FileResult(out), nil
	}, worker.ResultMaxBytes(1024))
	worker.Handle(w, "permanent", func(ctx context.Context, t *worker.Task, p noParams) (*worker.Result, error) {
		return nil, worker.Permanent("bad_upload", errors.New("the upload is not an image"))
	})
	startWorker(t, w)

	cases := []struct {
		kind, params, state, code string
	}{
		{"panics", `{}`, "failed", "internal_error"},
		{"bounds", `{}`, "completed", ""},
		{"toolarge", `{}`, "failed", "result_too_large"},
		{"permanent", `{}`, "failed", "bad_upload"},
		{"bounds", `{"unknown":1}`, "failed", "invalid_params"},
	}
	for _, c := range cases {
		id := e.SubmitKind(c.kind, c.params)
		rec := e.WaitFinal(id, 20*time.Second)
		code := ""
		if rec.Error != nil {
			code = rec.Error.Code
		}
		if string(rec.State) != c.state || code != c.code || rec.Attempts != 1 {
			t.Errorf("%s %s: state %s code %q attempts %d (%+v)", c.kind, c.params, rec.State, code, rec.Attempts, rec.Error)
		}
		if c.kind == "bounds" && c.state == "completed" && string(rec.Metadata) != `{"ok":true}` {
			t.Errorf("metadata after refused calls: %s", rec.Metadata)
		}
	}
}

func TestProgrammerErrors(t *testing.T) {
	w, err := worker.New(worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fn := func(context.Context, *worker.Task, noParams) (*worker.Result, error) { return nil, nil }
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	worker.Handle(w, "ok", fn)
	mustPanic("duplicate kind", func() { worker.Handle(w, "ok", fn) })
	mustPanic("empty kind", func() { worker.Handle(w, "", fn) })
	mustPanic("upper case kind", func() { worker.Handle(w, "Thumb", fn) })
	mustPanic("params not a struct", func() {
		worker.Handle(w, "ints", func(context.Context, *worker.Task, int) (*worker.Result, error) { return nil, nil })
	})

	// A schema that does not compile keeps Run from starting, with a message.
	type badParams struct {
		S string `json:"s" jsonschema:"pattern=(["`
	}
	w2, _ := worker.New(worker.Options{})
	worker.Handle(w2, "bad", func(context.Context, *worker.Task, badParams) (*worker.Result, error) { return nil, nil })
	err = w2.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `kind "bad"`) || !strings.Contains(err.Error(), "does not compile") {
		t.Fatalf("Run with a broken schema: %v", err)
	}
	w3, _ := worker.New(worker.Options{})
	if err := w3.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no kind") {
		t.Fatalf("Run without kinds: %v", err)
	}
	if _, err := worker.New(worker.Options{Concurrency: 1000}); err == nil || !strings.Contains(err.Error(), "WORKER_CONCURRENCY") {
		t.Fatalf("bad option: %v", err)
	}
}
