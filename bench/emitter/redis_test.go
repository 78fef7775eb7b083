// Package emitterbench runs taskwire's emitter against real redis-server processes
// (shared/redistest): what happens when Redis is down, the go-redis client types
// at runtime, batches, and the publish benchmarks of RESULTS.md. It is a module of
// its own so that the emitter module keeps needing only go-redis and msgpack.
package emitterbench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/redistest"
)

// waitGoroutines waits (bounded) until at most n goroutines run, and fails with
// their stacks otherwise.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // goroutines end on their own; nothing to wait on
	}
}

// subscribe returns a channel of the messages published on the pattern (PSUBSCRIBE)
// or the sharded channel (SSUBSCRIBE) once Redis confirmed the subscription.
func subscribe(t *testing.T, addr string, pattern, shardChannel string) <-chan *redis.Message {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ps *redis.PubSub
	if shardChannel != "" {
		ps = c.SSubscribe(ctx, shardChannel)
	} else {
		ps = c.PSubscribe(ctx, pattern)
	}
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return ps.Channel(redis.WithChannelSize(10_000))
}

func next(t *testing.T, ch <-chan *redis.Message) *redis.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// TestEmitWhenRedisIsDown: with Redis stopped, paused (connections open, no
// answers) or restarted, Emit and Batch return within their context's deadline
// (the guard does not depend on the client's ContextTimeoutEnabled), with an error
// naming the channel; they work again once Redis is back; and no goroutine is
// left behind once the client is closed.
func TestEmitWhenRedisIsDown(t *testing.T) {
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", ctxTimeouts), func(t *testing.T) {
			before := runtime.NumGoroutine()
			r := redistest.Start(t)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: ctxTimeouts})
			em := emitter.New(rdb, nil)
			op := em.To("task:1")
			const deadline = 300 * time.Millisecond
			emit := func() (time.Duration, error) {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				err := op.Emit(ctx, "task:progress", map[string]any{"percent": 1})
				return time.Since(start), err
			}
			batch := func() (time.Duration, error) {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				err := em.Batch(ctx, func(b *emitter.Emitter) error {
					for i := range 10 {
						_ = b.To(strconv.Itoa(i)).Emit(ctx, "ev")
					}
					return nil
				})
				return time.Since(start), err
			}
			// bounded checks that a call failed, and returned by its deadline (with
			// room for a loaded machine, far below go-redis's 3s read timeout).
			bounded := func(what string, call func() (time.Duration, error)) error {
				t.Helper()
				took, err := call()
				if err == nil {
					t.Fatalf("%s: no error", what)
				}
				if took > deadline+time.Second {
					t.Fatalf("%s returned after %v; its deadline was %v", what, took, deadline)
				}
				return err
			}

			if _, err := emit(); err != nil {
				t.Fatalf("Redis up: %v", err)
			}

			// Paused: every command waits; the deadline ends the wait.
			if err := r.Pause(context.Background(), 2*time.Second); err != nil {
				t.Fatal(err)
			}
			err := bounded("Emit, Redis paused", emit)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Emit, Redis paused: %v, want the deadline", err)
			}
			bounded("Batch, Redis paused", batch)

			// Stopped: connections are refused.
			r.Stop()
			err = bounded("Emit, Redis stopped", emit)
			if !strings.Contains(err.Error(), "socket.io#/#task:1#") && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Emit, Redis stopped: %v", err)
			}
			err = bounded("Batch, Redis stopped", batch)
			var be *emitter.BatchError
			if errors.As(err, &be) && (be.Total != 10 || len(be.Failed) != 10) {
				t.Errorf("Batch, Redis stopped: %+v", be)
			}

			// Back: the same emitter and client work again.
			r.Restart()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				if err := op.Emit(ctx, "task:progress", 2); err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("Emit after the restart: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // the pool redials on the next command
			}
			if _, err := batch(); err != nil {
				t.Fatalf("Batch after the restart: %v", err)
			}

			// The guard goroutines of the calls that timed out end when go-redis
			// returns; the client's own end when it is closed (the emitter never
			// closes it).
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("the client was closed or broken: %v", err)
			}
			_ = rdb.Close()
			r.Stop()
			waitGoroutines(t, before)
		})
	}
}

// startCluster starts a redis-server in cluster mode that serves every slot
// itself: a one-node Redis Cluster, enough for *redis.ClusterClient.
func startCluster(t *testing.T) *redistest.Server {
	t.Helper()
	r := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatalf("cluster slots: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return r
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster not ready: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond) // the node updates its state on its own clock
	}
}

// TestClientTypes publishes through every go-redis client type, classic and
// sharded, single messages and batches (pipelines), and checks that subscribers
// get exactly the bytes Encode gives.
func TestClientTypes(t *testing.T) {
	r := redistest.Start(t)
	cluster := startCluster(t)
	clients := []struct {
		name string
		addr string
		c    emitter.Publisher
	}{
		{"Client", r.Addr, redis.NewClient(&redis.Options{Addr: r.Addr})},
		{"Ring", r.Addr, redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": r.Addr}})},
		{"UniversalClient", r.Addr, redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{r.Addr}})},
		{"ClusterClient", cluster.Addr, redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cluster.Addr}})},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.c.(interface{ Close() error }).Close()
			for _, sharded := range []bool{false, true} {
				em := emitter.New(tc.c, &emitter.Options{Sharded: sharded, Key: "k-" + tc.name})
				var msgs <-chan *redis.Message
				if sharded {
					msgs = subscribe(t, tc.addr, "", "k-"+tc.name+"#/#")
				} else {
					msgs = subscribe(t, tc.addr, "k-"+tc.name+"#/#*", "")
				}
				want, err := em.To("a", "b").Encode("ev", 1, []byte{2})
				if err != nil {
					t.Fatal(err)
				}
				if err := em.To("a", "b").Emit(ctx, "ev", 1, []byte{2}); err != nil {
					t.Fatalf("sharded=%v: Emit: %v", sharded, err)
				}
				if m := next(t, msgs); m.Payload != string(want.Payload) || m.Channel != want.Channel {
					t.Fatalf("sharded=%v: got %q on %s, want %q on %s", sharded, m.Payload, m.Channel, want.Payload, want.Channel)
				}
				err = em.Batch(ctx, func(b *emitter.Emitter) error {
					for i := range 100 {
						if err := b.Emit(ctx, "seq", i); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("sharded=%v: Batch: %v", sharded, err)
				}
				for i := range 100 {
					want, _ := em.To().Encode("seq", i)
					if m := next(t, msgs); m.Payload != string(want.Payload) {
						t.Fatalf("sharded=%v: batch message %d out of order or wrong: %q", sharded, i, m.Payload)
					}
				}
			}
		})
	}
}

// TestBatchManyRooms publishes to 5000 rooms in one Batch and checks that every
// message arrives, in order.
func TestBatchManyRooms(t *testing.T) {
	r := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	msgs := subscribe(t, r.Addr, "socket.io#/#*", "")
	em := emitter.New(rdb, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 5000
	err := em.Batch(ctx, func(b *emitter.Emitter) error {
		for i := range n {
			if err := b.To(fmt.Sprintf("task:%d", i)).Emit(ctx, "task:progress", map[string]any{"seq": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if m := next(t, msgs); m.Channel != fmt.Sprintf("socket.io#/#task:%d#", i) {
			t.Fatalf("message %d on %s", i, m.Channel)
		}
	}
}
