package metrics_test

import (
	"testing"
	"time"

	"github.com/taskwire/taskwire/server/internal/metrics"
)

// BenchmarkSent is the cost the metrics add to every event handed to a socket.
func BenchmarkSent(b *testing.B) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	withTime := []any{map[string]any{"taskId": "t", "seq": int64(1), "emittedAt": uint64(time.Now().UnixMilli())}}
	without := []any{map[string]any{"taskId": "t", "seq": int64(1)}}
	b.Run("with emittedAt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Sent("task:progress", withTime)
		}
	})
	b.Run("without", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Sent("task:state", without)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Sent("task:progress", withTime)
			}
		})
	})
}

// BenchmarkRequest is the cost the metrics add to every HTTP request.
func BenchmarkRequest(b *testing.B) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	b.ReportAllocs()
	for b.Loop() {
		m.Request("GET", "/api/v1/tasks/:id", 200, time.Millisecond)
	}
}
