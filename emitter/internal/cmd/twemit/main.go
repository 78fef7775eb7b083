// Command twemit performs emitter call specs with taskwire's emitter against a real
// Redis, for the interop tests (e2e/interop-emitter.test.mjs), which run Node's
// @socket.io/redis-emitter through the same protocol as a control.
//
// It reads one spec per line on stdin (the language of package spec, the same as the
// golden vectors), performs it, and prints "ok <n>" once Redis has accepted the
// message, or "error <n>: <message>", where n counts the spec lines from 1. Empty
// lines are ignored. It exits at the end of its input.
//
//	REDIS_URL=redis://127.0.0.1:6379/0 twemit
//
// REDIS_URL is required (no default, so a test can never publish to a Redis it did
// not start). TWEMIT_TIMEOUT bounds each publish (a Go duration, default 5s).
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter/internal/spec"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "twemit:", err)
		os.Exit(1)
	}
}

func run() error {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		return fmt.Errorf("REDIS_URL is not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	timeout := 5 * time.Second
	if s := os.Getenv("TWEMIT_TIMEOUT"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("TWEMIT_TIMEOUT: %w", err)
		}
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	out := bufio.NewWriter(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 64<<10), 64<<20)
	n := 0
	for in.Scan() {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		n++
		if err := perform(rdb, line, timeout); err != nil {
			fmt.Fprintf(out, "error %d: %v\n", n, err)
		} else {
			fmt.Fprintf(out, "ok %d\n", n)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}

func perform(rdb *redis.Client, line []byte, timeout time.Duration) error {
	s, err := spec.Parse(line)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return spec.Run(ctx, rdb, s)
}
