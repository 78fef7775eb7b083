package socketapi

import (
	"encoding/json"
	"testing"
)

func TestSinceOf(t *testing.T) {
	for _, c := range []struct {
		payload string
		want    int64 // -1: no since
		bad     bool
	}{
		{`{"taskId":"a"}`, -1, false},
		{`{"taskId":"a","since":null}`, -1, false},
		{`{"taskId":"a","since":0}`, 0, false},
		{`{"taskId":"a","since":42}`, 42, false},
		{`{"taskId":"a","since":9007199254740991}`, 9007199254740991, false},
		{`{"taskId":"a","since":9007199254740992}`, 0, true},
		{`{"taskId":"a","since":1e300}`, 0, true},
		{`{"taskId":"a","since":-1}`, 0, true},
		{`{"taskId":"a","since":1.5}`, 0, true},
		{`{"taskId":"a","since":"3"}`, 0, true},
		{`{"taskId":"a","since":true}`, 0, true},
		{`{"taskId":"a","since":[1]}`, 0, true},
		{`{"taskId":"a","since":{"$gt":0}}`, 0, true},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.payload), &v); err != nil {
			t.Fatal(err)
		}
		got, bad := sinceOf([]any{v})
		switch {
		case c.bad:
			if bad == nil || bad.Error.Code != "bad_request" || bad.Error.Message == "" {
				t.Errorf("%s: accepted (%v)", c.payload, got)
			}
		case bad != nil:
			t.Errorf("%s: refused: %+v", c.payload, bad)
		case c.want < 0 && got != nil, c.want >= 0 && (got == nil || *got != c.want):
			t.Errorf("%s: since %v, want %d", c.payload, got, c.want)
		}
	}
}
