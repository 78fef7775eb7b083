package paramschema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/server/internal/paramschema"
)

// FuzzApply checks that any params are either refused with field errors that
// each name a path under "params" and say what is wrong, or accepted as compact
// JSON that is accepted again unchanged.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{"countries":3}`, `{"countries":0,"title":"x","extra":1}`, `{"page":{"size":"A4","margin":1e2}}`,
		`{"tags":["a",1,null]}`, `{"ratio":1.5}`, `[]`, `null`, ``, `{`, "\xff", `{"countries":1e400}`,
	} {
		f.Add([]byte(s))
	}
	s, err := paramschema.Compile([]byte(reportSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		out, err := s.Apply(params)
		if err != nil {
			var pe *paramschema.Error
			if !errors.As(err, &pe) || len(pe.Details) == 0 || len(pe.Details) > paramschema.MaxDetails {
				t.Fatalf("error %v (%T)", err, err)
			}
			for _, d := range pe.Details {
				if !strings.HasPrefix(d.Field, "params") || d.Message == "" {
					t.Fatalf("detail %+v", d)
				}
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("stored params %q are not JSON", out)
		}
		again, err := s.Apply(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("params %s are not canonical: %s, %v", out, again, err)
		}
	})
}
