// Package taskservice is what the server does with tasks on behalf of an identity:
// accept them, read them, cancel them, hand out their results. The HTTP API and the
// socket events both call it, so both enforce the same rules: a task belongs to the
// identity that started it, and everybody else is told it does not exist.
package taskservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/server/internal/paramschema"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/shared/tracing"
)

// Errors of the service. Handlers map them to status codes.
var (
	// ErrNotFound: the task does not exist, or belongs to someone else.
	ErrNotFound = errors.New("taskservice: task not found")
	// ErrFinished: the task completed or failed and cannot be cancelled.
	ErrFinished = errors.New("taskservice: task already finished")
	// ErrNotReady: the task has not finished yet, so it has no result.
	ErrNotReady = errors.New("taskservice: task not finished")
	// ErrNoResult: the task failed or was cancelled; it has no result.
	ErrNoResult = errors.New("taskservice: task has no result")
	// ErrResultGone: the result expired or was removed.
	ErrResultGone = errors.New("taskservice: result no longer available")
	// ErrUnavailable: Redis could not be reached; nothing was accepted.
	ErrUnavailable = errors.New("taskservice: task store unavailable")
	// ErrRateLimited: the identity creates tasks faster than allowed; Create
	// returns it as a *RateLimitError.
	ErrRateLimited = errors.New("taskservice: too many task creations")
	// ErrTooManyActive: the identity has as many active tasks as allowed; Create
	// returns it as an *ActiveLimitError.
	ErrTooManyActive = errors.New("taskservice: too many active tasks")
)

// RateLimitError says that a task creation was refused by the rate limit, and
// when the next one can succeed. It matches ErrRateLimited.
type RateLimitError struct {
	// RetryAfter is how long until the identity may create a task again.
	RetryAfter time.Duration
	// Rate and Burst are the limit: tasks per second, and at once.
	Rate  float64
	Burst int
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("taskservice: too many task creations (at most %g per second, %d at once); retry in %v", e.Rate, e.Burst, e.RetryAfter)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// ActiveLimitError says that a task creation was refused because the identity
// already has Max active (queued or running) tasks. It matches ErrTooManyActive.
type ActiveLimitError struct {
	Active, Max int
}

func (e *ActiveLimitError) Error() string {
	return fmt.Sprintf("taskservice: %d tasks are queued or running, the most allowed is %d", e.Active, e.Max)
}

// Is reports whether target is ErrTooManyActive.
func (e *ActiveLimitError) Is(target error) bool { return target == ErrTooManyActive }

// Anyone, passed as the owner, acts on any task whoever owns it: a backend
// with an API key (and a viewer, for its one task, which the caller checks).
// Create then takes the owner from the request's subject. No identity can be
// Anyone: identities have no control characters.
const Anyone = "\x00anyone"

// Joiner makes a socket join a task's room, on whichever server replica the socket
// lives, provided the socket belongs to identity.
type Joiner interface {
	JoinTask(ctx context.Context, identity, socketID, taskID string) error
}

// Config holds what a Service needs.
type Config struct {
	Store  *store.Store
	Joiner Joiner
	// Key is the Socket.IO adapter channel prefix (default "socket.io").
	Key string
	// Sharded publishes the events the server itself sends (task:cancelled of a
	// queued task) in the sharded adapter format, for SOCKETIO_ADAPTER=sharded.
	Sharded bool
	// MaxAttempts bounds the runs of a task whose kind sets no bound of its own
	// (default 3).
	MaxAttempts int
	// KindsCacheTTL is how long Create trusts its last read of the kinds
	// registry (default DefaultKindsCacheTTL; negative: read it every time).
	KindsCacheTTL time.Duration
	// SchemaCacheSize bounds the compiled params schemas kept (default
	// paramschema.DefaultCacheSize).
	SchemaCacheSize int
	// CreateRate and CreateBurst limit how fast one identity creates tasks, across
	// every replica (a token bucket in Redis): CreateRate per second on average,
	// CreateBurst at once. CreateRate 0 means no limit; CreateBurst defaults to 1.
	CreateRate  float64
	CreateBurst int
	// MaxActive bounds the active (queued or running) tasks of one identity,
	// across every replica; 0 means no bound.
	MaxActive int
	// HistoryLimit is how many events the history of each new task keeps
	// (tasks.Record.HistoryLimit): 0 means store.DefaultHistoryLimit, a
	// negative number none (TASK_HISTORY_LIMIT=0).
	HistoryLimit int
	// OnDelivered, when set, is told for every task whose final event a
	// socket of its owner confirmed for the first time (Received) how long
	// after the task finished that was.
	OnDelivered func(time.Duration)
	Logger      *slog.Logger
	// OnChange, when set, is told of the changes of state the service makes
	// (created, cancelled while queued, retried), for the operator dashboard.
	// It must not block.
	OnChange func(operator.TaskChange)
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Tracer makes the spans of task creations (default: none recorded).
	Tracer trace.Tracer
}

// Service implements the task operations. It is safe for concurrent use.
type Service struct {
	store       *store.Store
	joiner      Joiner
	events      *emitter.Emitter
	maxAttempts int
	createRate  float64
	createBurst int
	maxActive   int
	history     int
	log         *slog.Logger
	now         func() time.Time
	tracer      trace.Tracer
	onChange    func(operator.TaskChange)
	onDelivered func(time.Duration)

	kinds   kindCache
	schemas *paramschema.Cache

	badMu      sync.Mutex
	badSchemas map[string]bool // kinds' schema versions already logged as not compiling
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, joiner: cfg.Joiner, maxAttempts: cfg.MaxAttempts, log: cfg.Logger, now: cfg.Now,
		createRate: cfg.CreateRate, createBurst: max(cfg.CreateBurst, 1), maxActive: max(cfg.MaxActive, 0), history: cfg.HistoryLimit,
		kinds: kindCache{ttl: cfg.KindsCacheTTL}, schemas: paramschema.NewCache(cfg.SchemaCacheSize), badSchemas: map[string]bool{},
		onChange: cfg.OnChange, onDelivered: cfg.OnDelivered}
	if s.kinds.ttl == 0 {
		s.kinds.ttl = DefaultKindsCacheTTL
	}
	// The emitter only encodes here: the store publishes its messages in the same
	// script that updates the record.
	s.events = emitter.New(nil, &emitter.Options{Key: cfg.Key, Sharded: cfg.Sharded})
	if s.maxAttempts <= 0 {
		s.maxAttempts = 3
	}
	if s.history == 0 {
		s.history = store.DefaultHistoryLimit
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tracer = cfg.Tracer
	if s.tracer == nil {
		s.tracer = noop.NewTracerProvider().Tracer("")
	}
	return s
}

// CreateRequest is the body of a task creation.
type CreateRequest struct {
	Kind   string          `json:"kind"`
	Params json.RawMessage `json:"params"`
	// SocketID, when set, names a socket of the caller that must follow the task
	// from its first event.
	SocketID string `json:"socketId,omitempty"`
	// Subject is the identity a backend (an API key) starts the task for;
	// only with an API key, and required with one.
	Subject string `json:"subject,omitempty"`
}

// ParseCreateRequest decodes a task creation body and checks its envelope: an
// object with a string kind, params and an optional socket id, nothing else.
// The kind and the params are checked against the kinds registry by Create.
// Errors are *tasks.ValidationError values that say what is wrong.
func ParseCreateRequest(body []byte) (*CreateRequest, error) {
	var req CreateRequest
	if err := tasks.DecodeStrict(body, &req, ""); err != nil {
		var ve *tasks.ValidationError
		if errors.As(err, &ve) && ve.Field == "" {
			ve.Field = "body"
		}
		return nil, err
	}
	if req.SocketID != "" && !validSocketID(req.SocketID) {
		return nil, &tasks.ValidationError{Field: "socketId", Message: "must be a Socket.IO socket id (1 to 64 letters, digits, '-' or '_')"}
	}
	if req.Subject != "" && !validSubject(req.Subject) {
		return nil, &tasks.ValidationError{Field: "subject", Message: "must be 1 to 256 characters without control characters"}
	}
	return &req, nil
}

func validSubject(s string) bool {
	if len(s) > 256 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validSocketID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Create accepts a task for owner from a request body: its kind must be in the
// kinds registry and its params must match the schema of the kind's current
// version (their top-level defaults filled in). A kind whose workers are all
// gone is accepted (workers may be scaled to zero): the record says
// NoLiveWorker. It returns a *tasks.ValidationError for a bad body, an
// *UnknownKindError, a *ParamsError, a *KindUnavailableError when the kind's
// schema does not compile, a *RateLimitError or an *ActiveLimitError when a
// limit of the identity refuses it, ErrUnavailable when Redis fails.
//
// With owner Anyone (an API key) the task is created for the request's
// subject, which is required; the limits are the subject's. Any other owner
// may not name a subject.
func (s *Service) Create(ctx context.Context, owner string, body []byte) (*tasks.Record, error) {
	req, err := ParseCreateRequest(body)
	if err != nil {
		return nil, err
	}
	switch {
	case owner == Anyone && req.Subject == "":
		return nil, &tasks.ValidationError{Field: "subject", Message: "is required with an API key: the identity the task is for (for example \"u-42\")"}
	case owner == Anyone:
		owner = req.Subject
	case req.Subject != "":
		return nil, &tasks.ValidationError{Field: "subject", Message: "is only for backends with an API key; a task is always created for the caller"}
	}
	ks, err := s.resolveKind(ctx, req.Kind)
	if err != nil {
		return nil, err
	}
	params, err := s.checkParams(ctx, ks, req.Params)
	if err != nil {
		return nil, err
	}
	cur := ks.Versions[0]
	kind := tasks.Kind(ks.Name)
	if s.createRate > 0 {
		ok, wait, err := s.store.Allow(ctx, s.store.Keys().CreateRate(owner), s.createRate, s.createBurst)
		if err != nil {
			s.log.ErrorContext(ctx, "rate limit", "err", err)
			return nil, ErrUnavailable
		}
		if !ok {
			return nil, &RateLimitError{RetryAfter: wait, Rate: s.createRate, Burst: s.createBurst}
		}
	}
	now := s.now().UTC()
	rec := &tasks.Record{
		ID:           tasks.NewID(),
		Kind:         kind,
		State:        tasks.StateQueued,
		Owner:        owner,
		Total:        totalOf(cur.Info, params),
		MaxAttempts:  s.maxAttemptsOf(cur.Info),
		Params:       params,
		CreatedAt:    now,
		SchemaHash:   cur.Info.SchemaHash,
		NoLiveWorker: cur.Workers == 0,
		HistoryLimit: s.history,
		TraceParent:  tracing.TraceParent(ctx),
	}
	if n, err := s.store.CreateLimited(ctx, rec, s.maxActive); err != nil {
		if errors.Is(err, store.ErrTooManyActive) {
			return nil, &ActiveLimitError{Active: n, Max: s.maxActive}
		}
		s.log.ErrorContext(ctx, "create task", "task", rec.ID, "err", err)
		return nil, ErrUnavailable
	}
	if req.SocketID != "" && s.joiner != nil {
		// The join is published before the task is queued, so the socket is in the
		// room before the worker can emit anything. A failure here is not fatal: the
		// client can still follow the task with task:subscribe.
		if err := s.joiner.JoinTask(ctx, owner, req.SocketID, rec.ID); err != nil {
			s.log.WarnContext(ctx, "join task room", "task", rec.ID, "err", err)
		}
	}
	msg := &tasks.Message{ID: rec.ID, Kind: kind, Params: params, Owner: owner, EnqueuedAt: now}
	// Enqueue also notes the queue entry in the record, for the queue position.
	if err := s.enqueue(ctx, msg); err != nil {
		s.log.ErrorContext(ctx, "enqueue task", "task", rec.ID, "err", err)
		s.failUnqueued(rec)
		return nil, ErrUnavailable
	}
	s.changed(rec, tasks.StateQueued)
	return rec, nil
}

// failUnqueued marks a task whose message never reached the queue as failed, so it
// does not look queued forever.
func (s *Service) failUnqueued(rec *tasks.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info := tasks.ErrorInfo{Code: "enqueue_failed", Message: "the task could not be queued; try again"}
	now := s.now().UnixMilli()
	u := &store.Update{
		TaskID: rec.ID, Seq: rec.Seq + 1,
		Fields: map[string]any{
			tasks.FieldState: string(tasks.StateFailed), tasks.FieldFinishedAt: now,
			tasks.FieldErrorCode: info.Code, tasks.FieldErrorMessage: info.Message,
		},
	}
	err := s.finalEvent(rec, u, events.TaskFailed, events.Failed{TaskID: rec.ID, Seq: u.Seq, Error: info, EmittedAt: now}, &info)
	if err == nil {
		err = s.store.Apply(ctx, u)
	}
	if err != nil {
		s.log.Warn("mark unqueued task failed", "task", rec.ID, "err", err)
	}
}

// Get returns the record of task id if owner owns it, with its queue position
// while it waits in its kind's queue.
func (s *Service) Get(ctx context.Context, owner, id string) (*tasks.Record, error) {
	rec, err := s.owned(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	s.fillQueuePositions(ctx, []*tasks.Record{rec})
	return rec, nil
}

// owned returns the record of task id if owner owns it.
func (s *Service) owned(ctx context.Context, owner, id string) (*tasks.Record, error) {
	rec, err := s.Snapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	if owner != Anyone && rec.Owner != owner {
		return nil, ErrNotFound
	}
	return rec, nil
}

// Snapshot returns the record of task id whoever owns it, for sockets that
// were admitted to the task's room already (see Get for everyone else).
func (s *Service) Snapshot(ctx context.Context, id string) (*tasks.Record, error) {
	if !tasks.ValidID(id) {
		return nil, ErrNotFound
	}
	rec, err := s.store.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		s.log.ErrorContext(ctx, "get task", "task", id, "err", err)
		return nil, ErrUnavailable
	}
	return rec, nil
}

// List returns the recent tasks of owner, newest first, with the queue
// positions of those that wait in their kind's queue.
func (s *Service) List(ctx context.Context, owner string) ([]*tasks.Record, error) {
	list, err := s.store.ListByOwner(ctx, owner, 0)
	if err != nil {
		s.log.ErrorContext(ctx, "list tasks", "err", err)
		return nil, ErrUnavailable
	}
	s.fillQueuePositions(ctx, list)
	return list, nil
}

// CancelOutcome says what Cancel did.
type CancelOutcome int

// Outcomes of Cancel.
const (
	// Cancelled: the task is cancelled (it was queued, or was already cancelled).
	Cancelled CancelOutcome = iota
	// Requested: the task is running; its worker was asked to stop it and will
	// publish task:cancelled.
	Requested
)

// Cancel cancels task id of owner. A queued task is cancelled at once (it will never
// start) and task:cancelled is published; a running task is stopped by its worker.
// Cancelling a cancelled task is not an error; a completed or failed one gives
// ErrFinished.
func (s *Service) Cancel(ctx context.Context, owner, id string) (*tasks.Record, CancelOutcome, error) {
	if _, err := s.owned(ctx, owner, id); err != nil {
		return nil, 0, err
	}
	rec, err := s.store.CancelQueued(ctx, id, s.now(), func(rec *tasks.Record, u *store.Update) error {
		return s.finalEvent(rec, u, events.TaskCancelled, events.Cancelled{TaskID: id, Seq: u.Seq, EmittedAt: s.now().UnixMilli()}, nil)
	})
	switch {
	case err == nil:
		s.changed(rec, tasks.StateCancelled)
		return rec, Cancelled, nil
	case errors.Is(err, store.ErrFinal):
		if rec.State == tasks.StateCancelled {
			return rec, Cancelled, nil
		}
		return rec, 0, ErrFinished
	case errors.Is(err, store.ErrRunning):
		rec, err = s.store.RequestCancel(ctx, id)
		switch {
		case err == nil:
			return rec, Requested, nil
		case errors.Is(err, store.ErrFinal):
			// It finished in the meantime.
			rec, gerr := s.owned(ctx, owner, id)
			if gerr != nil {
				return nil, 0, gerr
			}
			if rec.State == tasks.StateCancelled {
				return rec, Cancelled, nil
			}
			return rec, 0, ErrFinished
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrNotFound
	}
	s.log.ErrorContext(ctx, "cancel task", "task", id, "err", err)
	return nil, 0, ErrUnavailable
}

// finalEvent sets in u the event that ends task rec (name with payload, for the
// sockets in the task's room and the task's history) and the inbox:item of its
// owner, with the state and finish time that u sets and info for a failure.
// They are encoded as the worker's emitter does (uid "emitter", so every server
// replica delivers them); the payload is encoded to JSON once.
func (s *Service) finalEvent(rec *tasks.Record, u *store.Update, name string, payload any, info *tasks.ErrorInfo) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	m, err := s.events.To(events.TaskRoom(rec.ID)).Encode(name, json.RawMessage(b))
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	u.Publish = &store.Publish{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}
	u.Event = &store.Event{Name: name, Data: b}
	st, _ := u.Fields[tasks.FieldState].(string)
	at, _ := u.Fields[tasks.FieldFinishedAt].(int64)
	entry := events.InboxEntry{TaskID: rec.ID, Kind: rec.Kind, State: tasks.State(st), Seq: u.Seq,
		FinishedAt: time.UnixMilli(at).UTC(), Error: info}
	m, err = s.events.To(events.UserRoom(rec.Owner)).Encode(events.InboxItem, entry)
	if err != nil {
		return fmt.Errorf("encode %s: %w", events.InboxItem, err)
	}
	u.Inbox = &store.Publish{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}
	return nil
}

// OpenResult returns the record and the result of task id of owner: the file
// the worker stored, or the JSON value of a JSON result. The caller closes the
// reader.
func (s *Service) OpenResult(ctx context.Context, owner, id string) (*tasks.Record, io.ReadCloser, error) {
	rec, err := s.owned(ctx, owner, id)
	if err != nil {
		return nil, nil, err
	}
	switch rec.State {
	case tasks.StateCompleted:
	case tasks.StateFailed, tasks.StateCancelled:
		return rec, nil, ErrNoResult
	default:
		return rec, nil, ErrNotReady
	}
	if rec.Result != nil && len(rec.Result.Value) > 0 {
		// A JSON result lives in the record.
		return rec, io.NopCloser(bytes.NewReader(rec.Result.Value)), nil
	}
	rc, err := s.store.OpenResult(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return rec, nil, ErrResultGone
	case err != nil:
		s.log.ErrorContext(ctx, "open result", "task", id, "err", err)
		return rec, nil, ErrUnavailable
	}
	return rec, rc, nil
}
