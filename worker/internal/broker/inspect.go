package broker

import (
	"context"
	"fmt"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"

	"github.com/taskwire/taskwire/shared/tasks"
)

// GetPendingTasks returns the tasks waiting in the stream (the first 1000),
// including those read by a worker and not acknowledged yet. Entries that are not
// valid messages are left out.
func (b *Broker) GetPendingTasks(string) ([]*mtasks.Signature, error) {
	var out []*mtasks.Signature
	for _, stream := range b.streams {
		msgs, err := b.rdb.XRangeN(context.Background(), stream, "-", "+", int64(1000-len(out))).Result()
		if err != nil {
			return nil, fmt.Errorf("broker: pending tasks: %w", err)
		}
		for _, m := range msgs {
			if d := b.newDelivery(stream, m, false); d.bad == nil {
				out = append(out, b.signature(d))
			}
		}
		if len(out) >= 1000 {
			break
		}
	}
	return out, nil
}

// GetDelayedTasks returns the tasks waiting for a retry (the first 1000), with
// their ETA.
func (b *Broker) GetDelayedTasks() ([]*mtasks.Signature, error) {
	zs, err := b.rdb.ZRangeWithScores(context.Background(), b.opts.Keys.Delayed(), 0, 999).Result()
	if err != nil {
		return nil, fmt.Errorf("broker: delayed tasks: %w", err)
	}
	out := make([]*mtasks.Signature, 0, len(zs))
	for _, z := range zs {
		s, _ := z.Member.(string)
		m, err := tasks.DecodeMessage([]byte(s))
		if err != nil {
			continue
		}
		sig := b.signature(&delivery{stream: b.opts.Keys.Queue(m.Kind), msg: m})
		eta := time.UnixMilli(int64(z.Score)).UTC()
		sig.ETA = &eta
		out = append(out, sig)
	}
	return out, nil
}
