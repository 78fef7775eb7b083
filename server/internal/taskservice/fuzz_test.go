package taskservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/taskwire/taskwire/server/internal/paramschema"
	"github.com/taskwire/taskwire/shared/tasks"
)

// exportSchema is the params schema the export kind registers.
const exportSchema = `{"type":"object","properties":{"rows":{"type":"integer","minimum":1,"maximum":1000000}},"required":["rows"],"additionalProperties":false}`

// FuzzParseCreateRequest checks the body of POST /api/v1/tasks: every input is
// either refused with a *tasks.ValidationError that names a stable code and says
// what is wrong, or accepted with a valid socket id; then its params, checked
// against the export schema, are either refused field by field or accepted in
// canonical form, within their bounds.
func FuzzParseCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"export","params":{"rows":10}}`,
		`{"kind":"export","params":{"rows":1000000},"socketId":"AbC-_0"}`,
		`{"kind":"export","params":{"rows":0}}`,
		`{"kind":"export","params":{"rows":"10"}}`,
		`{"kind":"export","params":{"rows":1e3}}`,
		`{"kind":"export","params":{"rows":1,"x":1}}`,
		`{"kind":"export","params":null}`,
		`{"kind":"nope","params":{}}`,
		`{"kind":"export","params":{"rows":1},"socketId":"a b"}`,
		`{"kind":"export","params":{"rows":1}} {}`,
		`{"kind":"export","params":{"rows":1},"kind":"export"}`,
		`{"KIND":"export","params":{"ROWS":5}}`,
		`[]`, `null`, ``, `{`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	sch, err := paramschema.Compile([]byte(exportSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseCreateRequest(body)
		if err != nil {
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, not a *tasks.ValidationError: %v", err, err)
			}
			if c := ve.ErrorCode(); c != "invalid_params" {
				t.Fatalf("unstable code %q: %v", c, err)
			}
			if ve.Message == "" || ve.Error() == "" {
				t.Fatalf("error without a message: %#v", ve)
			}
			return
		}
		if req.SocketID != "" && !validSocketID(req.SocketID) {
			t.Fatalf("accepted socket id %q", req.SocketID)
		}
		params, err := sch.Apply(req.Params)
		if err != nil {
			var pe *paramschema.Error
			if !errors.As(err, &pe) || len(pe.Details) == 0 {
				t.Fatalf("params error %v (%T)", err, err)
			}
			return
		}
		var p struct{ Rows int }
		dec := json.NewDecoder(bytes.NewReader(params))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || p.Rows < 1 || p.Rows > 1_000_000 {
			t.Fatalf("accepted params %s out of bounds (%v)", params, err)
		}
		if again, err := sch.Apply(params); err != nil || !bytes.Equal(again, params) {
			t.Fatalf("params %s are not canonical: %s, %v", params, again, err)
		}
	})
}
