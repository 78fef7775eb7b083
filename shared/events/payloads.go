package events

import "github.com/taskwire/taskwire/shared/tasks"

// Progress is the payload of TaskProgress.
type Progress struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
	// Percent is between 0 and 100 and never decreases within one attempt.
	Percent float64 `json:"percent"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Stage   string  `json:"stage"`
	// EtaSeconds is the estimated time left, when known.
	EtaSeconds *float64 `json:"etaSeconds,omitempty"`
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
	// EmittedAt is when the event was published, in Unix milliseconds, when the
	// publisher says (taskwire's workers do). Servers measure with it how long
	// events take to reach sockets.
	EmittedAt int64 `json:"emittedAt,omitempty"`
}

// Cancelled is the payload of TaskCancelled.
type Cancelled struct {
	TaskID string `json:"taskId"`
	Seq    int64  `json:"seq"`
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

// AckError is the acknowledgement of a request that was refused. A task that does
// not exist and a task of another identity get the same answer ("not_found").
type AckError struct {
	Error tasks.ErrorInfo `json:"error"`
}
