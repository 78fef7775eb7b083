package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
)

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// ensureGroup creates the streams and their consumer group (from the first
// entry, so entries added while the group did not exist are read too).
func (b *Broker) ensureGroup(ctx context.Context) error {
	for _, stream := range b.streams {
		err := b.rdb.XGroupCreateMkStream(ctx, stream, store.QueueGroup, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("broker: create group on %s: %w", stream, err)
		}
	}
	return nil
}

// forgetIdleConsumers deletes consumers with nothing pending that have not been
// seen for an hour (or ten leases), so the group does not collect the names of
// every worker that ever ran.
func (b *Broker) forgetIdleConsumers(ctx context.Context) {
	idle := max(time.Hour, 10*b.opts.Lease)
	me := b.Consumer()
	for _, stream := range b.streams {
		cs, err := b.rdb.XInfoConsumers(ctx, stream, store.QueueGroup).Result()
		if err != nil {
			continue
		}
		for _, c := range cs {
			if c.Name != me && c.Pending == 0 && c.Idle > idle {
				_ = b.rdb.XGroupDelConsumer(ctx, stream, store.QueueGroup, c.Name).Err()
			}
		}
	}
}

// farewell removes this consumer from the group when nothing is pending for it.
func (b *Broker) farewell() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	consumer := b.Consumer()
	for _, stream := range b.streams {
		pending, err := b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: store.QueueGroup, Start: "-", End: "+", Count: 1, Consumer: consumer,
		}).Result()
		if err != nil || len(pending) > 0 {
			continue
		}
		_ = b.rdb.XGroupDelConsumer(ctx, stream, store.QueueGroup, consumer).Err()
	}
}
