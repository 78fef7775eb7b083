package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Message is what the server puts on the task queue for a worker to run. Params have
// been validated by the server against the kind's schema before the message is
// queued; the worker checks them again against its own.
type Message struct {
	ID         string          `json:"id"`
	Kind       Kind            `json:"kind"`
	Params     json.RawMessage `json:"params"`
	Owner      string          `json:"owner"`
	EnqueuedAt time.Time       `json:"enqueuedAt"`
	// TraceParent is the W3C trace context of the enqueue, so that the
	// worker's attempt joins the task's trace; empty when tracing is off (and
	// in messages of earlier releases).
	TraceParent string `json:"traceparent,omitempty"`
}

// Encode returns the JSON form of m.
func (m *Message) Encode() ([]byte, error) {
	return json.Marshal(m)
}

// DecodeMessage parses and checks a queued message. A message that fails here can
// never run and must be discarded (and its task failed, when its id is readable).
func DecodeMessage(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tasks: malformed queue message: %w", err)
	}
	if !ValidID(m.ID) {
		return &m, fmt.Errorf("tasks: queue message has invalid id %q", m.ID)
	}
	if !ValidKindName(string(m.Kind)) {
		return &m, fmt.Errorf("tasks: queue message %s has invalid kind %q", m.ID, m.Kind)
	}
	if p := bytes.TrimSpace(m.Params); len(p) == 0 || p[0] != '{' {
		return &m, fmt.Errorf("tasks: queue message %s: params must be a JSON object", m.ID)
	}
	return &m, nil
}
