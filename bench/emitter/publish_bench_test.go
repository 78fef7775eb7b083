package emitterbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/redistest"
)

// The workload of RESULTS.md, the same as node/bench.mjs: one task:progress event
// (a worker's progress payload) per message, to the room of one of 1000 tasks, or
// to 10 or 100 rooms at once; Redis has no subscribers, so what is measured is the
// emitter and the client, not the servers.

// progress is the shape of a worker's task:progress payload (as in
// shared/events), written here to keep this module's dependencies small.
type progress struct {
	TaskID  string  `json:"taskId"`
	Seq     int64   `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int     `json:"done"`
	Total   int     `json:"total"`
	Stage   string  `json:"stage,omitempty"`
}

func payload(i int) progress {
	return progress{TaskID: "01JD5R3Q0S7X9ZK2M4N6P8B0CD", Seq: int64(i), Percent: 37.5, Done: 375000, Total: 1000000, Stage: "rows"}
}

var taskRooms = func() []string {
	out := make([]string, 1000)
	for i := range out {
		out[i] = "task:" + strconv.Itoa(i)
	}
	return out
}()

// target returns the operator for message i: one task room, or n rooms at once.
func target(em *emitter.Emitter, i, n int) emitter.BroadcastOperator {
	if n <= 1 {
		return em.To(taskRooms[i%len(taskRooms)])
	}
	start := (i * n) % (len(taskRooms) - n)
	return em.To(taskRooms[start : start+n]...)
}

// benchRedis returns a client of a fresh redis-server: REDIS_BENCH_ADDR when set
// (run.mjs starts one, so Go and Node measure against the same kind of server),
// otherwise one started for the benchmark.
func benchRedis(b *testing.B) *redis.Client {
	b.Helper()
	addr := os.Getenv("REDIS_BENCH_ADDR")
	if addr == "" {
		addr = redistest.Start(b).Addr
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 128})
	b.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	return rdb
}

func report(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "emits/s")
}

// BenchmarkPublish measures emits per second through a real Redis: one
// goroutine waiting for each reply (serial), 64 goroutines (parallel), and one
// goroutine with Batch (batch-N: N messages per round trip); each with 1, 10 and
// 100 rooms per message, classic and sharded. b.N counts messages.
func BenchmarkPublish(b *testing.B) {
	rdb := benchRedis(b)
	for _, mode := range []string{"classic", "sharded"} {
		em := emitter.New(rdb, &emitter.Options{Sharded: mode == "sharded"})
		for _, rooms := range []int{1, 10, 100} {
			name := func(how string) string { return fmt.Sprintf("%s/%s/rooms=%d", mode, how, rooms) }
			b.Run(name("serial"), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				start := time.Now()
				for i := range b.N {
					if err := target(em, i, rooms).Emit(ctx, "task:progress", payload(i)); err != nil {
						b.Fatal(err)
					}
				}
				report(b, start)
			})
			b.Run(name("parallel-64"), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				b.SetParallelism(64 / max(1, runtimeProcs()))
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := target(em, i, rooms).Emit(ctx, "task:progress", payload(i)); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
				report(b, start)
			})
			b.Run(name("parallel-64-autopipeline"), func(b *testing.B) {
				// go-redis's AutoPipeline (experimental in go-redis 9.23) sends
				// the commands of concurrent callers together: Emit still waits
				// for its own reply.
				ap, err := rdb.AutoPipeline()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = ap.Close() })
				ape := emitter.New(ap, &emitter.Options{Sharded: mode == "sharded"})
				ctx := context.Background()
				b.ReportAllocs()
				b.SetParallelism(64 / max(1, runtimeProcs()))
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := target(ape, i, rooms).Emit(ctx, "task:progress", payload(i)); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
				report(b, start)
			})
			for _, size := range []int{100, 1000} {
				b.Run(name(fmt.Sprintf("batch-%d", size)), func(b *testing.B) {
					ctx := context.Background()
					b.ReportAllocs()
					start := time.Now()
					for sent := 0; sent < b.N; sent += size {
						n := min(size, b.N-sent)
						err := em.Batch(ctx, func(be *emitter.Emitter) error {
							for i := sent; i < sent+n; i++ {
								if err := target(be, i, rooms).Emit(ctx, "task:progress", payload(i)); err != nil {
									return err
								}
							}
							return nil
						})
						if err != nil {
							b.Fatal(err)
						}
					}
					report(b, start)
				})
			}
		}
	}
}

// BenchmarkPublishDeadline is the serial case with a context deadline and a
// client without ContextTimeoutEnabled, where Emit guards the deadline itself,
// and with it, where go-redis does.
func BenchmarkPublishDeadline(b *testing.B) {
	for _, ctxTimeouts := range []bool{false, true} {
		b.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", ctxTimeouts), func(b *testing.B) {
			base := benchRedis(b)
			rdb := redis.NewClient(&redis.Options{Addr: base.Options().Addr, ContextTimeoutEnabled: ctxTimeouts})
			b.Cleanup(func() { _ = rdb.Close() })
			em := emitter.New(rdb, nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			start := time.Now()
			for i := range b.N {
				if err := target(em, i, 1).Emit(ctx, "task:progress", payload(i)); err != nil {
					b.Fatal(err)
				}
			}
			report(b, start)
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
