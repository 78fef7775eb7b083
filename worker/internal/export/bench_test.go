package export

import (
	"context"
	"testing"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// BenchmarkExportToRedis measures an export of 1,000,000 rows written through a
// store.ResultWriter (gzip chunks in a real Redis): rows/s, and the sizes.
func BenchmarkExportToRedis(b *testing.B) {
	const rows = 1_000_000
	e := testenv.New(b)
	ctx := context.Background()
	var raw, stored int64
	for i := 0; b.Loop(); i++ {
		id := tasks.NewID()
		w, err := e.Store.NewResultWriter(ctx, id, 1, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Write(ctx, w, id, rows, Options{}); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		raw = w.Size()
		b.StopTimer()
		chunks, err := e.Client.LRange(ctx, e.Store.Keys().ResultTemp(id, 1), 0, -1).Result()
		if err != nil {
			b.Fatal(err)
		}
		stored = 0
		for _, c := range chunks {
			stored += int64(len(c))
		}
		_ = w.Abort(ctx)
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(raw)/(1<<20), "csv-MiB")
	b.ReportMetric(float64(stored)/(1<<20), "gzip-MiB")
}
