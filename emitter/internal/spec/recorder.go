package spec

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Published is one message a Recorder received.
type Published struct {
	Channel string
	Payload []byte
	Sharded bool
}

// Recorder is an emitter.Publisher that records what it is asked to publish and
// publishes nothing. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	msgs []Published
}

// Publish records a PUBLISH.
func (r *Recorder) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	return r.record(ctx, channel, message, false)
}

// SPublish records an SPUBLISH.
func (r *Recorder) SPublish(ctx context.Context, channel string, message any) *redis.IntCmd {
	return r.record(ctx, channel, message, true)
}

func (r *Recorder) record(ctx context.Context, channel string, message any, sharded bool) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx)
	var b []byte
	switch m := message.(type) {
	case []byte:
		b = append([]byte(nil), m...)
	case string:
		b = []byte(m)
	default:
		cmd.SetErr(fmt.Errorf("spec: recorder: message is %T, want []byte or string", message))
		return cmd
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, Published{Channel: channel, Payload: b, Sharded: sharded})
	r.mu.Unlock()
	cmd.SetVal(0)
	return cmd
}

// Messages returns what was recorded so far.
func (r *Recorder) Messages() []Published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Published(nil), r.msgs...)
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}
