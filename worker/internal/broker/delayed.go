package broker

import (
	"context"
	"time"

	"github.com/taskwire/taskwire/shared/store"
)

// promoteLoop moves due retries into the stream, and now and then forgets
// consumers that are long gone.
func (b *Broker) promoteLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.PromoteEvery)
	defer t.Stop()
	health := outage{log: b.log, what: "moving due retries into the queue"}
	lastCleanup := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.promote(ctx); err != nil {
			if ctx.Err() == nil {
				health.fail(err)
			}
			continue
		}
		health.ok()
		if time.Since(lastCleanup) > 5*time.Minute {
			lastCleanup = time.Now()
			b.forgetIdleConsumers(ctx)
		}
	}
}

// promote moves every due message of the delayed sets (this release's and the
// previous one's) into the streams of their kinds.
func (b *Broker) promote(ctx context.Context) error {
	const batch = 100
	for _, set := range []string{b.opts.Keys.Delayed(), b.opts.Keys.LegacyDelayed()} {
		for {
			n, err := promoteScript.Run(ctx, b.rdb, []string{set, b.opts.Keys.LegacyQueue()},
				time.Now().UnixMilli(), batch, store.QueueField, b.opts.Keys.Queue("")).Int()
			if err != nil {
				return err
			}
			b.stats.promoted.Add(int64(n))
			if n < batch {
				break
			}
		}
	}
	return nil
}
