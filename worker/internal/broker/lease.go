package broker

import (
	"context"
	"time"

	"github.com/taskwire/taskwire/shared/store"
)

// heartbeatLoop renews the leases of the running entries every lease/3.
func (b *Broker) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.Lease / 3)
	defer t.Stop()
	health := outage{log: b.log, what: "renewing task leases"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		byStream := make(map[string][]any)
		seen := make(map[string]bool, len(b.inflight))
		for _, d := range b.inflight {
			if !seen[d.stream+" "+d.entry] {
				seen[d.stream+" "+d.entry] = true
				if byStream[d.stream] == nil {
					byStream[d.stream] = []any{store.QueueGroup, b.consumer}
				}
				byStream[d.stream] = append(byStream[d.stream], d.entry)
			}
		}
		b.mu.Unlock()
		failed := false
		for stream, ids := range byStream {
			lost, err := heartbeatScript.Run(ctx, b.rdb, []string{stream}, ids...).StringSlice()
			if err != nil {
				if ctx.Err() == nil {
					health.fail(err)
				}
				failed = true
				continue
			}
			for _, id := range lost {
				b.leaseLost(stream, id)
			}
		}
		if !failed {
			health.ok()
		}
	}
}

func (b *Broker) leaseLost(stream, entry string) {
	b.mu.Lock()
	var ds []*delivery
	for _, d := range b.inflight {
		if d.stream == stream && d.entry == entry {
			ds = append(ds, d)
		}
	}
	b.mu.Unlock()
	for _, d := range ds {
		b.lose(d)
	}
}

func (b *Broker) lose(d *delivery) {
	entry := d.entry
	d.mu.Lock()
	first := !d.lost && !d.settling
	d.lost = true
	d.mu.Unlock()
	if !first {
		return
	}
	b.stats.leasesLost.Add(1)
	id := d.taskID()
	b.log.Warn("lost the lease of a running task; another worker has it", "entry", entry, "task", id)
	if id != "" && b.opts.LeaseLost != nil {
		b.opts.LeaseLost(id)
	}
}
