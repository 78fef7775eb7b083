package redisadapter

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// healthInterval is how long a subscription may stay silent before a PING
	// checks its connection (go-redis's channel helper uses the same).
	healthInterval = 3 * time.Second
	// pingTimeout is how long the PONG may take before the connection is
	// replaced.
	pingTimeout = 5 * time.Second
)

// receive reads ps and calls fn with everything it receives (*redis.Message,
// *redis.Subscription, *redis.Pong), in order, on the calling goroutine, until ps
// is closed or done is. It replaces go-redis's channel helper, which hands every
// message to another goroutine and wakes a third one (its health check) for each:
// two goroutine switches per message, the largest cost of a small broadcast after
// the network.
//
// Like the helper, it keeps the subscription alive: after healthInterval of
// silence it sends a PING and reads with a deadline, so that a connection that
// died without an error is replaced; go-redis reconnects and subscribes again to
// everything on the read after a failure. Repeated failures are spaced out.
func receive(ps *redis.PubSub, done <-chan struct{}, fn func(any)) {
	ctx := context.Background()
	failures := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if err != nil && isTimeout(err) {
			// Silence: ask for a PONG, whose read must succeed in time (a
			// timeout here makes go-redis drop the connection).
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			if err = ps.Ping(pctx); err == nil {
				msg, err = ps.Receive(pctx)
			}
			cancel()
		}
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			failures++
			if failures > 1 {
				t := time.NewTimer(min(time.Duration(failures)*100*time.Millisecond, time.Second))
				select {
				case <-t.C:
				case <-done:
					t.Stop()
					return
				}
			}
			continue
		}
		failures = 0
		fn(msg)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
