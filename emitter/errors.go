package emitter

import (
	"errors"

	"github.com/taskwire/taskwire/emitter/wire"
)

// ErrReservedEvent is returned by Emit for event names that Socket.IO reserves
// (connect, connect_error, disconnect, disconnecting, newListener, removeListener).
var ErrReservedEvent = errors.New("emitter: reserved event name")

// ErrInvalidNamespace is returned when a namespace name cannot be used.
var ErrInvalidNamespace = wire.ErrInvalidNamespace

// ErrNoEvent is returned when an event name is empty.
var ErrNoEvent = errors.New("emitter: empty event name")

var reserved = map[string]bool{
	"connect":        true,
	"connect_error":  true,
	"disconnect":     true,
	"disconnecting":  true,
	"newListener":    true,
	"removeListener": true,
}

func checkEvent(event string) error {
	if event == "" {
		return ErrNoEvent
	}
	if reserved[event] {
		return &eventError{event: event}
	}
	return nil
}

type eventError struct{ event string }

func (e *eventError) Error() string { return `emitter: "` + e.event + `" is a reserved event name` }
func (e *eventError) Unwrap() error { return ErrReservedEvent }
