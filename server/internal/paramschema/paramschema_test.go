package paramschema_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/taskwire/taskwire/server/internal/paramschema"
)

const exportSchema = `{"type":"object","properties":{"rows":{"type":"integer","minimum":1,"maximum":1000000}},"required":["rows"],"additionalProperties":false}`

// reportSchema is what the worker SDK derives from a struct with bounds,
// defaults, an enum and a nested object and array.
const reportSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "countries": {"type": "integer", "minimum": 1, "maximum": 50, "default": 12},
    "title": {"type": "string", "maxLength": 10, "default": "Orders"},
    "format": {"type": "string", "enum": ["pdf", "csv"], "default": "pdf"},
    "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "page": {"$ref": "#/$defs/page"},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "maxItems": 3},
    "odd name": {"type": "boolean"}
  },
  "required": ["countries"],
  "additionalProperties": false,
  "$defs": {
    "page": {"type": "object", "properties": {"size": {"type": "string", "enum": ["A4", "letter"]}, "margin": {"type": "integer", "minimum": 0}},
             "required": ["size"], "additionalProperties": false}
  }
}`

func compile(t *testing.T, raw string) *paramschema.Schema {
	t.Helper()
	s, err := paramschema.Compile([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func details(t *testing.T, err error) []paramschema.FieldError {
	t.Helper()
	var pe *paramschema.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *paramschema.Error", err, err)
	}
	return pe.Details
}

func TestApplyValid(t *testing.T) {
	s := compile(t, exportSchema)
	for in, want := range map[string]string{
		`{"rows":500}`:       `{"rows":500}`,
		` {"rows": 1e3 } `:   `{"rows":1000}`,
		`{"rows":7.0}`:       `{"rows":7}`,
		`{"rows":1000000}`:   `{"rows":1000000}`,
		"{\n\"rows\":\t1\n}": `{"rows":1}`,
	} {
		got, err := s.Apply([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Apply(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestDefaultsFilled(t *testing.T) {
	s := compile(t, reportSchema)
	got, err := s.Apply([]byte(`{"countries":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"countries":3,"format":"pdf","title":"Orders"}` {
		t.Fatalf("params %s", got)
	}
	// A default fills a required property too; a value given is kept.
	s = compile(t, `{"type":"object","properties":{"n":{"type":"integer","default":4},"m":{"type":"integer","default":1}},"required":["n"]}`)
	if got, err := s.Apply([]byte(`{"m":9}`)); err != nil || string(got) != `{"m":9,"n":4}` {
		t.Fatalf("params %s, %v", got, err)
	}
	// A default that breaks the schema is reported at its field.
	s = compile(t, `{"type":"object","properties":{"n":{"type":"integer","minimum":5,"default":1}}}`)
	if _, err := s.Apply([]byte(`{}`)); err == nil || details(t, err)[0].Field != "params.n" {
		t.Fatalf("bad default: %v", err)
	}
}

func TestEveryFieldReported(t *testing.T) {
	s := compile(t, reportSchema)
	_, err := s.Apply([]byte(`{"countries":0,"title":"a much too long title","format":"doc","ratio":0,
		"page":{"margin":-1,"color":"red"},"tags":["ok","x","yy","zz"],"odd name":1,"extra":true}`))
	want := []paramschema.FieldError{
		{`params.countries`, "must be between 1 and 50, got 0"},
		{`params.extra`, `unknown field "extra" (the fields are: countries, format, odd name, page, ratio, tags, title)`},
		{`params.format`, `must be one of "pdf", "csv", got "doc"`},
		{`params.page.color`, `unknown field "color" (the fields are: margin, size)`},
		{`params.page.margin`, "must be at least 0, got -1"},
		{`params.page.size`, "is required"},
		{`params.ratio`, "must be greater than 0, got 0"},
		{`params.tags`, "must have at most 3 items, got 4"},
		{`params.tags[1]`, "must have at least 2 characters, got 1"},
		{`params.title`, "must have at most 10 characters, got 21"},
		{`params["odd name"]`, "must be a boolean, got number"},
	}
	got := details(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("details:\n%s\nwant:\n%s", fmtDetails(got), fmtDetails(want))
	}
	if msg := err.Error(); !strings.Contains(msg, "params.countries: must be between 1 and 50, got 0; ") {
		t.Fatalf("message %q", msg)
	}
}

func fmtDetails(ds []paramschema.FieldError) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s: %s\n", d.Field, d.Message)
	}
	return b.String()
}

func TestExportErrors(t *testing.T) {
	s := compile(t, exportSchema)
	for in, want := range map[string]paramschema.FieldError{
		`{"rows":0}`:       {"params.rows", "must be between 1 and 1000000, got 0"},
		`{"rows":1000001}`: {"params.rows", "must be between 1 and 1000000, got 1000001"},
		`{"rows":"10"}`:    {"params.rows", "must be an integer, got string"},
		`{"rows":2.5}`:     {"params.rows", "must be an integer, got number"},
		`{"rows":null}`:    {"params.rows", "must be an integer, got null"},
		`{}`:               {"params.rows", "is required"},
		`[3]`:              {"params", "must be a JSON object"},
		`3`:                {"params", "must be a JSON object"},
		`"x"`:              {"params", "must be a JSON object"},
		`null`:             {"params", "is required and must be a JSON object"},
		``:                 {"params", "is required and must be a JSON object"},
		`{"rows":1} {}`:    {"params", "is not valid JSON: invalid character after top-level value"},
	} {
		_, err := s.Apply([]byte(in))
		if got := details(t, err); len(got) != 1 || got[0] != want {
			t.Errorf("Apply(%s): %+v, want %+v", in, got, want)
		}
	}
	_, err := s.Apply([]byte(`{"rowz":3}`))
	if got := details(t, err); len(got) != 2 || got[0].Field != "params.rows" || got[1] != (paramschema.FieldError{"params.rowz", `unknown field "rowz" (the fields are: rows)`}) {
		t.Fatalf("unknown field: %+v", got)
	}
}

func TestDetailsBounded(t *testing.T) {
	s := compile(t, exportSchema)
	var b strings.Builder
	b.WriteString(`{"rows":1`)
	for i := range 500 {
		fmt.Fprintf(&b, `,"f%d":%d`, i, i)
	}
	b.WriteString("}")
	_, err := s.Apply([]byte(b.String()))
	got := details(t, err)
	if len(got) != paramschema.MaxDetails || got[len(got)-1].Message != fmt.Sprintf("and %d more errors", 500-paramschema.MaxDetails+1) {
		t.Fatalf("%d details, last %+v", len(got), got[len(got)-1])
	}
}

func TestCompileRefusals(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":         `{"type":`,
		"not an object":    `[1]`,
		"bad keyword":      `{"type":"object","properties":{"n":{"minimum":"one"}}}`,
		"unknown type":     `{"type":"thing"}`,
		"file reference":   `{"$ref":"file:///etc/passwd"}`,
		"remote reference": `{"$ref":"https://example.com/schema.json"}`,
		"bad pattern":      `{"type":"object","properties":{"s":{"type":"string","pattern":"(?<=a)b"}}}`,
	} {
		if _, err := paramschema.Compile([]byte(raw)); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}

func TestCache(t *testing.T) {
	c := paramschema.NewCache(2)
	a, err := c.Get("a", []byte(exportSchema))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Get("a", []byte(exportSchema)); again != a {
		t.Fatal("schema compiled twice")
	}
	// The same hash with another schema is compiled again.
	other, err := c.Get("a", []byte(reportSchema))
	if err != nil || other == a {
		t.Fatalf("replaced schema: %v", err)
	}
	// A schema that does not compile keeps its error.
	if _, err := c.Get("bad", []byte(`{"type":"thing"}`)); err == nil {
		t.Fatal("bad schema compiled")
	}
	if _, err := c.Get("bad", []byte(`{"type":"thing"}`)); err == nil {
		t.Fatal("bad schema compiled from the cache")
	}
	// Bounded: the least recently used goes.
	if _, err := c.Get("", []byte(exportSchema)); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("%d schemas kept", c.Len())
	}
	// Safe for concurrent use.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				s, err := c.Get(fmt.Sprint((i+j)%5), []byte(exportSchema))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Apply([]byte(`{"rows":3}`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
