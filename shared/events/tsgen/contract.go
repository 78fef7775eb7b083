package main

import (
	"reflect"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// serverEvent is an event the server sends to browsers.
type serverEvent struct {
	ident   string // name of the Go constant in package events
	name    string // its value, the event name on the wire
	payload reflect.Type
}

// clientEvent is an event a browser sends to the server, with an acknowledgement.
type clientEvent struct {
	ident   string
	name    string
	request reflect.Type
	// acks are the alternatives the acknowledgement carries.
	acks []reflect.Type
}

// number is an integer constant the web app needs.
type number struct {
	pkg   reflect.Type // any named type of the constant's package, to find its source
	ident string
	value int64
}

// The contract. Every constant of package events must appear here (Generate checks
// it against the source), so a new event cannot be forgotten.
var (
	serverEvents = []serverEvent{
		{"TaskProgress", events.TaskProgress, reflect.TypeFor[events.Progress]()},
		{"TaskStage", events.TaskStage, reflect.TypeFor[events.Stage]()},
		{"TaskMetadata", events.TaskMetadata, reflect.TypeFor[events.Metadata]()},
		{"TaskStream", events.TaskStream, reflect.TypeFor[events.Stream]()},
		{"TaskCompleted", events.TaskCompleted, reflect.TypeFor[events.Completed]()},
		{"TaskFailed", events.TaskFailed, reflect.TypeFor[events.Failed]()},
		{"TaskCancelled", events.TaskCancelled, reflect.TypeFor[events.Cancelled]()},
		{"TaskState", events.TaskState, reflect.TypeFor[events.State]()},
		{"TaskTokenExpired", events.TaskTokenExpired, reflect.TypeFor[events.TokenExpired]()},
		{"InboxItem", events.InboxItem, reflect.TypeFor[events.InboxEntry]()},
	}
	clientEvents = []clientEvent{
		{"TaskSubscribe", events.TaskSubscribe, reflect.TypeFor[events.SubscribeRequest](),
			[]reflect.Type{reflect.TypeFor[events.SubscribeAck](), reflect.TypeFor[events.AckError]()}},
		{"TaskUnsubscribe", events.TaskUnsubscribe, reflect.TypeFor[events.SubscribeRequest](),
			[]reflect.Type{reflect.TypeFor[events.SubscribeRequest](), reflect.TypeFor[events.AckError]()}},
		{"TaskCancel", events.TaskCancel, reflect.TypeFor[events.CancelRequest](),
			[]reflect.Type{reflect.TypeFor[events.State](), reflect.TypeFor[events.AckError]()}},
		{"AuthRefresh", events.AuthRefresh, reflect.TypeFor[events.RefreshRequest](),
			[]reflect.Type{reflect.TypeFor[events.RefreshAck](), reflect.TypeFor[events.AckError]()}},
		{"TaskReceived", events.TaskReceived, reflect.TypeFor[events.ReceivedRequest](),
			[]reflect.Type{reflect.TypeFor[events.ReceivedAck](), reflect.TypeFor[events.AckError]()}},
		{"InboxAck", events.InboxAck, reflect.TypeFor[events.InboxAckRequest](),
			[]reflect.Type{reflect.TypeFor[events.InboxAckReply](), reflect.TypeFor[events.AckError]()}},
	}
	numbers = []number{
		{reflect.TypeFor[tasks.ExportParams](), "MinExportRows", tasks.MinExportRows},
		{reflect.TypeFor[tasks.ExportParams](), "MaxExportRows", tasks.MaxExportRows},
	}
	// extraTypes are declared even when no event refers to them.
	extraTypes = []reflect.Type{reflect.TypeFor[tasks.ExportParams](), reflect.TypeFor[tasks.KindInfo](), reflect.TypeFor[events.InboxAckRequest]()}
)

// tsPrefix is put before the Go name of a type of the given package (import path
// suffix), so that names read well in TypeScript and do not shadow its globals
// (tasks.Record would shadow the Record utility type).
var tsPrefix = map[string]string{
	"shared/tasks": "Task",
}
