package socketapi

import (
	"encoding/json"
	"testing"

	"github.com/zishang520/socket.io/v2/socket"
)

// FuzzRequest checks the parsing of the payload of task:subscribe (its since
// too), task:unsubscribe and task:cancel: the arguments a client sends (any JSON,
// decoded as the Socket.IO parser decodes it), with or without an
// acknowledgement. Each is either refused with a bad_request answer that says
// what is expected, or gives a non-empty task id; the acknowledgement is always
// found when there is one.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{`[{"taskId":"AAAAAAAAAAAAAAAAAAAAAA"}]`, `[{"taskId":""}]`, `[{"taskId":1}]`, `[{}]`, `[]`,
		`["x"]`, `[null]`, `[{"taskId":"a"},{"taskId":"b"}]`, `[[{"taskId":"a"}]]`, `[{"taskId":{"$gt":""}}]`, `[{"taskId":"a","x":[1,2]}]`,
		`[{"taskId":"a","since":3}]`, `[{"taskId":"a","since":-1}]`, `[{"taskId":"a","since":1.5}]`, `[{"taskId":"a","since":"3"}]`,
		`[{"taskId":"a","since":9007199254740992}]`, `[{"taskId":"a","since":null}]`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, withAck bool) {
		var args []any
		if err := json.Unmarshal(payload, &args); err != nil {
			var v any
			if json.Unmarshal(payload, &v) != nil {
				return // not JSON: the Socket.IO parser refuses it before any handler
			}
			args = []any{v}
		}
		acked := false
		if withAck {
			args = append(args, socket.Ack(func([]any, error) { acked = true }))
		}
		id, ack, bad := request(args)
		if withAck != (ack != nil) {
			t.Fatalf("ack found: %v, sent: %v", ack != nil, withAck)
		}
		if bad != nil {
			if bad.Error.Code != "bad_request" || bad.Error.Message == "" || id != "" {
				t.Fatalf("refusal %+v (id %q)", bad, id)
			}
			if _, err := json.Marshal(bad); err != nil {
				t.Fatalf("refusal does not encode: %v", err)
			}
			reply(ack, bad)
			if withAck && !acked {
				t.Fatal("the refusal was not acknowledged")
			}
			return
		}
		if id == "" {
			t.Fatalf("accepted an empty task id from %s", payload)
		}
		since, bad := sinceOf(args)
		switch {
		case bad != nil && (bad.Error.Code != "bad_request" || bad.Error.Message == "" || since != nil):
			t.Fatalf("since refusal %+v (since %v)", bad, since)
		case since != nil && (*since < 0 || *since > 1<<53-1):
			t.Fatalf("accepted since %d from %s", *since, payload)
		}
	})
}
