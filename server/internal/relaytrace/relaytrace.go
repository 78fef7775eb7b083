// Package relaytrace makes the spans of the server's relay of task events:
// one span per event that this server read from Redis and wrote to the local
// sockets of the event's task room, in the trace of the task.
//
// The adapter's wire format is Node's and carries no trace context, and the
// events themselves go to browsers as they are, so neither can hold one.
// Instead the span's parent is the trace context of the task's record
// (tasks.Record.TraceParent, written by the server that created the task),
// read with one HGET the first time this server relays an event of the task
// and kept (a bounded cache; a task's entry goes with its final event). The
// read, and the span itself, happen on a goroutine of their own, after the
// delivery, with the delivery's times: the relay never waits for Redis or for
// the exporter. Events that arrive faster than the goroutine keeps up are
// dropped from the traces (never from the sockets). With tracing off the
// server does not install the hook at all: the adapter pays one nil check per
// broadcast.
package relaytrace

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/shared/tracing"
)

// Defaults of Options.
const (
	// DefaultQueue is how many relayed events may wait for their span.
	DefaultQueue = 4096
	// DefaultCacheSize is how many tasks' trace contexts are kept.
	DefaultCacheSize = 10_000
	lookupTimeout    = time.Second
)

// Options configure a Relay.
type Options struct {
	Tracer trace.Tracer
	// Redis and Keys locate the task records.
	Redis redis.UniversalClient
	Keys  store.Keys
	// Queue and CacheSize bound the memory (defaults above).
	Queue, CacheSize int
	Logger           *slog.Logger
}

// Relay turns relayed events into spans. Its Observe is the adapter's
// Config.OnRelay.
type Relay struct {
	opts    Options
	items   chan item
	cache   map[string]string // task id -> traceparent ("" when it has none)
	dropped atomic.Int64
	done    chan struct{}
}

type item struct {
	taskID, event       string
	seq, attempt        int64
	recipients          int
	received, delivered time.Time
}

// New returns a Relay; Run makes its spans.
func New(opts Options) *Relay {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{opts: opts, items: make(chan item, opts.Queue), cache: map[string]string{}, done: make(chan struct{})}
}

// Observe notes one relayed broadcast; only events to a task room count. It
// never blocks.
func (r *Relay) Observe(rl *redisadapter.Relayed) {
	var id string
	for _, room := range rl.Rooms {
		if s, ok := strings.CutPrefix(room, events.TaskRoom("")); ok && tasks.ValidID(s) {
			id = s
			break
		}
	}
	if id == "" {
		return
	}
	name, args, ok := rl.Event()
	if !ok {
		return
	}
	it := item{taskID: id, event: name, recipients: rl.Recipients, received: rl.Received, delivered: rl.Delivered}
	if len(args) > 0 {
		if p, ok := args[0].(map[string]any); ok {
			it.seq, it.attempt = number(p["seq"]), number(p["attempt"])
		}
	}
	select {
	case r.items <- it:
	default:
		r.dropped.Add(1)
	}
}

// Dropped returns how many relayed events got no span because the queue was
// full.
func (r *Relay) Dropped() int64 { return r.dropped.Load() }

// Run makes the spans until ctx is done, then those still queued, and
// returns.
func (r *Relay) Run(ctx context.Context) {
	defer close(r.done)
	for {
		select {
		case it := <-r.items:
			r.span(ctx, it)
		case <-ctx.Done():
			for {
				select {
				case it := <-r.items:
					r.span(context.WithoutCancel(ctx), it)
				default:
					return
				}
			}
		}
	}
}

// Done is closed when Run has returned.
func (r *Relay) Done() <-chan struct{} { return r.done }

func (r *Relay) span(ctx context.Context, it item) {
	tp, ok := r.cache[it.taskID]
	if !ok {
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		v, err := r.opts.Redis.HGet(lctx, r.opts.Keys.Task(it.taskID), tasks.FieldTraceParent).Result()
		cancel()
		if err != nil && err != redis.Nil {
			r.opts.Logger.Debug("relay trace: reading the task's trace context", "task", it.taskID, "err", err)
			return
		}
		tp = v
		if len(r.cache) >= r.opts.CacheSize {
			for k := range r.cache { // any one: the map's order is random
				delete(r.cache, k)
				break
			}
		}
		r.cache[it.taskID] = tp
	}
	if final(it.event) {
		delete(r.cache, it.taskID)
	}
	if tp == "" {
		return
	}
	pctx := tracing.WithTraceParent(ctx, tp)
	attrs := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(it.received),
		trace.WithAttributes(tracing.AttrTaskID.String(it.taskID), tracing.AttrEvent.String(it.event),
			tracing.AttrSeq.Int64(it.seq), tracing.AttrRecipients.Int(it.recipients)),
	}
	if it.attempt > 0 {
		attrs = append(attrs, trace.WithAttributes(tracing.AttrAttempt.Int64(it.attempt)))
	}
	_, span := r.opts.Tracer.Start(pctx, "taskwire.relay "+it.event, attrs...)
	span.End(trace.WithTimestamp(it.delivered))
}

// final reports whether event is the last of a task.
func final(event string) bool {
	return event == events.TaskCompleted || event == events.TaskFailed || event == events.TaskCancelled
}

// number reads a whole number as the decoders deliver it (in the type of its
// msgpack encoding: a small seq is an int8), 0 for anything else.
func number(v any) int64 {
	n, _ := decode.Int64(v)
	return n
}
