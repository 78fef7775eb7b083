package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/worker/internal/broker"
)

func desc(subsystem, name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, nil, nil)
}

var (
	descDelivered    = desc("worker", "broker_delivered_total", "Queue entries read from the stream and handed to Machinery (new and reclaimed).")
	descReclaimed    = desc("worker", "broker_reclaimed_total", "Queue entries taken over from a consumer whose lease ran out.")
	descRejected     = desc("worker", "broker_rejected_total", "Queue entries that could never run (malformed, unknown kind); acknowledged and dropped.")
	descHandedBack   = desc("worker", "broker_handed_back_total", "Queue entries put back at the end of the stream.")
	descDelayed      = desc("worker", "broker_delayed_total", "Queue entries moved to the delayed set for a retry.")
	descPromoted     = desc("worker", "broker_promoted_total", "Delayed messages this worker moved back into the stream when due.")
	descLeasesLost   = desc("worker", "broker_leases_lost_total", "Running entries another consumer took over (this worker missed its lease).")
	descReadFailures = desc("worker", "broker_read_failures_total", "Failed reads of the stream (Redis unreachable...).")
	descInFlight     = desc("worker", "broker_in_flight", "Queue entries read and not settled yet.")

	descLength    = desc("queue", "length", "Entries in the task streams of the worker's kinds: waiting plus running (acknowledged entries are deleted). The same on every worker: aggregate with max, not sum.")
	descLag       = desc("queue", "lag", "Entries of the task stream not yet delivered to any worker: the backlog. The same on every worker.")
	descPending   = desc("queue", "pending", "Entries delivered to a worker and not acknowledged: running tasks, or lost ones waiting for their lease. The same on every worker.")
	descWaiting   = desc("queue", "delayed", "Tasks waiting for a retry in the delayed set. The same on every worker.")
	descConsumers = desc("queue", "consumers", "Consumers known to the workers' consumer group. The same on every worker.")
	descReadErrs  = desc("queue", "read_errors_total", "Reads of the queue's state for these metrics that failed; the queue gauges are left out until a read succeeds.")
)

// brokerCollector turns broker.Stats into metrics at every scrape.
type brokerCollector struct {
	stats func() broker.Stats
}

// Describe sends the descriptors of the broker's metrics.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descReclaimed, descRejected, descHandedBack,
		descDelayed, descPromoted, descLeasesLost, descReadFailures, descInFlight} {
		ch <- d
	}
}

// Collect reads the broker's counters once.
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descDelivered, s.Delivered)
	counter(descReclaimed, s.Reclaimed)
	counter(descRejected, s.Rejected)
	counter(descHandedBack, s.HandedBack)
	counter(descDelayed, s.Delayed)
	counter(descPromoted, s.Promoted)
	counter(descLeasesLost, s.LeasesLost)
	counter(descReadFailures, s.ReadFailures)
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight))
}

// QueueOptions configure WatchQueue.
type QueueOptions struct {
	// Interval is the shortest time between two reads of the queue's state;
	// scrapes in between get the last reading. Default 5s.
	Interval time.Duration
	// Timeout bounds one read. Default 1s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WatchQueue adds the depth of the task queue of the worker's kinds: the
// streams' length, the consumer group's lag and pending count (summed over
// streams), and the delayed set's size, read with one pipelined round trip
// (XLEN, XINFO GROUPS, ZCARD: each O(1) or O(groups)) at most once per interval,
// when a scrape asks.
func (m *Metrics) WatchQueue(rdb redis.UniversalClient, keys store.Keys, streams []string, opts *QueueOptions) {
	q := &queueCollector{rdb: rdb, keys: keys, streams: streams, interval: 5 * time.Second, timeout: time.Second, now: time.Now}
	if opts != nil {
		if opts.Interval > 0 {
			q.interval = opts.Interval
		}
		if opts.Timeout > 0 {
			q.timeout = opts.Timeout
		}
		if opts.Now != nil {
			q.now = opts.Now
		}
	}
	m.reg.MustRegister(q)
}

// queueState is one reading of the queue.
type queueState struct {
	length, lag, pending, delayed, consumers int64
}

type queueCollector struct {
	rdb      redis.UniversalClient
	keys     store.Keys
	streams  []string
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu     sync.Mutex // one reading at a time; later scrapes wait for it
	last   queueState
	ok     bool      // the last reading succeeded
	next   time.Time // when to read again; zero: at the next scrape
	errors float64
}

// Describe sends the descriptors of the queue's metrics.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLength, descLag, descPending, descWaiting, descConsumers, descReadErrs} {
		ch <- d
	}
}

// Collect sends the latest reading, reading the queue first when the last
// reading (or failed attempt: an outage is not hammered either) is older than
// the interval.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q.mu.Lock()
	if now := q.now(); !now.Before(q.next) {
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		st, err := q.read(ctx)
		cancel()
		q.next, q.ok = now.Add(q.interval), err == nil
		if err != nil {
			q.errors++
		} else {
			q.last = st
		}
	}
	st, ok, errs := q.last, q.ok, q.errors
	q.mu.Unlock()

	ch <- prometheus.MustNewConstMetric(descReadErrs, prometheus.CounterValue, errs)
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(descLength, st.length)
	gauge(descLag, st.lag)
	gauge(descPending, st.pending)
	gauge(descWaiting, st.delayed)
	gauge(descConsumers, st.consumers)
}

// read reads the queue's state in one round trip. A stream or group that does
// not exist yet reads as empty.
func (q *queueCollector) read(ctx context.Context) (queueState, error) {
	pipe := q.rdb.Pipeline()
	xlens := make([]*redis.IntCmd, len(q.streams))
	groups := make([]*redis.XInfoGroupsCmd, len(q.streams))
	for i, stream := range q.streams {
		xlens[i] = pipe.XLen(ctx, stream)
		groups[i] = pipe.XInfoGroups(ctx, stream)
	}
	zcard := pipe.ZCard(ctx, q.keys.Delayed())
	zcardOld := pipe.ZCard(ctx, q.keys.LegacyDelayed())
	_, _ = pipe.Exec(ctx) // errors are read per command below

	var st queueState
	var err error
	if st.delayed, err = zcard.Result(); err != nil {
		return st, err
	}
	old, err := zcardOld.Result()
	if err != nil {
		return st, err
	}
	st.delayed += old
	for i := range q.streams {
		var one queueState
		if one.length, err = xlens[i].Result(); err != nil {
			return st, err
		}
		list, err := groups[i].Result()
		if err != nil && !noSuchKey(err) {
			return st, err
		}
		one.lag = one.length // no group yet: nothing was delivered
		for _, g := range list {
			if g.Name != store.QueueGroup {
				continue
			}
			one.pending, one.consumers, one.lag = g.Pending, g.Consumers, g.Lag
			if one.lag < 0 {
				// Redis cannot tell after deletions in the stream (acknowledged
				// entries are deleted); every entry in it is pending or waiting.
				one.lag = max(one.length-one.pending, 0)
			}
		}
		st.length += one.length
		st.lag += one.lag
		st.pending += one.pending
		st.consumers = max(st.consumers, one.consumers)
	}
	return st, nil
}

func noSuchKey(err error) bool {
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "no such key")
}
