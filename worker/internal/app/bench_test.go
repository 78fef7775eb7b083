package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// BenchmarkTinyTasks measures how many one-row exports a worker finishes per
// second with a given concurrency: every task is a full run (start attempt,
// started event, a result written and committed, 100 % and completed events,
// acknowledgement), so this is the overhead of the machinery around a task.
func BenchmarkTinyTasks(b *testing.B) {
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			const n = 1000
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				e := testenv.New(b)
				ids := make([]string, n)
				for i := range ids {
					ids[i] = e.Submit(1, nil)
				}
				t0 := time.Now()
				b.StartTimer()
				w := startBench(b, e, conc)
				e.Events.Wait(b, 120*time.Second, "all completed", func(r *testenv.Recorder) bool {
					return r.Total("task:completed") == n
				})
				total += time.Since(t0)
				b.StopTimer()
				w()
				for _, id := range ids[:10] {
					if rec := e.Record(id); rec.State != tasks.StateCompleted {
						b.Fatalf("%s: %+v", id, rec)
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "tasks/s")
		})
	}
}

func startBench(b *testing.B, e *testenv.Env, conc int) (stop func()) {
	cfg := map[string]string{
		"REDIS_URL": e.Redis.URL, "TASKWIRE_PREFIX": e.Prefix, "METRICS_ADDR": "off",
		"WORKER_CONCURRENCY": fmt.Sprint(conc), "LOG_LEVEL": "error",
	}
	c, err := loadConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	info := tasks.KindInfo{Name: "export", ParamsSchema: []byte(`{"type":"object"}`)}
	info.SchemaHash = info.Hash()
	kinds := []Kind{{Info: info, Run: runner.Kind{Handler: NewExportHandler(e.Store, HandlerOptions{})}}}
	go func() { done <- Run(ctx, Options{Config: c, Kinds: kinds}) }()
	return func() {
		cancel()
		<-done
	}
}
