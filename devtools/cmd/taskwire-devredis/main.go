// Command taskwire-devredis runs an embedded, in-memory Redis-compatible server
// (miniredis) for trying taskwire on a machine without Redis. It is not Redis: it
// keeps nothing on disk, has no sharded pub/sub, and is slower. Use a real Redis for
// anything but a first look.
//
// It prints "ready redis://<addr>/0" once it accepts connections, and stops on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "taskwire-devredis:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintln(os.Stderr, "taskwire-devredis: WARNING: embedded in-memory Redis for trying things out only; install redis-server or set REDIS_URL for real use")
	fmt.Printf("ready redis://%s/0\n", m.Addr())

	// miniredis does not expire keys on its own; drive its clock so TTLs run down.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}
