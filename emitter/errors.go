package emitter

import (
	"errors"
	"reflect"

	"github.com/taskwire/taskwire/emitter/wire"
)

// ErrReservedEvent is returned by Emit for event names that Socket.IO reserves
// (connect, connect_error, disconnect, disconnecting, newListener, removeListener).
var ErrReservedEvent = errors.New("emitter: reserved event name")

// ErrInvalidNamespace is returned when a namespace name cannot be used.
var ErrInvalidNamespace = wire.ErrInvalidNamespace

// ErrNoEvent is returned when an event name is empty.
var ErrNoEvent = errors.New("emitter: empty event name")

// ErrAckNotSupported is returned when the last argument of Emit or ServerSideEmit is
// a function: an emitter cannot receive acknowledgements.
var ErrAckNotSupported = errors.New("emitter: acknowledgements are not supported")

// ErrNoPublisher is returned when an Emitter made with a nil Publisher is asked to
// publish (it can still Encode).
var ErrNoPublisher = errors.New("emitter: no publisher")

var reserved = map[string]bool{
	"connect":        true,
	"connect_error":  true,
	"disconnect":     true,
	"disconnecting":  true,
	"newListener":    true,
	"removeListener": true,
}

func checkEvent(event string, args []any) error {
	if event == "" {
		return ErrNoEvent
	}
	if reserved[event] {
		return &eventError{event: event}
	}
	if n := len(args); n > 0 && args[n-1] != nil && reflect.TypeOf(args[n-1]).Kind() == reflect.Func {
		return ErrAckNotSupported
	}
	return nil
}

type eventError struct{ event string }

func (e *eventError) Error() string { return `emitter: "` + e.event + `" is a reserved event name` }
func (e *eventError) Unwrap() error { return ErrReservedEvent }
