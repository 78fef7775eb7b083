package transport

import (
	"reflect"
	"slices"
	"sync"

	"github.com/zishang520/engine.io/v2/types"
)

// listenerList is a small types.EventEmitter for sessions: a handful of listeners
// in one slice, instead of the dependency's concurrent map of concurrent
// slices. It behaves like the dependency's emitter: listeners run in the order
// they were added, a Once listener runs at most once, and RemoveListener removes
// the first listener whose function has the same code pointer.
type listenerList struct {
	mu        sync.Mutex
	listeners []listenerEntry
}

type listenerEntry struct {
	evt  types.EventName
	fn   types.Listener
	ptr  uintptr
	once *sync.Once // nil for On listeners
}

var _ types.EventEmitter = (*listenerList)(nil)

// AddListener adds listeners for evt.
func (e *listenerList) AddListener(evt types.EventName, listeners ...types.Listener) error {
	return e.add(evt, listeners, false)
}

// On adds listeners for evt.
func (e *listenerList) On(evt types.EventName, listeners ...types.Listener) error {
	return e.add(evt, listeners, false)
}

// Once adds listeners for evt that run at most once.
func (e *listenerList) Once(evt types.EventName, listeners ...types.Listener) error {
	return e.add(evt, listeners, true)
}

func (e *listenerList) add(evt types.EventName, listeners []types.Listener, once bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, fn := range listeners {
		if fn == nil {
			continue
		}
		l := listenerEntry{evt: evt, fn: fn, ptr: reflect.ValueOf(fn).Pointer()}
		if once {
			l.once = &sync.Once{}
		}
		e.listeners = append(e.listeners, l)
	}
	return nil
}

// Emit calls the listeners of evt with args, outside the lock (a listener may
// add or remove listeners).
func (e *listenerList) Emit(evt types.EventName, args ...any) {
	var buf [4]listenerEntry
	list := buf[:0]
	e.mu.Lock()
	for _, l := range e.listeners {
		if l.evt == evt {
			list = append(list, l)
		}
	}
	e.mu.Unlock()
	for _, l := range list {
		if l.once == nil {
			l.fn(args...)
			continue
		}
		l.once.Do(func() {
			e.remove(evt, func(x listenerEntry) bool { return x.once == l.once })
			l.fn(args...)
		})
	}
}

func (e *listenerList) remove(evt types.EventName, match func(listenerEntry) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, l := range e.listeners {
		if l.evt == evt && match(l) {
			e.listeners = slices.Delete(e.listeners, i, i+1)
			return true
		}
	}
	return false
}

// has reports whether evt has listeners.
func (e *listenerList) has(evt types.EventName) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.listeners {
		if l.evt == evt {
			return true
		}
	}
	return false
}

// EventNames returns the events that have listeners.
func (e *listenerList) EventNames() []types.EventName {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []types.EventName
	for _, l := range e.listeners {
		if !slices.Contains(out, l.evt) {
			out = append(out, l.evt)
		}
	}
	return out
}

// GetMaxListeners returns 0: there is no limit.
func (e *listenerList) GetMaxListeners() uint { return 0 }

// SetMaxListeners does nothing: there is no limit.
func (e *listenerList) SetMaxListeners(uint) {}

// ListenerCount returns the number of listeners of evt.
func (e *listenerList) ListenerCount(evt types.EventName) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.listeners {
		if l.evt == evt {
			n++
		}
	}
	return n
}

// Listeners returns the listeners of evt.
func (e *listenerList) Listeners(evt types.EventName) []types.Listener {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []types.Listener
	for _, l := range e.listeners {
		if l.evt == evt {
			out = append(out, l.fn)
		}
	}
	return out
}

// RemoveListener removes the first listener of evt with the same function.
func (e *listenerList) RemoveListener(evt types.EventName, listener types.Listener) bool {
	if listener == nil {
		return false
	}
	ptr := reflect.ValueOf(listener).Pointer()
	return e.remove(evt, func(l listenerEntry) bool { return l.ptr == ptr })
}

// RemoveAllListeners removes every listener of evt and reports whether there
// was one.
func (e *listenerList) RemoveAllListeners(evt types.EventName) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.listeners)
	e.listeners = slices.DeleteFunc(e.listeners, func(l listenerEntry) bool { return l.evt == evt })
	return len(e.listeners) != n
}

// Clear removes every listener.
func (e *listenerList) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listeners = nil
}

// Len returns the number of events that have listeners.
func (e *listenerList) Len() int { return len(e.EventNames()) }
