package events

// Events sent by the server (and the worker, through Redis) to browsers.
const (
	// TaskProgress carries a Progress payload.
	TaskProgress = "task:progress"
	// TaskCompleted carries a Completed payload. It is the last event of a task that
	// succeeded.
	TaskCompleted = "task:completed"
	// TaskFailed carries a Failed payload. It is the last event of a task that failed.
	TaskFailed = "task:failed"
	// TaskCancelled carries a Cancelled payload. It is the last event of a task that
	// was cancelled.
	TaskCancelled = "task:cancelled"
	// TaskState carries a State payload: the whole current snapshot of a task.
	TaskState = "task:state"
	// TaskStage carries a Stage payload: the task entered a named stage.
	TaskStage = "task:stage"
	// TaskMetadata carries a Metadata payload: the task's merged metadata after
	// a change.
	TaskMetadata = "task:metadata"
	// TaskStream carries a Stream payload: items appended to one of the task's
	// named streams (batched and throttled like progress).
	TaskStream = "task:stream"
	// TaskTokenExpired carries a TokenExpired payload: the token the socket
	// authenticated with has expired. The server disconnects the socket
	// TOKEN_EXPIRY_GRACE later (default 10 s) unless the client sent a fresh
	// token with AuthRefresh first.
	TaskTokenExpired = "task:token_expired"
	// InboxItem carries an InboxEntry payload, to every socket of a task's
	// owner (room user:<identity>) when the task completes, fails or is
	// cancelled.
	InboxItem = "inbox:item"
)

// Events sent by browsers to the server. Each expects an acknowledgement.
const (
	// TaskSubscribe asks to follow a task: payload SubscribeRequest, ack
	// SubscribeAck (the State, with the missed events when Since was given) or
	// an AckError.
	TaskSubscribe = "task:subscribe"
	// TaskUnsubscribe stops following a task: payload SubscribeRequest, ack the same
	// SubscribeRequest or an AckError.
	TaskUnsubscribe = "task:unsubscribe"
	// TaskCancel asks to cancel a task: payload CancelRequest, ack State or an AckError.
	TaskCancel = "task:cancel"
	// AuthRefresh replaces the token of the socket (before or after it
	// expired): payload RefreshRequest, ack RefreshAck or an AckError
	// ("unauthorized"; "identity_changed" for a token of another identity).
	AuthRefresh = "auth:refresh"
	// TaskReceived confirms that the client has a task's final event: payload
	// ReceivedRequest, ack ReceivedAck or an AckError. The first confirmation
	// of any socket of the owner sets the record's deliveredAt.
	TaskReceived = "task:received"
	// InboxAck marks inbox items seen: payload InboxAckRequest, ack
	// InboxAckReply or an AckError (nothing is changed when any id is refused).
	InboxAck = "inbox:ack"
)

// Names lists the server-to-browser events.
var Names = []string{TaskProgress, TaskStage, TaskMetadata, TaskStream, TaskCompleted, TaskFailed, TaskCancelled, TaskState, TaskTokenExpired, InboxItem}
