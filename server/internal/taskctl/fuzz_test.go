package taskctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
)

// FuzzParseCreateRequest checks the body of POST /api/v1/tasks: every input is
// either refused with a *tasks.ValidationError that names a stable code and says
// what is wrong, or accepted with a known kind, canonical parameters within their
// bounds, a valid socket id, and a queue message the worker accepts.
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
	f.Fuzz(func(t *testing.T, body []byte) {
		req, kind, params, err := ParseCreateRequest(body)
		if err != nil {
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, not a *tasks.ValidationError: %v", err, err)
			}
			if c := ve.ErrorCode(); c != "invalid_params" && c != "unknown_kind" {
				t.Fatalf("unstable code %q: %v", c, err)
			}
			if ve.Message == "" || ve.Error() == "" {
				t.Fatalf("error without a message: %#v", ve)
			}
			return
		}
		if _, err := tasks.ParseKind(string(kind)); err != nil {
			t.Fatalf("accepted unknown kind %q", kind)
		}
		again, err := tasks.ParseParams(kind, params)
		if err != nil || !bytes.Equal(again, params) {
			t.Fatalf("params %s are not canonical: %s, %v", params, again, err)
		}
		var p tasks.ExportParams
		if err := json.Unmarshal(params, &p); err != nil || p.Rows < tasks.MinExportRows || p.Rows > tasks.MaxExportRows {
			t.Fatalf("accepted params %s out of bounds (%v)", params, err)
		}
		if req.SocketID != "" && !validSocketID(req.SocketID) {
			t.Fatalf("accepted socket id %q", req.SocketID)
		}
		m := &tasks.Message{ID: tasks.NewID(), Kind: kind, Params: params, Owner: "o", EnqueuedAt: time.Now()}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tasks.DecodeMessage(b); err != nil {
			t.Fatalf("the worker would refuse the queue message of an accepted body: %v", err)
		}
	})
}
