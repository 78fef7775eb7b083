package tasks

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is where a task is in its life.
type State string

// The task states. Completed, Failed and Cancelled are final: a task in a final state
// never changes again.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Final reports whether s is a final state.
func (s State) Final() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// ErrorInfo says why a task failed.
type ErrorInfo struct {
	// Code is stable and machine readable, for example "worker_lost" or "result_too_large".
	Code string `json:"code"`
	// Message is for people.
	Message string `json:"message"`
}

// Result describes the output of a completed task.
type Result struct {
	// URL is where the owner downloads the result, relative to the server.
	URL string `json:"url"`
	// Rows is the number of data rows.
	Rows int64 `json:"rows"`
	// Bytes is the size of the result as downloaded.
	Bytes int64 `json:"bytes"`
	// ContentType is the media type of the result.
	ContentType string `json:"contentType"`
	// Filename is the name offered to the browser.
	Filename string `json:"filename"`
	// Value is the value of a JSON result, sent with the record and the
	// task:completed event (a file result has none).
	Value json.RawMessage `json:"value,omitempty"`
}

// Record is the latest snapshot of one task. The server creates it when the task is
// accepted; the worker updates it together with every event it publishes, so it is
// never behind what a browser saw.
type Record struct {
	ID    string `json:"taskId"`
	Kind  Kind   `json:"kind"`
	State State  `json:"state"`
	// Owner is the identity that started the task; it is never sent to clients.
	Owner string `json:"-"`
	// Seq increases with every event published for the task.
	Seq     int64   `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	// Stage is the id of the current stage; StageMessage says it for people.
	Stage        string `json:"stage,omitempty"`
	StageMessage string `json:"stageMessage,omitempty"`
	// EtaSeconds is the estimated time left, when the worker can tell.
	EtaSeconds *float64 `json:"etaSeconds,omitempty"`
	// Attempts counts the runs started so far; MaxAttempts bounds it.
	Attempts    int `json:"attempts"`
	MaxAttempts int `json:"maxAttempts"`
	// NextAttemptAt is set while a retry is scheduled.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	// CancelRequested is set when the owner asked to cancel a running task; the
	// worker stops it and the state becomes cancelled.
	CancelRequested bool            `json:"cancelRequested,omitempty"`
	Params          json.RawMessage `json:"params,omitempty"`
	CreatedAt       time.Time       `json:"createdAt"`
	StartedAt       *time.Time      `json:"startedAt,omitempty"`
	FinishedAt      *time.Time      `json:"finishedAt,omitempty"`
	Result          *Result         `json:"result,omitempty"`
	Error           *ErrorInfo      `json:"error,omitempty"`
	// Metadata is the metadata of the current attempt, every SetMetadata of
	// the task merged into one JSON object (at most MaxMetadataBytes).
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Streams counts the items appended to each stream of the current attempt
	// (the last MaxStreamItems of each are kept).
	Streams map[string]int64 `json:"streams,omitempty"`
	// SchemaHash is the version of the kind (KindInfo.SchemaHash) whose schema
	// the parameters were validated against.
	SchemaHash string `json:"schemaHash,omitempty"`
	// NoLiveWorker says that no live worker served the kind when the task was
	// created: it waits until one starts.
	NoLiveWorker bool `json:"noLiveWorker,omitempty"`
	// QueuePosition is, for a queued task, how many tasks of its kind are ahead
	// of it in the queue (at most 1000); the server computes it on reads.
	QueuePosition *int `json:"queuePosition,omitempty"`
	// QueueEntry is the id of the task's entry in its kind's queue stream; it is
	// never sent to clients.
	QueueEntry string `json:"-"`
	// DeliveredAt is when a socket of the owner first confirmed that it had
	// the task's final event (task:received).
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	// SeenAt is when the owner first marked the task's inbox item seen
	// (POST /api/v1/inbox/ack or inbox:ack).
	SeenAt *time.Time `json:"seenAt,omitempty"`
	// HistoryLimit is how many of the task's events its history keeps (set
	// when the task is created, from TASK_HISTORY_LIMIT): 0 means the default
	// (2000, also for records older than histories), a negative number none.
	// It is never sent to clients.
	HistoryLimit int `json:"-"`
	// HistoryTrimmed is the seq of the newest event that the history is known
	// to have dropped when it started over (0: none). The events it dropped to
	// keep its limit follow from HistoryCount. It is never sent to clients.
	HistoryTrimmed int64 `json:"-"`
	// HistoryCount is how many events were added to the history (since it
	// last started over): when the history holds fewer, it dropped the oldest
	// to keep its limit. It is never sent to clients.
	HistoryCount int64 `json:"-"`
	// TraceParent is the W3C trace context of the task's creation, the root of
	// its trace (empty when tracing was off); it is never sent to clients.
	TraceParent string `json:"-"`
}

// Bounds of what one attempt of a task may keep in its record.
const (
	// MaxMetadataBytes bounds the JSON form of a record's merged metadata.
	MaxMetadataBytes = 64 << 10
	// MaxStreamItems is how many items of one stream are kept (the oldest go).
	MaxStreamItems = 10_000
	// MaxStreams bounds the number of streams of one attempt.
	MaxStreams = 16
	// MaxStreamChunkBytes bounds the JSON form of the items of one stream chunk.
	MaxStreamChunkBytes = 256 << 10
	// MaxResultValueBytes bounds the JSON form of a JSON result kept in the
	// record.
	MaxResultValueBytes = 256 << 10
)

// Hash field names of a record in Redis.
const (
	FieldID             = "id"
	FieldKind           = "kind"
	FieldState          = "state"
	FieldOwner          = "owner"
	FieldSeq            = "seq"
	FieldPercent        = "percent"
	FieldDone           = "done"
	FieldTotal          = "total"
	FieldStage          = "stage"
	FieldEtaSeconds     = "etaSeconds"
	FieldAttempts       = "attempts"
	FieldMaxAttempts    = "maxAttempts"
	FieldNextAttemptAt  = "nextAttemptAt"
	FieldCancel         = "cancelRequested"
	FieldParams         = "params"
	FieldCreatedAt      = "createdAt"
	FieldStartedAt      = "startedAt"
	FieldFinishedAt     = "finishedAt"
	FieldResultURL      = "resultUrl"
	FieldResultRows     = "resultRows"
	FieldResultBytes    = "resultBytes"
	FieldResultType     = "resultType"
	FieldResultName     = "resultName"
	FieldErrorCode      = "errorCode"
	FieldErrorMessage   = "errorMessage"
	FieldStageMessage   = "stageMessage"
	FieldMetadata       = "metadata"
	FieldResultValue    = "resultValue"
	FieldSchemaHash     = "schemaHash"
	FieldNoLiveWorker   = "noLiveWorker"
	FieldQueueEntry     = "queueEntry"
	FieldDeliveredAt    = "deliveredAt"
	FieldSeenAt         = "seenAt"
	FieldHistoryLimit   = "historyLimit"
	FieldHistoryTrimmed = "historyTrimmed"
	FieldHistoryCount   = "historyCount"
	FieldTraceParent    = "traceparent"
	// FieldStreamPrefix starts the field that counts the items of one stream:
	// "stream:<name>".
	FieldStreamPrefix = "stream:"
)

// Fields returns the record as Redis hash fields. Times are Unix milliseconds; absent
// optional values are left out.
func (r *Record) Fields() map[string]any {
	f := map[string]any{
		FieldID:          r.ID,
		FieldKind:        string(r.Kind),
		FieldState:       string(r.State),
		FieldOwner:       r.Owner,
		FieldSeq:         r.Seq,
		FieldPercent:     formatFloat(r.Percent),
		FieldDone:        r.Done,
		FieldTotal:       r.Total,
		FieldStage:       r.Stage,
		FieldAttempts:    r.Attempts,
		FieldMaxAttempts: r.MaxAttempts,
		FieldCreatedAt:   r.CreatedAt.UnixMilli(),
	}
	if r.EtaSeconds != nil {
		f[FieldEtaSeconds] = formatFloat(*r.EtaSeconds)
	}
	if len(r.Params) > 0 {
		f[FieldParams] = string(r.Params)
	}
	if r.NextAttemptAt != nil {
		f[FieldNextAttemptAt] = r.NextAttemptAt.UnixMilli()
	}
	if r.CancelRequested {
		f[FieldCancel] = "1"
	}
	if r.StartedAt != nil {
		f[FieldStartedAt] = r.StartedAt.UnixMilli()
	}
	if r.FinishedAt != nil {
		f[FieldFinishedAt] = r.FinishedAt.UnixMilli()
	}
	if r.Result != nil {
		f[FieldResultURL] = r.Result.URL
		f[FieldResultRows] = r.Result.Rows
		f[FieldResultBytes] = r.Result.Bytes
		f[FieldResultType] = r.Result.ContentType
		f[FieldResultName] = r.Result.Filename
	}
	if r.Error != nil {
		f[FieldErrorCode] = r.Error.Code
		f[FieldErrorMessage] = r.Error.Message
	}
	if r.StageMessage != "" {
		f[FieldStageMessage] = r.StageMessage
	}
	if len(r.Metadata) > 0 {
		f[FieldMetadata] = string(r.Metadata)
	}
	if r.Result != nil && len(r.Result.Value) > 0 {
		f[FieldResultValue] = string(r.Result.Value)
	}
	if r.SchemaHash != "" {
		f[FieldSchemaHash] = r.SchemaHash
	}
	if r.NoLiveWorker {
		f[FieldNoLiveWorker] = "1"
	}
	if r.QueueEntry != "" {
		f[FieldQueueEntry] = r.QueueEntry
	}
	for name, n := range r.Streams {
		f[FieldStreamPrefix+name] = n
	}
	if r.DeliveredAt != nil {
		f[FieldDeliveredAt] = r.DeliveredAt.UnixMilli()
	}
	if r.SeenAt != nil {
		f[FieldSeenAt] = r.SeenAt.UnixMilli()
	}
	if r.HistoryLimit != 0 {
		f[FieldHistoryLimit] = r.HistoryLimit
	}
	if r.HistoryTrimmed != 0 {
		f[FieldHistoryTrimmed] = r.HistoryTrimmed
	}
	if r.HistoryCount != 0 {
		f[FieldHistoryCount] = r.HistoryCount
	}
	if r.TraceParent != "" {
		f[FieldTraceParent] = r.TraceParent
	}
	return f
}

// RecordFromHash rebuilds a record from the fields of its Redis hash. It fails when
// the hash is not a record (no id) or a number does not parse.
func RecordFromHash(h map[string]string) (*Record, error) {
	if h[FieldID] == "" {
		return nil, fmt.Errorf("tasks: hash has no %q field", FieldID)
	}
	p := hashParser{h: h}
	r := &Record{
		ID:          h[FieldID],
		Kind:        Kind(h[FieldKind]),
		State:       State(h[FieldState]),
		Owner:       h[FieldOwner],
		Seq:         p.int(FieldSeq),
		Percent:     p.float(FieldPercent),
		Done:        p.int(FieldDone),
		Total:       p.int(FieldTotal),
		Stage:       h[FieldStage],
		EtaSeconds:  p.optFloat(FieldEtaSeconds),
		Attempts:    int(p.int(FieldAttempts)),
		MaxAttempts: int(p.int(FieldMaxAttempts)),
		CreatedAt:   p.time(FieldCreatedAt),
		StartedAt:   p.optTime(FieldStartedAt),
		FinishedAt:  p.optTime(FieldFinishedAt),
	}
	r.NextAttemptAt = p.optTime(FieldNextAttemptAt)
	r.CancelRequested = h[FieldCancel] == "1"
	if s := h[FieldParams]; s != "" {
		r.Params = json.RawMessage(s)
	}
	if h[FieldResultURL] != "" {
		r.Result = &Result{
			URL:         h[FieldResultURL],
			Rows:        p.int(FieldResultRows),
			Bytes:       p.int(FieldResultBytes),
			ContentType: h[FieldResultType],
			Filename:    h[FieldResultName],
		}
		if v := h[FieldResultValue]; v != "" {
			r.Result.Value = json.RawMessage(v)
		}
	}
	r.StageMessage = h[FieldStageMessage]
	if v := h[FieldMetadata]; v != "" {
		r.Metadata = json.RawMessage(v)
	}
	r.SchemaHash = h[FieldSchemaHash]
	r.NoLiveWorker = h[FieldNoLiveWorker] == "1"
	r.QueueEntry = h[FieldQueueEntry]
	r.DeliveredAt = p.optTime(FieldDeliveredAt)
	r.SeenAt = p.optTime(FieldSeenAt)
	r.HistoryLimit = int(p.int(FieldHistoryLimit))
	r.HistoryTrimmed = p.int(FieldHistoryTrimmed)
	r.HistoryCount = p.int(FieldHistoryCount)
	r.TraceParent = h[FieldTraceParent]
	for k := range h {
		if name, ok := strings.CutPrefix(k, FieldStreamPrefix); ok {
			if r.Streams == nil {
				r.Streams = make(map[string]int64)
			}
			r.Streams[name] = p.int(k)
		}
	}
	if h[FieldErrorCode] != "" {
		r.Error = &ErrorInfo{Code: h[FieldErrorCode], Message: h[FieldErrorMessage]}
	}
	if p.err != nil {
		return nil, p.err
	}
	return r, nil
}

type hashParser struct {
	h   map[string]string
	err error
}

func (p *hashParser) int(field string) int64 {
	s, ok := p.h[field]
	if !ok || s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("tasks: field %q: %w", field, err)
	}
	return n
}

func (p *hashParser) float(field string) float64 {
	s, ok := p.h[field]
	if !ok || s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("tasks: field %q: %w", field, err)
	}
	return f
}

func (p *hashParser) optFloat(field string) *float64 {
	if p.h[field] == "" {
		return nil
	}
	f := p.float(field)
	return &f
}

func (p *hashParser) time(field string) time.Time {
	ms := p.int(field)
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func (p *hashParser) optTime(field string) *time.Time {
	if p.h[field] == "" {
		return nil
	}
	t := p.time(field)
	return &t
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// NewID returns a new task id: 128 random bits, URL-safe base64 without padding
// (22 characters). Task ids are unguessable, so knowing one is not enough to reach a
// task; ownership is still checked on every access.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents a fatal error instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of a task id, so malformed ids can be
// rejected before they reach Redis.
func ValidID(s string) bool {
	if len(s) != 22 {
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
