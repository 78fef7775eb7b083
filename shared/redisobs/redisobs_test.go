package redisobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redisobs"
	"github.com/taskwire/taskwire/shared/redistest"
)

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) add(op string) { c.mu.Lock(); c.n[op]++; c.mu.Unlock() }
func (c *counts) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// A real redis-server: answers that are no failure are not counted; a command
// Redis refuses, a pipeline with one, and a server that is gone are.
func TestHookCountsFailures(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	c := &counts{n: map[string]int{}}
	rdb.AddHook(redisobs.Hook{OnError: c.add})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := rdb.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("get: %v", err)
	}
	script := redis.NewScript(`return 1`)
	if err := script.Run(ctx, rdb, nil).Err(); err != nil { // NOSCRIPT, then EVAL
		t.Fatal(err)
	}
	if n := c.get(redisobs.OpCommand); n != 0 {
		t.Fatalf("%d failures counted for redis.Nil and NOSCRIPT", n)
	}
	if err := rdb.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	if n := c.get(redisobs.OpCommand); n != 1 {
		t.Fatalf("command failures %d, want 1", n)
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "v", 0)
		p.Do(ctx, "NOSUCHCOMMAND")
		return nil
	})
	if err == nil || c.get(redisobs.OpPipeline) != 1 {
		t.Fatalf("pipeline: %v, failures %d, want 1", err, c.get(redisobs.OpPipeline))
	}
	gone := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer gone.Close()
	gone.AddHook(redisobs.Hook{OnError: c.add})
	if err := gone.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of nothing succeeded")
	}
	// go-redis dials more than once before it gives up: each try counts.
	if c.get(redisobs.OpDial) < 1 || c.get(redisobs.OpCommand) != 2 {
		t.Fatalf("dial failures %d (want 1 or more), command failures %d (want 2)", c.get(redisobs.OpDial), c.get(redisobs.OpCommand))
	}
}

func TestFailed(t *testing.T) {
	for err, want := range map[error]bool{
		nil: false, redis.Nil: false, context.Canceled: false, errors.New("NOSCRIPT No matching script"): false,
		context.DeadlineExceeded: true, errors.New("ERR unknown command"): true,
	} {
		if got := redisobs.Failed(err); got != want {
			t.Errorf("Failed(%v) = %v, want %v", err, got, want)
		}
	}
}
