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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RichardKnop/machinery/v2/brokers/iface"
	"github.com/RichardKnop/machinery/v2/config"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/retry"
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

// delivery is one entry read from the stream.
type delivery struct {
	n         uint64 // set by track
	stream    string
	entry     string
	raw       string
	msg       *tasks.Message
	bad       *tasks.ErrorInfo
	reclaimed bool

	mu       sync.Mutex
	outcome  Outcome
	settling bool
	lost     bool
}

func (d *delivery) taskID() string {
	if d.msg != nil && tasks.ValidID(d.msg.ID) {
		return d.msg.ID
	}
	return ""
}

func (b *Broker) newDelivery(stream string, m redis.XMessage, reclaimed bool) *delivery {
	d := &delivery{stream: stream, entry: m.ID, reclaimed: reclaimed}
	v, ok := m.Values[store.QueueField]
	s, isString := v.(string)
	if !ok || !isString {
		d.bad = &tasks.ErrorInfo{Code: CodeMalformed, Message: fmt.Sprintf("queue entry %s has no %q field", m.ID, store.QueueField)}
		return d
	}
	if msg, bad := oversized(m.ID, s); bad != nil {
		d.msg, d.bad = msg, bad // not kept, not decoded
		return d
	}
	d.raw = s
	msg, err := tasks.DecodeMessage([]byte(s))
	d.msg = msg
	if err != nil {
		d.bad = &tasks.ErrorInfo{Code: CodeMalformed, Message: "the queued task cannot run: " + err.Error()}
	}
	return d
}

func (b *Broker) track(d *delivery) {
	b.mu.Lock()
	b.next++
	d.n = b.next
	b.inflight[d.n] = d
	b.mu.Unlock()
}

func (b *Broker) untrack(d *delivery) {
	b.mu.Lock()
	delete(b.inflight, d.n)
	b.mu.Unlock()
}

// running reports whether entry is being run here.
func (b *Broker) running(entry string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.inflight {
		if d.entry == entry {
			return true
		}
	}
	return false
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

func (b *Broker) settleTimeout() time.Duration {
	return max(b.opts.Lease, 30*time.Second)
}

// signature builds the Machinery signature of a runnable delivery.
func (b *Broker) signature(d *delivery) *mtasks.Signature {
	m := d.msg
	return &mtasks.Signature{
		UUID:       m.ID,
		Name:       string(m.Kind),
		RoutingKey: d.stream,
		Args:       []mtasks.Arg{{Name: "params", Type: "string", Value: string(m.Params)}},
		Headers: mtasks.Headers{
			HeaderEntry:      d.entry,
			HeaderOwner:      m.Owner,
			HeaderEnqueuedAt: m.EnqueuedAt.UTC().Format(time.RFC3339Nano),
			HeaderDelivery:   strconv.FormatUint(d.n, 10),
		},
		IgnoreWhenTaskNotRegistered: true,
	}
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

// Entry returns the stream entry id of a signature made by the broker.
func Entry(sig *mtasks.Signature) string {
	s, _ := sig.Headers[HeaderEntry].(string)
	return s
}

// Owner returns the identity that started the task of a signature made by the
// broker.
func Owner(sig *mtasks.Signature) string {
	s, _ := sig.Headers[HeaderOwner].(string)
	return s
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

// Publish queues the task of s, as Machinery's SendTask does: the UUID must be a
// task id and the first argument the params JSON; the owner comes from the
// HeaderOwner header. With an ETA in the future the message waits in the delayed
// set. The task record must exist already (store.Create).
func (b *Broker) Publish(ctx context.Context, s *mtasks.Signature) error {
	m, err := messageOf(s)
	if err != nil {
		return err
	}
	raw, err := m.Encode()
	if err != nil {
		return fmt.Errorf("broker: publish %s: %w", s.UUID, err)
	}
	if s.ETA != nil && s.ETA.After(time.Now()) {
		err = b.rdb.ZAdd(ctx, b.opts.Keys.Delayed(), redis.Z{Score: float64(s.ETA.UnixMilli()), Member: raw}).Err()
	} else {
		err = b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.opts.Keys.Queue(m.Kind), Values: []any{store.QueueField, raw}}).Err()
	}
	if err != nil {
		return fmt.Errorf("broker: publish %s: %w", s.UUID, err)
	}
	return nil
}

func messageOf(s *mtasks.Signature) (*tasks.Message, error) {
	if !tasks.ValidID(s.UUID) {
		return nil, fmt.Errorf("broker: publish: %q is not a task id", s.UUID)
	}
	kind := tasks.Kind(s.Name)
	if !tasks.ValidKindName(s.Name) {
		return nil, fmt.Errorf("broker: publish %s: invalid kind %q", s.UUID, s.Name)
	}
	if len(s.Args) != 1 {
		return nil, fmt.Errorf("broker: publish %s: want one argument (the params JSON), got %d", s.UUID, len(s.Args))
	}
	raw, ok := s.Args[0].Value.(string)
	if !ok {
		return nil, fmt.Errorf("broker: publish %s: the argument is %T, not a JSON string", s.UUID, s.Args[0].Value)
	}
	params := json.RawMessage(raw)
	if p := bytes.TrimSpace(params); len(p) == 0 || p[0] != '{' || !json.Valid(p) {
		return nil, fmt.Errorf("broker: publish %s: the params are not a JSON object", s.UUID)
	}
	owner, _ := s.Headers[HeaderOwner].(string)
	return &tasks.Message{ID: s.UUID, Kind: kind, Params: params, Owner: owner, EnqueuedAt: time.Now().UTC()}, nil
}

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

// outage logs the start and the end of a run of failures once each, and the
// failures in between at debug level, so an outage does not flood the log.
type outage struct {
	log   *slog.Logger
	what  string
	down  bool
	since time.Time
	n     int
}

func (o *outage) fail(err error) {
	o.n++
	if !o.down {
		o.down, o.since = true, time.Now()
		o.log.Warn(o.what+" fails; retrying with back-off", "err", err)
		return
	}
	o.log.Debug(o.what+" still fails", "err", err, "failures", o.n)
}

func (o *outage) ok() {
	if o.down {
		o.log.Info(o.what+" works again", "after", time.Since(o.since).Round(time.Millisecond).String(), "failures", o.n)
	}
	o.down, o.n = false, 0
}
