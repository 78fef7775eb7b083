package progress

import (
	"context"
	"testing"
	"time"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// BenchmarkProgressEvents measures unthrottled progress events of one task: each
// is a record update and a PUBLISH in one script call, one round trip.
func BenchmarkProgressEvents(b *testing.B) {
	e := testenv.New(b)
	ctx := context.Background()
	pub := NewPublisher(e.Store, emitter.New(e.Client, nil), &Options{MaxRate: 0})
	id := e.Create(1<<40, nil)
	rec, err := e.Store.StartAttempt(ctx, id, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	rep := pub.Begin(rec, 0)
	var done int64
	for b.Loop() {
		done++
		if err := rep.Progress(ctx, done, 1<<40, "exporting"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProgressEventsParallel measures events of many tasks at once, as a
// worker with several running tasks sends them.
func BenchmarkProgressEventsParallel(b *testing.B) {
	e := testenv.New(b)
	ctx := context.Background()
	pub := NewPublisher(e.Store, emitter.New(e.Client, nil), &Options{MaxRate: 0})
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		id := e.Create(1<<40, nil)
		rec, err := e.Store.StartAttempt(ctx, id, time.Now())
		if err != nil {
			b.Error(err)
			return
		}
		rep := pub.Begin(rec, 0)
		var done int64
		for pb.Next() {
			done++
			if err := rep.Progress(ctx, done, 1<<40, "exporting"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
