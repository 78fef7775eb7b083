package emitter_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
)

// progress is the shape of a worker's task:progress payload.
type progress struct {
	TaskID  string  `json:"taskId"`
	Seq     int64   `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int     `json:"done"`
	Total   int     `json:"total"`
	Stage   string  `json:"stage,omitempty"`
}

func progressMap() map[string]any {
	return map[string]any{"taskId": "01JD5R3Q0S7X9ZK2M4N6P8B0CD", "seq": 42, "percent": 37.5, "done": 375000, "total": 1000000, "stage": "rows"}
}

func progressStruct() progress {
	return progress{TaskID: "01JD5R3Q0S7X9ZK2M4N6P8B0CD", Seq: 42, Percent: 37.5, Done: 375000, Total: 1000000, Stage: "rows"}
}

// discard is a Publisher that does nothing: Emit's own cost, without Redis.
type discard struct{}

func (discard) Publish(ctx context.Context, _ string, _ any) *redis.IntCmd {
	return redis.NewIntCmd(ctx)
}
func (discard) SPublish(ctx context.Context, _ string, _ any) *redis.IntCmd {
	return redis.NewIntCmd(ctx)
}

func rooms(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("task:%04d", i)
	}
	return out
}

// BenchmarkEncode measures encoding one task:progress event (BroadcastOperator.Encode),
// classic and sharded, with a map or a struct payload, to 1, 10 and 100 rooms.
func BenchmarkEncode(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts *emitter.Options
	}{{"classic", nil}, {"sharded", &emitter.Options{Sharded: true}}} {
		em := emitter.New(nil, mode.opts)
		for _, payload := range []struct {
			name string
			v    any
		}{{"map", progressMap()}, {"struct", progressStruct()}} {
			for _, n := range []int{1, 10, 100} {
				op := em.To(rooms(n)...)
				b.Run(fmt.Sprintf("%s/%s/rooms=%d", mode.name, payload.name, n), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := op.Encode("task:progress", payload.v); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkEmitNoRedis measures Emit with a publisher that does nothing: what the
// emitter costs per call on top of the Redis client, with and without a deadline
// (which a publisher that does not bound itself makes Emit watch).
func BenchmarkEmitNoRedis(b *testing.B) {
	em := emitter.New(discard{}, nil)
	op := em.To("task:1")
	payload := progressStruct()
	b.Run("background", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if err := op.Emit(ctx, "task:progress", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deadline", func(b *testing.B) {
		b.ReportAllocs()
		ctx, cancel := context.WithTimeout(context.Background(), 1<<40)
		defer cancel()
		for b.Loop() {
			if err := op.Emit(ctx, "task:progress", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkToEncode measures building the operator and encoding, per message, as a
// worker that targets a different set of rooms each time does.
func BenchmarkToEncode(b *testing.B) {
	em := emitter.New(nil, nil)
	payload := progressStruct()
	for _, n := range []int{1, 10, 100} {
		list := rooms(n)
		b.Run(fmt.Sprintf("rooms=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := em.To(list...).Encode("task:progress", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
