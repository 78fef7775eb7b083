// Package broker is a Machinery broker (brokers/iface.Broker) on Redis Streams
// with a consumer group, so that the task queue under Machinery acknowledges.
//
// The server XADDs one entry per task to the stream of its kind
// (store.Keys.Queue, field store.QueueField, a tasks.Message in JSON); the broker
// reads the streams of the kinds its worker serves, so workers with different
// kinds share one Redis. The broker:
//
//   - reads with XREADGROUP only as many entries as it has free slots, so a busy
//     worker never hoards tasks that an idle one could run;
//   - hands each entry to Machinery's TaskProcessor as a Signature (UUID = task id,
//     Name = kind, one string argument with the params JSON; the entry id and the
//     owner travel in the headers);
//   - renews the lease of every running entry (XCLAIM of its own pending entries
//     every lease/3) and takes over entries idle for longer than the lease
//     (XAUTOCLAIM), so a task whose worker died runs again elsewhere;
//   - acknowledges (XACK + XDEL) only once the task is settled (Settle): finished,
//     handed back to the stream for another worker, or delayed for a retry in the
//     delayed set, which every worker moves back into the stream when due;
//   - moves the entries of the stream of the previous release
//     (store.Keys.LegacyQueue, every kind in one) to the streams of their kinds;
//   - survives malformed entries (acknowledged, dropped, their task failed when
//     its id is readable) and Redis outages (back-off, group re-created after a
//     restart), and never loses an entry it read: until it is settled the entry
//     stays in the group's pending list, and the lease brings it back.
package broker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RichardKnop/machinery/v2/brokers/iface"
	"github.com/RichardKnop/machinery/v2/config"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// Signature headers set by the broker.
const (
	// HeaderEntry holds the stream entry id of the delivery.
	HeaderEntry = "taskwire-entry"
	// HeaderOwner holds the identity that started the task.
	HeaderOwner = "taskwire-owner"
	// HeaderEnqueuedAt holds when the server queued the task (RFC 3339).
	HeaderEnqueuedAt = "taskwire-enqueued-at"
	// HeaderDelivery identifies the delivery within this broker, for Settle.
	HeaderDelivery = "taskwire-delivery"
	// HeaderTraceParent holds the W3C trace context of the enqueue
	// (tasks.Message.TraceParent), empty when it has none.
	HeaderTraceParent = "traceparent"
)

// Defaults of Options.
const (
	DefaultLease        = 30 * time.Second
	DefaultBlock        = time.Second
	DefaultPromoteEvery = 500 * time.Millisecond
)

// Codes of the failures the broker gives to Options.Reject.
const (
	CodeMalformed   = "malformed_message"
	CodeUnknownKind = "unknown_kind"
	CodeInternal    = "internal_error"
)

// Options configure a Broker.
type Options struct {
	// Keys name the streams and the delayed set.
	Keys store.Keys
	// Kinds are the kinds whose streams the broker reads. Default: export.
	Kinds []tasks.Kind
	// SkipLegacy leaves the stream of the previous release alone (tests).
	SkipLegacy bool
	// Lease is how long an entry may go without a heartbeat before another
	// consumer takes it over. Default: 30s.
	Lease time.Duration
	// Block is the longest wait of one read; it bounds how long a stop takes to be
	// noticed. Default: 1s.
	Block time.Duration
	// PromoteEvery is how often due retries are moved from the delayed set into the
	// stream. Default: 500ms.
	PromoteEvery time.Duration
	// Logger receives the broker's log. Default: discard.
	Logger *slog.Logger
	// Reject is called for an entry that can never run, with the task id when it
	// is readable ("" otherwise) and why; it fails the task record. The entry is
	// acknowledged afterwards.
	Reject func(ctx context.Context, taskID string, info tasks.ErrorInfo) error
	// LeaseLost is called with the task id of a running entry that another
	// consumer took over; the task must stop without writing anything.
	LeaseLost func(taskID string)
}

// Stats counts what the broker did since it started.
type Stats struct {
	// Delivered counts entries handed to the task processor.
	Delivered int64
	// Reclaimed counts entries taken over from a consumer whose lease ran out.
	Reclaimed int64
	// Rejected counts entries that could never run.
	Rejected int64
	// HandedBack counts entries put back into the stream.
	HandedBack int64
	// Delayed counts entries moved to the delayed set for a retry.
	Delayed int64
	// Promoted counts delayed messages moved back into the stream.
	Promoted int64
	// LeasesLost counts running entries another consumer took over.
	LeasesLost int64
	// ReadFailures counts failed reads of the stream (Redis unreachable...).
	ReadFailures int64
	// Rerouted counts entries moved from the previous release's stream to the
	// streams of their kinds.
	Rerouted int64
	// InFlight is the number of entries read and not settled yet.
	InFlight int64
}

// Broker implements iface.Broker on a Redis Stream. Create it with New.
type Broker struct {
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger
	cnf  *config.Config

	namesMu sync.RWMutex
	names   []string

	mu       sync.Mutex
	consumer string
	started  bool
	inflight map[uint64]*delivery // by delivery number
	next     uint64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	streams     []string          // the streams read: one per kind, then the legacy one
	claimCursor map[string]string // XAUTOCLAIM cursor by stream
	rr          int               // where the next read starts in streams
	lastClaim   map[string]time.Time

	stats struct {
		delivered, reclaimed, rejected, handedBack, delayed, promoted, leasesLost, readFailures, rerouted atomic.Int64
	}
}

var _ iface.Broker = (*Broker)(nil)

// New returns a Broker on rdb.
func New(rdb redis.UniversalClient, opts Options) *Broker {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Block <= 0 {
		opts.Block = DefaultBlock
	}
	if opts.PromoteEvery <= 0 {
		opts.PromoteEvery = DefaultPromoteEvery
	}
	if opts.Keys.Prefix == "" {
		opts.Keys.Prefix = store.DefaultPrefix
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = []tasks.Kind{tasks.KindExport}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		rdb:  rdb,
		opts: opts,
		log:  log,
		cnf: &config.Config{
			DefaultQueue:  opts.Keys.Queue(opts.Kinds[0]),
			NoUnixSignals: true,
		},
		inflight:    make(map[uint64]*delivery),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		claimCursor: make(map[string]string),
		lastClaim:   make(map[string]time.Time),
	}
	for _, k := range opts.Kinds {
		b.streams = append(b.streams, opts.Keys.Queue(k))
	}
	if !opts.SkipLegacy {
		b.streams = append(b.streams, opts.Keys.LegacyQueue())
	}
	for _, st := range b.streams {
		b.claimCursor[st] = "0-0"
	}
	return b
}

// Streams returns the keys of the streams the broker reads.
func (b *Broker) Streams() []string { return append([]string(nil), b.streams...) }

// legacy reports whether stream is the one of the previous release.
func (b *Broker) legacy(stream string) bool {
	return !b.opts.SkipLegacy && stream == b.opts.Keys.LegacyQueue()
}

// ConsumerName returns a consumer name that is unique to this process: the host
// name, the process id and a random suffix (a restarted container keeps its host
// name and often its pid).
func ConsumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + tasks.NewID()[:6]
}

// GetConfig returns the Machinery configuration the broker works with: the
// stream as default queue, Unix signals left to the program.
func (b *Broker) GetConfig() *config.Config { return b.cnf }

// SetRegisteredTaskNames records the task names the worker handles.
func (b *Broker) SetRegisteredTaskNames(names []string) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.names = append([]string(nil), names...)
}

// IsTaskRegistered reports whether the worker handles tasks called name.
func (b *Broker) IsTaskRegistered(name string) bool {
	b.namesMu.RLock()
	defer b.namesMu.RUnlock()
	for _, n := range b.names {
		if n == name {
			return true
		}
	}
	return false
}

// AdjustRoutingKey sets the routing key of s to the stream when it has none.
func (b *Broker) AdjustRoutingKey(s *mtasks.Signature) {
	if s.RoutingKey == "" {
		s.RoutingKey = b.opts.Keys.Queue(tasks.Kind(s.Name))
	}
}

// Consumer returns the consumer name in use, once StartConsuming was called.
func (b *Broker) Consumer() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.consumer
}

// Consuming reports whether the broker takes tasks: started and not stopping.
func (b *Broker) Consuming() bool {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	select {
	case <-b.stop:
		return false
	default:
		return started
	}
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	n := len(b.inflight)
	b.mu.Unlock()
	return Stats{
		Delivered:    b.stats.delivered.Load(),
		Reclaimed:    b.stats.reclaimed.Load(),
		Rejected:     b.stats.rejected.Load(),
		HandedBack:   b.stats.handedBack.Load(),
		Delayed:      b.stats.delayed.Load(),
		Promoted:     b.stats.promoted.Load(),
		LeasesLost:   b.stats.leasesLost.Load(),
		ReadFailures: b.stats.readFailures.Load(),
		Rerouted:     b.stats.rerouted.Load(),
		InFlight:     int64(n),
	}
}

// StartConsuming consumes the stream as consumer consumerTag (ConsumerName when
// empty) with concurrency slots until StopConsuming is called, then waits for the
// running tasks to be settled. Redis errors never end it: it backs off and goes
// on. It returns (false, nil): Machinery must not call it again.
func (b *Broker) StartConsuming(consumerTag string, concurrency int, p iface.TaskProcessor) (bool, error) {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return false, errors.New("broker: already consuming")
	}
	b.started = true
	if consumerTag == "" {
		consumerTag = ConsumerName()
	}
	b.consumer = consumerTag
	b.mu.Unlock()
	defer close(b.done)
	concurrency = max(concurrency, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); b.heartbeatLoop(ctx) }()
	go func() { defer bg.Done(); b.promoteLoop(ctx) }()

	if err := b.ensureGroup(ctx); err != nil {
		b.log.Warn("cannot create the consumer group yet", "err", err)
	}
	b.log.Info("consuming", "streams", b.streams, "group", store.QueueGroup, "consumer", consumerTag,
		"concurrency", concurrency, "lease", b.opts.Lease.String())
	b.consume(ctx, concurrency, p)

	cancel()
	bg.Wait()
	b.farewell()
	return false, nil
}

// StopConsuming stops taking entries and waits until every running task is
// settled and StartConsuming has returned.
func (b *Broker) StopConsuming() {
	b.stopOnce.Do(func() { close(b.stop) })
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	if started {
		<-b.done
	}
}

func (b *Broker) stopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}
