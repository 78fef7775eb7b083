package broker

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

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

// signature builds the Machinery signature of a runnable delivery.
func (b *Broker) signature(d *delivery) *mtasks.Signature {
	m := d.msg
	return &mtasks.Signature{
		UUID:       m.ID,
		Name:       string(m.Kind),
		RoutingKey: d.stream,
		Args:       []mtasks.Arg{{Name: "params", Type: "string", Value: string(m.Params)}},
		Headers: mtasks.Headers{
			HeaderEntry:       d.entry,
			HeaderOwner:       m.Owner,
			HeaderEnqueuedAt:  m.EnqueuedAt.UTC().Format(time.RFC3339Nano),
			HeaderDelivery:    strconv.FormatUint(d.n, 10),
			HeaderTraceParent: m.TraceParent,
		},
		IgnoreWhenTaskNotRegistered: true,
	}
}

// Entry returns the stream entry id of a signature made by the broker.
func Entry(sig *mtasks.Signature) string {
	s, _ := sig.Headers[HeaderEntry].(string)
	return s
}

// TraceParent returns the trace context that the task's queue message carried
// ("" when none).
func TraceParent(sig *mtasks.Signature) string {
	s, _ := sig.Headers[HeaderTraceParent].(string)
	return s
}

// Owner returns the identity that started the task of a signature made by the
// broker.
func Owner(sig *mtasks.Signature) string {
	s, _ := sig.Headers[HeaderOwner].(string)
	return s
}
