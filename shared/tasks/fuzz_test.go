package tasks

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeMessage: a queue message is refused with an error, or has a valid id,
// a valid kind name and parameters that are a JSON object (what the worker relies
// on before it checks them against the kind's schema).
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"id":"AAAAAAAAAAAAAAAAAAAAAA","kind":"export","params":{"rows":5},"owner":"o","enqueuedAt":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"short","kind":"export","params":{"rows":5}}`))
	f.Add([]byte(`{"id":"AAAAAAAAAAAAAAAAAAAAAA","kind":"x"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if !ValidID(m.ID) {
			t.Fatalf("accepted id %q", m.ID)
		}
		if !ValidKindName(string(m.Kind)) {
			t.Fatalf("accepted kind %q", m.Kind)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(m.Params, &obj); err != nil || obj == nil {
			t.Fatalf("accepted params %s: %v", m.Params, err)
		}
	})
}
