package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/config"
	"github.com/taskwire/taskwire/worker/internal/export"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// worker is a worker running in the test process.
type worker struct {
	info   Info
	cancel context.CancelFunc
	done   chan error
}

func (w *worker) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30 s")
	}
}

// start runs a worker on e with env on top of the test defaults.
func start(t *testing.T, e *testenv.Env, env map[string]string, opts Options) *worker {
	t.Helper()
	base := map[string]string{
		"REDIS_URL":            e.Redis.URL,
		"TASKWIRE_PREFIX":      e.Prefix,
		"METRICS_ADDR":         "127.0.0.1:0",
		"WORKER_LEASE_TIMEOUT": "2s",
		"LOG_LEVEL":            "debug",
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := loadConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	opts.Config = cfg
	if len(opts.Kinds) == 0 {
		info := tasks.KindInfo{Name: "export", ParamsSchema: []byte(`{"type":"object"}`)}
		info.SchemaHash = info.Hash()
		opts.Kinds = []Kind{{Info: info, Run: runner.Kind{
			Handler: NewExportHandler(e.Store, HandlerOptions{MaxBytes: cfg.ResultMaxBytes, RowDelay: cfg.ExportRowDelay}),
		}}}
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	started := make(chan Info, 1)
	opts.Started = func(i Info) { started <- i }
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- Run(ctx, opts) }()
	select {
	case w.info = <-started:
	case err := <-w.done:
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not start within 10 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
		}
	})
	return w
}

// testLogger logs to the test log when -v is given, and keeps quiet otherwise.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewJSONHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func readResult(t *testing.T, e *testenv.Env, id string) []byte {
	t.Helper()
	rc, err := e.Store.OpenResult(context.Background(), id)
	if err != nil {
		t.Fatalf("open result: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportEndToEnd(t *testing.T) {
	e := testenv.New(t)
	start(t, e, map[string]string{"EXPORT_ROW_DELAY": "100us"}, Options{})
	id := e.Submit(5000, nil)
	rec := e.WaitFinal(id, 30*time.Second)
	if rec.State != tasks.StateCompleted || rec.Attempts != 1 || rec.Percent != 100 || rec.Done != 5000 || rec.FinishedAt == nil {
		t.Fatalf("record %+v", rec)
	}
	if rec.Result == nil || rec.Result.URL != "/api/v1/tasks/"+id+"/result" || rec.Result.Rows != 5000 || rec.Result.ContentType != ContentType {
		t.Fatalf("result %+v", rec.Result)
	}
	body := readResult(t, e, id)
	if int64(len(body)) != rec.Result.Bytes {
		t.Fatalf("result has %d bytes, record says %d", len(body), rec.Result.Bytes)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 5001 {
		t.Fatalf("csv: %d records, %v", len(rows), err)
	}
	// The file is the export of this task id, whoever generates it.
	var want bytes.Buffer
	if _, err := export.Write(context.Background(), &want, id, 5000, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want.Bytes()) {
		t.Fatal("the stored result differs from the deterministic export")
	}

	// Events: progress with increasing seq and non-decreasing percent, then one
	// completed event whose seq is the record's.
	evs := e.Events.Of(id)
	var lastSeq int64
	var lastPct float64
	var progress int
	for i, ev := range evs {
		if ev.Room != "task:"+id {
			t.Fatalf("event %d sent to room %q", i, ev.Room)
		}
		if ev.Seq <= lastSeq {
			t.Fatalf("seq not increasing at event %d: %s", i, e.Events.Dump())
		}
		lastSeq = ev.Seq
		switch ev.Name {
		case "task:progress":
			progress++
			pct := testenv.Float(ev.Payload["percent"])
			if pct < lastPct {
				t.Fatalf("percent went down at event %d: %s", i, e.Events.Dump())
			}
			lastPct = pct
			if i > 0 && i < len(evs)-2 {
				if _, ok := ev.Payload["etaSeconds"]; !ok && testenv.Int(ev.Payload["done"]) > 0 {
					t.Errorf("progress event %d has no etaSeconds: %v", i, ev.Payload)
				}
			}
		case "task:completed":
			if i != len(evs)-1 {
				t.Fatalf("completed is not last: %s", e.Events.Dump())
			}
			if ev.Payload["resultUrl"] != "/api/v1/tasks/"+id+"/result" || testenv.Int(ev.Payload["rows"]) != 5000 ||
				testenv.Int(ev.Payload["bytes"]) != rec.Result.Bytes {
				t.Fatalf("completed payload %v", ev.Payload)
			}
		default:
			t.Fatalf("unexpected event %s", ev.Name)
		}
	}
	if lastPct != 100 || evs[len(evs)-2].Name != "task:progress" || testenv.Int(evs[len(evs)-2].Payload["done"]) != 5000 {
		t.Fatalf("no final 100%% progress before completed: %s", e.Events.Dump())
	}
	if rec.Seq != lastSeq {
		t.Fatalf("record seq %d, last event seq %d", rec.Seq, lastSeq)
	}
	// 5000 rows at 100 µs take about 0.5 s: throttled to about 10 events/s, plus
	// the started and final events.
	if progress < 3 || progress > 15 {
		t.Fatalf("%d progress events for a 0.5 s export: %s", progress, e.Events.Dump())
	}
}

func TestProbes(t *testing.T) {
	e := testenv.New(t)
	w := start(t, e, nil, Options{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + w.info.MetricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	e.Redis.Stop()
	resp, err := http.Get("http://" + w.info.MetricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz without Redis: %d", resp.StatusCode)
	}
}

func TestResultTooLarge(t *testing.T) {
	e := testenv.New(t)
	start(t, e, map[string]string{"RESULT_MAX_BYTES": "10KiB"}, Options{})
	id := e.Submit(10000, nil)
	rec := e.WaitFinal(id, 30*time.Second)
	if rec.State != tasks.StateFailed || rec.Error == nil || rec.Error.Code != CodeResultTooLarge || rec.Attempts != 1 {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
	ev := e.Events.Final(id)
	errInfo, _ := ev.Payload["error"].(map[string]any)
	if ev.Name != "task:failed" || errInfo["code"] != CodeResultTooLarge || !strings.Contains(fmt.Sprint(errInfo["message"]), "10240 bytes") {
		t.Fatalf("final event %+v", ev)
	}
	assertNoResultKeys(t, e, id)
}

func assertNoResultKeys(t *testing.T, e *testenv.Env, id string) {
	t.Helper()
	keys, err := e.Client.Keys(context.Background(), e.Store.Keys().Result(id)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Fatalf("result keys left behind: %v", keys)
	}
}

// flaky fails its first attempts with a transient error, then runs the export.
func flaky(st *store.Store, failures int, permanent bool) runner.Handler {
	real := NewExportHandler(st, HandlerOptions{})
	return func(ctx context.Context, t *runner.Task) (*tasks.Result, error) {
		if t.Attempt <= failures {
			if permanent {
				return nil, runner.Permanent("bad_input", errors.New("the input is wrong"))
			}
			return nil, runner.Transient("upstream_down", errors.New("the upstream is down"))
		}
		return real(ctx, t)
	}
}

func TestTransientErrorRetries(t *testing.T) {
	e := testenv.New(t)
	var mu sync.Mutex
	var waits []int
	start(t, e, nil, Options{
		Handlers: map[tasks.Kind]runner.Handler{tasks.KindExport: flaky(e.Store, 2, false)},
		Backoff: func(n int) time.Duration {
			mu.Lock()
			waits = append(waits, n)
			mu.Unlock()
			return 300 * time.Millisecond
		},
	})
	id := e.Submit(100, nil)
	// After the first failure the record is queued again, shows the attempt and
	// when the next one comes.
	e.Events.Wait(t, 10*time.Second, "retry event", func(r *testenv.Recorder) bool {
		for _, ev := range r.Of(id) {
			if ev.Name == "task:progress" && strings.HasPrefix(fmt.Sprint(ev.Payload["stage"]), "retrying") {
				return true
			}
		}
		return false
	})
	// The record may already be in the next attempt; it is never behind the event.
	rec := e.Record(id)
	if rec.State == tasks.StateQueued && (rec.NextAttemptAt == nil || rec.Attempts != 1 || !strings.Contains(rec.Stage, "upstream is down")) {
		t.Fatalf("queued for retry: %+v", rec)
	}
	rec = e.WaitFinal(id, 20*time.Second)
	if rec.State != tasks.StateCompleted || rec.Attempts != 3 || rec.NextAttemptAt != nil || rec.Error != nil {
		t.Fatalf("after retries: %+v", rec)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(waits) != "[1 2]" {
		t.Fatalf("backoff asked for attempts %v", waits)
	}
	if n, _ := e.Client.ZCard(context.Background(), e.Store.Keys().Delayed()).Result(); n != 0 {
		t.Fatalf("%d messages left in the delayed set", n)
	}
}

func TestTransientErrorGivesUp(t *testing.T) {
	e := testenv.New(t)
	start(t, e, nil, Options{
		Handlers: map[tasks.Kind]runner.Handler{tasks.KindExport: flaky(e.Store, 5, false)},
		Backoff:  func(int) time.Duration { return 50 * time.Millisecond },
	})
	id := e.Submit(100, func(r *tasks.Record) { r.MaxAttempts = 2 })
	rec := e.WaitFinal(id, 20*time.Second)
	if rec.State != tasks.StateFailed || rec.Attempts != 2 || rec.Error == nil || rec.Error.Code != "upstream_down" {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	e := testenv.New(t)
	start(t, e, nil, Options{Handlers: map[tasks.Kind]runner.Handler{tasks.KindExport: flaky(e.Store, 5, true)}})
	id := e.Submit(100, nil)
	rec := e.WaitFinal(id, 20*time.Second)
	if rec.State != tasks.StateFailed || rec.Attempts != 1 || rec.Error == nil || rec.Error.Code != "bad_input" || rec.Error.Message != "the input is wrong" {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
	ev := e.Events.Final(id)
	if ev.Name != "task:failed" || ev.Seq != rec.Seq {
		t.Fatalf("final event %+v, record seq %d", ev, rec.Seq)
	}
}

func TestPanicFailsTheTask(t *testing.T) {
	e := testenv.New(t)
	start(t, e, nil, Options{Handlers: map[tasks.Kind]runner.Handler{
		tasks.KindExport: func(context.Context, *runner.Task) (*tasks.Result, error) { panic("boom") },
	}})
	id := e.Submit(100, nil)
	rec := e.WaitFinal(id, 20*time.Second)
	if rec.State != tasks.StateFailed || rec.Error.Code != runner.CodeInternal || !strings.Contains(rec.Error.Message, "boom") {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
}

func TestMalformedMessagesDoNotStopTheWorker(t *testing.T) {
	e := testenv.New(t)
	start(t, e, nil, Options{})
	ctx := context.Background()
	queue := e.Store.Keys().Queue(tasks.KindExport)
	add := func(values ...any) {
		t.Helper()
		if err := e.Client.XAdd(ctx, &redis.XAddArgs{Stream: queue, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A task whose queued params are out of range (the server would have refused
	// them): the worker checks them again and fails the task with a clear code.
	bad := e.Create(10, nil)
	add(store.QueueField, fmt.Sprintf(`{"id":%q,"kind":"export","params":{"rows":-5},"owner":"tester"}`, bad))
	// Garbage without a readable id, and an entry without the task field.
	add(store.QueueField, "{not json")
	add("other", "x")
	good := e.Submit(10, nil)

	rec := e.WaitFinal(bad, 20*time.Second)
	if rec.State != tasks.StateFailed || rec.Error == nil || rec.Error.Code != CodeInvalidParams || !strings.Contains(rec.Error.Message, "params.rows") {
		t.Fatalf("bad task: %+v %+v", rec, rec.Error)
	}
	if ev := e.Events.Final(bad); ev.Name != "task:failed" {
		t.Fatalf("bad task final event %+v", ev)
	}
	if rec := e.WaitFinal(good, 20*time.Second); rec.State != tasks.StateCompleted {
		t.Fatalf("good task: %+v", rec)
	}
	// Everything was acknowledged and deleted.
	testenv.Eventually(t, 10*time.Second, "empty queue", func() bool {
		n, _ := e.Client.XLen(ctx, queue).Result()
		return n == 0
	})
}

func loadConfig(env map[string]string) (*config.Config, error) {
	return config.Load(func(k string) string { return env[k] })
}
