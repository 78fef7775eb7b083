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
