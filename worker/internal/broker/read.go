package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/RichardKnop/machinery/v2/brokers/iface"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/retry"
)

// consume is the read loop. It returns after a stop, once every delivery is
// settled.
func (b *Broker) consume(ctx context.Context, concurrency int, p iface.TaskProcessor) {
	slots := make(chan struct{}, concurrency)
	for range concurrency {
		slots <- struct{}{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var bo retry.Backoff
	health := outage{log: b.log, what: "reading the task queue"}
	for {
		select {
		case <-b.stop:
			return
		case <-slots:
		}
		free := 1
	more:
		for free < concurrency {
			select {
			case <-slots:
				free++
			default:
				break more
			}
		}
		if !p.PreConsumeHandler() {
			for range free {
				slots <- struct{}{}
			}
			retry.Sleep(ctx, b.stop, b.opts.Block)
			continue
		}
		ds, err := b.fetch(ctx, free)
		for range free - len(ds) {
			slots <- struct{}{}
		}
		if b.stopping() {
			// Read while stopping: give them straight back (and drop those that
			// can never run, as usual).
			for _, d := range ds {
				if d.bad != nil {
					b.reject(d, *d.bad)
					b.settleNow(d, Ack)
				} else {
					b.settleNow(d, HandBack)
				}
				slots <- struct{}{}
			}
			return
		}
		for _, d := range ds {
			if b.legacy(d.stream) && d.bad == nil {
				b.reroute(d)
				slots <- struct{}{}
				continue
			}
			b.track(d)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { slots <- struct{}{} }()
				b.handle(p, d)
			}()
		}
		if err == nil {
			health.ok()
			bo.Reset()
			continue
		}
		if isNoGroup(err) {
			// Redis lost the stream or the group (a restart without persistence):
			// create it again and read on.
			b.log.Warn("the consumer group is gone; creating it again", "err", err)
			if cerr := b.ensureGroup(ctx); cerr == nil && bo.Attempts() < 3 {
				bo.Next()
				continue
			}
		}
		b.stats.readFailures.Add(1)
		health.fail(err)
		retry.Sleep(ctx, b.stop, bo.Next())
	}
}

// fetch takes up to n entries: first entries of lost consumers, then new ones.
func (b *Broker) fetch(ctx context.Context, n int) ([]*delivery, error) {
	consumer := b.Consumer()
	var out []*delivery
	for _, stream := range b.streams {
		if len(out) >= n {
			break
		}
		if b.claimCursor[stream] == "0-0" && time.Since(b.lastClaim[stream]) < b.opts.Lease/2 {
			continue
		}
		msgs, next, err := b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: store.QueueGroup, Consumer: consumer,
			MinIdle: b.opts.Lease, Start: b.claimCursor[stream], Count: int64(n - len(out)),
		}).Result()
		if err != nil {
			return out, err
		}
		b.claimCursor[stream] = next
		if next == "0-0" {
			b.lastClaim[stream] = time.Now()
		}
		for _, m := range msgs {
			if b.running(m.ID) {
				// Our own entry, still running here (its heartbeat was late): the
				// claim renewed it; do not run it twice.
				continue
			}
			d := b.newDelivery(stream, m, true)
			b.stats.reclaimed.Add(1)
			b.log.Info("took over a task whose worker stopped renewing its lease", "entry", m.ID, "task", d.taskID())
			out = append(out, d)
		}
	}
	if len(out) >= n {
		return out, nil
	}
	// First what is waiting, stream by stream (XREADGROUP's COUNT is per stream),
	// starting with another stream each time so no kind starves the others.
	b.rr++
	for i := range b.streams {
		if len(out) >= n {
			return out, nil
		}
		stream := b.streams[(b.rr+i)%len(b.streams)]
		res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: store.QueueGroup, Consumer: consumer, Streams: []string{stream, ">"},
			Count: int64(n - len(out)), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return out, err
		}
		for _, s := range res {
			for _, m := range s.Messages {
				out = append(out, b.newDelivery(s.Stream, m, false))
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	// Then wait on every stream at once for the next entry.
	args := make([]string, 0, 2*len(b.streams))
	args = append(args, b.streams...)
	for range b.streams {
		args = append(args, ">")
	}
	res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: store.QueueGroup, Consumer: consumer, Streams: args, Count: 1, Block: b.opts.Block,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return out, err
	}
	for _, s := range res {
		for _, m := range s.Messages {
			out = append(out, b.newDelivery(s.Stream, m, false))
		}
	}
	if len(out) > n {
		// Entries arrived on several streams at once and there are fewer free
		// slots: hand the extra ones back for any worker to take.
		for _, d := range out[n:] {
			b.settleNow(d, HandBack)
		}
		out = out[:n]
	}
	return out, nil
}

// handle runs one delivery and settles it.
func (b *Broker) handle(p iface.TaskProcessor, d *delivery) {
	defer b.untrack(d)
	if d.bad == nil && !b.IsTaskRegistered(string(d.msg.Kind)) {
		d.bad = &tasks.ErrorInfo{Code: CodeUnknownKind, Message: fmt.Sprintf("no worker handles tasks of kind %q", d.msg.Kind)}
	}
	if d.bad != nil {
		b.reject(d, *d.bad)
		b.settleNow(d, Ack)
		return
	}
	b.stats.delivered.Add(1)
	err := process(p, b.signature(d))
	d.mu.Lock()
	o := d.outcome
	d.mu.Unlock()
	if o.kind == outcomeNone {
		msg := "the task ended without an outcome"
		if err != nil {
			msg += ": " + err.Error()
		}
		b.log.Error("task ended without an outcome", "task", d.msg.ID, "entry", d.entry, "err", err)
		b.reject(d, tasks.ErrorInfo{Code: CodeInternal, Message: msg})
		o = Ack
	}
	b.settleNow(d, o)
}

// process calls p.Process, turning a panic into an error.
func process(p iface.TaskProcessor, sig *mtasks.Signature) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker: task processor panicked: %v", r)
		}
	}()
	return p.Process(sig)
}

// reject fails the task of a delivery that cannot run, when its id is readable.
func (b *Broker) reject(d *delivery, info tasks.ErrorInfo) {
	b.stats.rejected.Add(1)
	id := d.taskID()
	b.log.Warn("dropping a queue entry that cannot run", "entry", d.entry, "task", id, "code", info.Code, "reason", info.Message)
	if b.opts.Reject == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.settleTimeout())
	defer cancel()
	err := retry.Do(ctx, func(ctx context.Context) error { return b.opts.Reject(ctx, id, info) }, transientRedis)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrFinal) {
		b.log.Error("could not fail the task of a dropped entry", "entry", d.entry, "task", id, "err", err)
	}
}

func transientRedis(err error) bool {
	return !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrFinal) && !errors.Is(err, store.ErrStale) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
