package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseParams: parameters are refused with a *ValidationError, or accepted in
// canonical form (parsing them again gives the same bytes) within their bounds.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{`{"rows":1}`, `{"rows":1000000}`, `{"rows":1000001}`, `{"rows":-1}`, `{"rows":1.0}`,
		`{"rows":"1"}`, `{"rows":1,"rows":2}`, `{"Rows":3}`, `{}`, `null`, `[1]`, `{"rows":1}x`, ` {"rows" : 7 } `, "{\"rows\":1\u0000}"} {
		f.Add("export", []byte(s))
	}
	f.Add("", []byte(`{"rows":1}`))
	f.Add("Export", []byte(`{"rows":1}`))
	f.Fuzz(func(t *testing.T, kind string, raw []byte) {
		params, err := ParseParams(Kind(kind), raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Message == "" {
				t.Fatalf("error %T %v is not a ValidationError with a message", err, err)
			}
			return
		}
		if Kind(kind) != KindExport {
			t.Fatalf("accepted kind %q", kind)
		}
		var p ExportParams
		if err := json.Unmarshal(params, &p); err != nil || p.Validate() != nil {
			t.Fatalf("accepted %s as %s (%v)", raw, params, err)
		}
		again, err := ParseParams(Kind(kind), params)
		if err != nil || !bytes.Equal(again, params) {
			t.Fatalf("not canonical: %s -> %s, %v", params, again, err)
		}
	})
}

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
