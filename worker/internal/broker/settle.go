package broker

import (
	"context"
	"strconv"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/worker/internal/retry"
)

// Outcome says what happens to a queue entry once its task run is over.
type Outcome struct {
	kind outcomeKind
	at   time.Time
}

type outcomeKind int

const (
	outcomeNone outcomeKind = iota
	outcomeAck
	outcomeHandBack
	outcomeDelay
	outcomeAbandon
)

// The outcomes of a delivery.
var (
	// Ack acknowledges and deletes the entry: the task is finished (or must never
	// run).
	Ack = Outcome{kind: outcomeAck}
	// HandBack puts the message back at the end of the stream as a new entry, for
	// any worker to take at once, and acknowledges the old entry.
	HandBack = Outcome{kind: outcomeHandBack}
	// Abandon leaves the entry pending: its lease runs out and a worker takes it
	// over. Used when the entry is no longer ours, or Redis cannot be reached.
	Abandon = Outcome{kind: outcomeAbandon}
)

// RetryAt moves the message to the delayed set, due at t, and acknowledges the
// entry; at t a worker moves it back into the stream.
func RetryAt(t time.Time) Outcome { return Outcome{kind: outcomeDelay, at: t} }

// String names the outcome, for logs.
func (o Outcome) String() string {
	switch o.kind {
	case outcomeAck:
		return "ack"
	case outcomeHandBack:
		return "hand back"
	case outcomeDelay:
		return "retry at " + o.at.UTC().Format(time.RFC3339Nano)
	case outcomeAbandon:
		return "abandon"
	}
	return "none"
}

func (b *Broker) settleTimeout() time.Duration {
	return max(b.opts.Lease, 30*time.Second)
}

// Settle records what happens to the entry of sig once the task processor
// returns. The task function calls it before it returns; without it the task is
// failed with CodeInternal.
func (b *Broker) Settle(sig *mtasks.Signature, o Outcome) {
	s, _ := sig.Headers[HeaderDelivery].(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	b.mu.Lock()
	d := b.inflight[n]
	b.mu.Unlock()
	if d == nil || d.entry != Entry(sig) {
		b.log.Error("settle of an unknown delivery", "task", sig.UUID, "entry", Entry(sig), "delivery", s)
		return
	}
	d.mu.Lock()
	d.outcome = o
	d.mu.Unlock()
}

// settleNow applies o to the entry, retrying Redis errors for a while. When it
// cannot, the entry stays pending and its lease brings it back.
func (b *Broker) settleNow(d *delivery, o Outcome) {
	d.mu.Lock()
	d.settling = true
	d.mu.Unlock()
	if o.kind == outcomeAbandon || o.kind == outcomeNone {
		b.log.Info("leaving the queue entry to its lease", "entry", d.entry, "task", d.taskID())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.settleTimeout())
	defer cancel()
	stream := d.stream
	consumer := b.Consumer()
	err := retry.Do(ctx, func(ctx context.Context) error {
		switch o.kind {
		case outcomeAck:
			_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.XAck(ctx, stream, store.QueueGroup, d.entry)
				p.XDel(ctx, stream, d.entry)
				return nil
			})
			return err
		case outcomeHandBack:
			n, err := handBackScript.Run(ctx, b.rdb, []string{stream},
				store.QueueGroup, consumer, d.entry, store.QueueField, d.raw).Int()
			if err == nil && n == 1 {
				b.stats.handedBack.Add(1)
				b.log.Info("handed a task back to the queue", "task", d.taskID(), "entry", d.entry)
			}
			return err
		case outcomeDelay:
			n, err := delayScript.Run(ctx, b.rdb, []string{stream, b.opts.Keys.Delayed()},
				store.QueueGroup, consumer, d.entry, o.at.UnixMilli(), d.raw).Int()
			if err == nil && n == 1 {
				b.stats.delayed.Add(1)
			}
			return err
		}
		return nil
	}, func(error) bool { return true })
	if err != nil {
		b.log.Error("could not settle a queue entry; its lease will bring it back", "entry", d.entry, "task", d.taskID(),
			"outcome", o.String(), "err", err)
	}
}

// reroute moves an entry of the previous release's stream to the stream of its
// kind, for the workers of that kind.
func (b *Broker) reroute(d *delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), b.settleTimeout())
	defer cancel()
	target := b.opts.Keys.Queue(d.msg.Kind)
	err := retry.Do(ctx, func(ctx context.Context) error {
		return rerouteScript.Run(ctx, b.rdb, []string{d.stream, target},
			store.QueueGroup, b.Consumer(), d.entry, store.QueueField, d.raw).Err()
	}, func(error) bool { return true })
	if err != nil {
		b.log.Error("could not move an entry of the previous release's queue; its lease will bring it back",
			"entry", d.entry, "task", d.taskID(), "err", err)
		return
	}
	b.stats.rerouted.Add(1)
	b.log.Info("moved a task from the previous release's queue to its kind's", "task", d.taskID(), "kind", string(d.msg.Kind))
}
