package emitter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrBatchDone is returned by the Emitter of a Batch when it is used after the
// Batch returned.
var ErrBatchDone = errors.New("emitter: batch already published")

// batch is the queue of a Batch.
type batch struct {
	mu   sync.Mutex
	msgs []Message
	done bool
}

func (b *batch) add(m Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return ErrBatchDone
	}
	b.msgs = append(b.msgs, m)
	return nil
}

// Batch calls fn with an Emitter (for e's namespace, with e's options) whose
// Emit, SocketsJoin, SocketsLeave, DisconnectSockets and ServerSideEmit only
// queue their message (they still report encoding errors at once), and then
// publishes everything fn queued in one round trip, in order: a go-redis pipeline
// when e's client offers one, else one message after the other. It is the way for
// a worker to reach thousands of rooms:
//
//	err := em.Batch(ctx, func(b *emitter.Emitter) error {
//		for _, t := range tasks {
//			if err := b.To("task:"+t.ID).Emit(ctx, "task:progress", t.Progress); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
// When fn returns an error nothing is published and Batch returns it. Otherwise
// Batch returns nil when every message was published, and a *BatchError listing
// each one that was not (with its position and its own error) when some failed.
// fn may use its Emitter from several goroutines, but not after it returned.
// When e publishes through a redis.Pipeliner (WithPublisher), the messages are
// added to that pipeline and the caller executes it.
func (e *Emitter) Batch(ctx context.Context, fn func(b *Emitter) error) error {
	if err := e.check(); err != nil {
		return err
	}
	q := &batch{}
	b := *e
	b.batch = q
	err := fn(&b)
	q.mu.Lock()
	q.done = true
	msgs := q.msgs
	q.mu.Unlock()
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if e.batch != nil {
		// A Batch inside a Batch: the outer one publishes.
		for _, m := range msgs {
			if err := e.batch.add(m); err != nil {
				return err
			}
		}
		return nil
	}
	if e.pub == nil {
		return ErrNoPublisher
	}
	var failed []FailedMessage
	err = e.bound(ctx, func() error {
		failed = e.publishAll(ctx, msgs)
		return nil
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return &BatchError{Total: len(msgs), Failed: failed}
	}
	return nil
}

// pipeliner is a client that can open a pipeline.
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

func (e *Emitter) publishAll(ctx context.Context, msgs []Message) []FailedMessage {
	var failed []FailedMessage
	fail := func(i int, err error) {
		failed = append(failed, FailedMessage{Index: i, Channel: msgs[i].Channel,
			Err: fmt.Errorf("emitter: publish to %s: %w", msgs[i].Channel, err)})
	}
	queue := func(p Publisher) []*redis.IntCmd {
		cmds := make([]*redis.IntCmd, len(msgs))
		for i, m := range msgs {
			if m.Sharded {
				cmds[i] = p.SPublish(ctx, m.Channel, m.Payload)
			} else {
				cmds[i] = p.Publish(ctx, m.Channel, m.Payload)
			}
		}
		return cmds
	}
	switch p := e.pub.(type) {
	case redis.Pipeliner:
		// The caller's pipeline: queue, and let the caller execute it.
		queue(p)
	case pipeliner:
		pipe := p.Pipeline()
		cmds := queue(pipe)
		_, _ = pipe.Exec(ctx) // each command carries its own error
		for i, c := range cmds {
			if err := c.Err(); err != nil {
				fail(i, err)
			}
		}
	default:
		for i, m := range msgs {
			if err := ctx.Err(); err != nil {
				fail(i, err)
				continue
			}
			if err := e.send(ctx, m); err != nil {
				failed = append(failed, FailedMessage{Index: i, Channel: m.Channel, Err: err})
			}
		}
	}
	return failed
}

// FailedMessage is a message of a Batch that was not published.
type FailedMessage struct {
	// Index is the position of the message in the batch, from 0, in the order
	// the calls were made.
	Index int
	// Channel is the channel it was for.
	Channel string
	// Err says why it failed.
	Err error
}

// BatchError reports the messages of a Batch that were not published; the others
// were. errors.Is and errors.As look into each message's error.
type BatchError struct {
	// Total is the number of messages in the batch.
	Total int
	// Failed lists the messages that were not published, in order.
	Failed []FailedMessage
}

// Error says how many messages failed, and why the first did.
func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "emitter: %d of %d messages not published", len(e.Failed), e.Total)
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, "; message %d: %v", e.Failed[0].Index, e.Failed[0].Err)
		if len(e.Failed) > 1 {
			fmt.Fprintf(&b, " (and %d more)", len(e.Failed)-1)
		}
	}
	return b.String()
}

// Unwrap returns the error of each failed message.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}
