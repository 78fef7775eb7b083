package progress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// Errors of the calls that broke a bound. The task goes on; the call changed
// nothing.
var (
	// ErrMetadataTooLarge: the merged metadata would exceed
	// tasks.MaxMetadataBytes as JSON.
	ErrMetadataTooLarge = fmt.Errorf("progress: metadata larger than %d bytes as JSON", tasks.MaxMetadataBytes)
	// ErrStreamItemsTooLarge: an item exceeds MaxStreamItemBytes as JSON, or
	// one call appends more than tasks.MaxStreamItems items.
	ErrStreamItemsTooLarge = fmt.Errorf("progress: a stream item is larger than %d bytes as JSON, or a call appends more than %d items",
		MaxStreamItemBytes, tasks.MaxStreamItems)
	// ErrTooManyStreams: the attempt already has tasks.MaxStreams streams.
	ErrTooManyStreams = fmt.Errorf("progress: a task has at most %d streams", tasks.MaxStreams)
	// ErrInvalidName: a stage or stream name that is not 1-64 of [a-z0-9._-].
	ErrInvalidName = errors.New("progress: names of stages and streams are 1 to 64 of a-z, 0-9, '.', '-', '_'")
	// ErrNotJSON: a value that encoding/json cannot encode.
	ErrNotJSON = errors.New("progress: the value cannot be encoded as JSON")
)

// MaxStreamItemBytes bounds the JSON form of one stream item.
const MaxStreamItemBytes = 64 << 10

// MaxStageMessageBytes bounds a stage's message; longer ones are cut.
const MaxStageMessageBytes = 500

// stream is what a Reporter holds of one stream of the attempt.
type stream struct {
	count    int64    // items published so far
	pending  [][]byte // items held back by the throttle
	bytes    int      // their size
	throttle Throttle
}

// Stage publishes task:stage: the task entered stage id, described by message.
// Later progress events carry the stage. Stage events are never throttled; a
// call that changes nothing sends nothing.
func (r *Reporter) Stage(ctx context.Context, id, message string) error {
	if !tasks.ValidKindName(id) {
		return fmt.Errorf("%w: stage %q", ErrInvalidName, id)
	}
	if len(message) > MaxStageMessageBytes {
		message = message[:MaxStageMessageBytes]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	if r.stage == id && r.stageMsg == message {
		return nil
	}
	r.stage, r.stageMsg = id, message
	fields := map[string]any{tasks.FieldStage: id, tasks.FieldStageMessage: message}
	payload := func(seq int64) any {
		return events.Stage{TaskID: r.id, Seq: seq, Attempt: r.attempt, Stage: id, Message: message, EmittedAt: r.p.now().UnixMilli()}
	}
	return r.liveWrite(ctx, events.TaskStage, payload, fields, nil)
}

// Metadata merges fields into the attempt's metadata (a field set to nil is
// removed) and publishes task:metadata with the whole merged object. Events are
// throttled like progress; what the throttle holds back goes out within one
// interval, and before the final event.
func (r *Reporter) Metadata(ctx context.Context, fields map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	next := maps.Clone(r.meta)
	for k, v := range fields {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if len(b) > tasks.MaxMetadataBytes {
		return ErrMetadataTooLarge
	}
	// Keep what encoding/json makes of the values, so later merges cannot fail
	// on a value that encoded once.
	var norm map[string]any
	_ = json.Unmarshal(b, &norm)
	r.meta, r.metaPending = norm, true
	if !r.metaThrot.Allow(r.p.now(), false) {
		r.schedule(ctx)
		return nil
	}
	return r.flushMetadata(ctx)
}

// flushMetadata publishes the merged metadata when it changed. r.mu is held.
func (r *Reporter) flushMetadata(ctx context.Context) error {
	if !r.metaPending {
		return nil
	}
	b, _ := json.Marshal(r.meta)
	payload := func(seq int64) any {
		return events.Metadata{TaskID: r.id, Seq: seq, Attempt: r.attempt, Metadata: b, EmittedAt: r.p.now().UnixMilli()}
	}
	err := r.liveWrite(ctx, events.TaskMetadata, payload, map[string]any{tasks.FieldMetadata: string(b)}, nil)
	if applied(err) {
		r.metaPending = false
	}
	return err
}

// Append adds items to stream name and publishes them as task:stream chunks.
// Chunks are throttled like progress (items held back go out together within
// one interval, and before the final event) and cut at
// tasks.MaxStreamChunkBytes. The last tasks.MaxStreamItems items of a stream are
// kept with the record; older ones are dropped there, but every chunk is
// published.
func (r *Reporter) Append(ctx context.Context, name string, items ...any) error {
	if !tasks.ValidKindName(name) {
		return fmt.Errorf("%w: stream %q", ErrInvalidName, name)
	}
	if len(items) == 0 {
		return nil
	}
	if len(items) > tasks.MaxStreamItems {
		return ErrStreamItemsTooLarge
	}
	enc := make([][]byte, len(items))
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("%w: item %d: %v", ErrNotJSON, i, err)
		}
		if len(b) > MaxStreamItemBytes {
			return fmt.Errorf("%w (item %d: %d bytes)", ErrStreamItemsTooLarge, i, len(b))
		}
		enc[i] = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	st := r.streams[name]
	if st == nil {
		if len(r.streams) >= tasks.MaxStreams {
			return ErrTooManyStreams
		}
		st = &stream{throttle: NewThrottle(r.rate)}
		r.streams[name] = st
	}
	for _, b := range enc {
		if st.bytes+len(b) > tasks.MaxStreamChunkBytes && len(st.pending) > 0 {
			// A full chunk goes out now, whatever the rate: the writer waits for
			// it, which is the back-pressure a fast producer needs.
			if err := r.flushStream(ctx, name, st); err != nil {
				return err
			}
		}
		st.pending = append(st.pending, b)
		st.bytes += len(b)
	}
	if !st.throttle.Allow(r.p.now(), false) {
		r.schedule(ctx)
		return nil
	}
	return r.flushStream(ctx, name, st)
}

// flushStream publishes the pending items of a stream as one chunk. r.mu is held.
func (r *Reporter) flushStream(ctx context.Context, name string, st *stream) error {
	if len(st.pending) == 0 {
		return nil
	}
	items := st.pending
	offset := st.count
	raw := make([]json.RawMessage, len(items))
	for i, b := range items {
		raw[i] = b
	}
	payload := func(seq int64) any {
		return events.Stream{TaskID: r.id, Seq: seq, Attempt: r.attempt, Stream: name, Offset: offset, Items: raw,
			EmittedAt: r.p.now().UnixMilli()}
	}
	fields := map[string]any{tasks.FieldStreamPrefix + name: offset + int64(len(items))}
	err := r.liveWrite(ctx, events.TaskStream, payload, fields, &store.Append{Stream: name, Items: items})
	if applied(err) {
		st.count += int64(len(items))
		st.pending, st.bytes = nil, 0
	}
	return err
}

// Flush publishes what throttling held back: metadata and stream items.
func (r *Reporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked(ctx)
}

func (r *Reporter) flushLocked(ctx context.Context) error {
	if r.finished {
		return nil
	}
	var first error
	if err := r.flushMetadata(ctx); err != nil && first == nil {
		first = err
	}
	for name, st := range r.streams {
		if err := r.flushStream(ctx, name, st); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// flushQuietly flushes before a final event that does not depend on it: a
// failure is logged, not returned.
func (r *Reporter) flushQuietly(ctx context.Context) {
	if err := r.Flush(ctx); err != nil && !errors.Is(err, taskctx.ErrCancelRequested) {
		r.p.log.Warn("held-back task events not published", "task", r.id, "attempt", r.attempt, "err", err)
	}
}

// schedule arranges a flush one throttle interval from now, unless one is due.
// r.mu is held.
func (r *Reporter) schedule(ctx context.Context) {
	r.flushCtx = ctx
	if r.flushTimer != nil {
		return
	}
	d := time.Second
	if r.rate > 0 {
		d = time.Duration(float64(time.Second) / r.rate)
	}
	r.flushTimer = time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.flushTimer = nil
		if err := r.flushLocked(r.flushCtx); err != nil && r.flushCtx.Err() == nil {
			r.p.log.Warn("held-back task events not published", "task", r.id, "attempt", r.attempt, "err", err)
		}
	})
}

// applied reports whether a liveWrite that returned err was written.
func applied(err error) bool { return err == nil || errors.Is(err, taskctx.ErrCancelRequested) }

// liveWrite writes one non-final event and maps the answer of the record like
// progress does: the task must stop on cancel, stale, final or not found; a
// Redis error is returned too (the caller keeps what it holds for the next
// try). r.mu is held.
func (r *Reporter) liveWrite(ctx context.Context, name string, payload func(seq int64) any, fields map[string]any, app *store.Append) error {
	if fields == nil {
		fields = map[string]any{}
	}
	fields[tasks.FieldState] = string(tasks.StateRunning)
	cancel, err := r.write(ctx, name, payload, fields, false, app)
	switch {
	case err == nil && cancel:
		return taskctx.ErrCancelRequested
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	return err
}
