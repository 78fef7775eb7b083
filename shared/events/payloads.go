package events

import (
	"encoding/json"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
)

// Progress is the payload of TaskProgress.
type Progress struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Percent is between 0 and 100 and never decreases within one attempt.
	Percent float64 `json:"percent"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Stage   string  `json:"stage"`
	// StageMessage says the current stage for people, when the task set one.
	StageMessage string `json:"stageMessage,omitempty"`
	// EtaSeconds is the estimated time left, when known.
	EtaSeconds *float64 `json:"etaSeconds,omitempty"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Completed is the payload of TaskCompleted.
type Completed struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// ResultURL is where the owner downloads the result.
	ResultURL string `json:"resultUrl"`
	Rows      int64  `json:"rows"`
	Bytes     int64  `json:"bytes"`
	// Result describes the result in full: its content type and file name, or
	// the value of a JSON result.
	Result *tasks.Result `json:"result,omitempty"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Failed is the payload of TaskFailed.
type Failed struct {
	TaskID string          `json:"taskId"`
	Seq    int64           `json:"seq"`
	Error  tasks.ErrorInfo `json:"error"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Cancelled is the payload of TaskCancelled.
type Cancelled struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Stage is the payload of TaskStage: the task entered a named stage.
type Stage struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Stage is the id of the stage ("render").
	Stage string `json:"stage"`
	// Message says it for people ("Drawing page 3").
	Message string `json:"message"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Metadata is the payload of TaskMetadata.
type Metadata struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Metadata is the whole metadata of the attempt after the change: every
	// SetMetadata merged into one object (not a patch).
	Metadata json.RawMessage `json:"metadata"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Stream is the payload of TaskStream: items appended to a named stream.
type Stream struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Stream names the stream ("metrics", "log").
	Stream string `json:"stream"`
	// Offset is the index of the first item in the stream of this attempt: a
	// client holding Offset items appends these; one holding fewer fetches the
	// gap (GET /api/v1/tasks/<id>/streams/<name>?from=N); one holding more
	// drops the items it has.
	Offset int64 `json:"offset"`
	// Items are the appended items, oldest first.
	Items []json.RawMessage `json:"items"`
	// Attempt is the attempt that published the event (from 1). An event of a
	// higher attempt than a client holds starts the task over: streams and
	// metadata of older attempts are void.
	Attempt int `json:"attempt,omitempty"`
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// State is the payload of TaskState: the task record as the owner sees it.
type State = tasks.Record

// SubscribeRequest is the payload of TaskSubscribe.
type SubscribeRequest struct {
	TaskID string `json:"taskId"`
	// Since, when given, is the seq of the last event the client has: the ack
	// then carries the events after it (SubscribeAck.Events). A whole number
	// from 0 to the task's seq.
	Since *int64 `json:"since,omitempty"`
}

// SubscribeAck is the acknowledgement of TaskSubscribe: the task's State and,
// when the request had Since, the events after it.
//
// Events published while the server reads the history may reach the socket
// both live (possibly before this ack) and in Events: a client keeps the
// events of a task it is subscribing to until the ack arrives, then applies
// Events and those kept, dropping every event whose seq it already has.
type SubscribeAck struct {
	State
	// Events are the task's events after Since, oldest first, up to State's
	// seq (absent without Since).
	Events []HistoryEvent `json:"events,omitempty"`
	// Recovered is true when Events are all the events after Since; false
	// when some are no longer kept (Reason says why), and then the State alone
	// is authoritative. Absent without Since.
	Recovered *bool `json:"recovered,omitempty"`
	// Reason says why Recovered is false: "trimmed" (the history keeps only
	// the last TASK_HISTORY_LIMIT events) or "expired" (the history is gone).
	Reason Reason `json:"reason,omitempty"`
}

// HistoryEvent is one event of a task's history, as it was emitted.
type HistoryEvent struct {
	Seq int64 `json:"seq"`
	// Event is the event's name (TaskProgress, TaskStage, ...).
	Event string `json:"event"`
	// Data is the event's payload, as it was sent.
	Data json.RawMessage `json:"data"`
}

// Reason says why a history could not give every event asked for.
type Reason string

// The reasons of SubscribeAck.Reason (and of the events route).
const (
	// ReasonTrimmed: the history keeps only the last TASK_HISTORY_LIMIT events.
	ReasonTrimmed Reason = "trimmed"
	// ReasonExpired: the history is gone (it expired, or Redis lost it).
	ReasonExpired Reason = "expired"
)

// InboxEntry is the payload of InboxItem and one entry of GET /api/v1/inbox: a
// task of the owner that finished and that the owner has not marked seen.
type InboxEntry struct {
	TaskID     string      `json:"taskId"`
	Kind       tasks.Kind  `json:"kind"`
	State      tasks.State `json:"state"`
	Seq        int64       `json:"seq"`
	FinishedAt time.Time   `json:"finishedAt"`
	// Error is set for a failed task.
	Error *tasks.ErrorInfo `json:"error,omitempty"`
}

// ReceivedRequest is the payload of TaskReceived: the client has the final
// event of task TaskID, whose seq is Seq.
type ReceivedRequest struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
}

// ReceivedAck is the acknowledgement of TaskReceived.
type ReceivedAck struct {
	TaskID      string    `json:"taskId"`
	DeliveredAt time.Time `json:"deliveredAt"`
}

// InboxAckRequest is the payload of InboxAck and the body of POST
// /api/v1/inbox/ack.
type InboxAckRequest struct {
	TaskIDs []string `json:"taskIds"`
}

// InboxAckReply is the acknowledgement of InboxAck and the answer of POST
// /api/v1/inbox/ack: the ids marked seen now or before.
type InboxAckReply struct {
	TaskIDs []string `json:"taskIds"`
}

// CancelRequest is the payload of TaskCancel.
type CancelRequest struct {
	TaskID string `json:"taskId"`
}

// TokenExpired is the payload of TaskTokenExpired.
type TokenExpired struct {
	// ExpiresAt is when the token expired.
	ExpiresAt time.Time `json:"expiresAt"`
}

// RefreshRequest is the payload of AuthRefresh.
type RefreshRequest struct {
	Token string `json:"token"`
}

// RefreshAck is the acknowledgement of an accepted AuthRefresh.
type RefreshAck struct {
	OK bool `json:"ok"`
	// ExpiresAt is when the new token expires; absent for tokens that do not.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// AckError is the acknowledgement of a request that was refused. A task that does
// not exist and a task of another identity get the same answer ("not_found").
type AckError struct {
	Error tasks.ErrorInfo `json:"error"`
}
