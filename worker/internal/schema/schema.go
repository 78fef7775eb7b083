// Package schema derives the JSON Schema of a kind's parameters from its Go
// struct (github.com/invopop/jsonschema, whose `jsonschema:"..."` tags users
// write), compiles it (github.com/santhosh-tekuri/jsonschema/v6, draft 2020-12),
// fills in top-level defaults and validates parameters with an error per
// offending field.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Derive returns the JSON Schema of the parameters type t: an object schema
// with every nested type inlined, the required fields those tagged
// `jsonschema:"required"`, and additionalProperties false unless allowUnknown.
// t must be a struct or a pointer to one.
func Derive(t reflect.Type, allowUnknown bool) (raw json.RawMessage, err error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("schema: parameters must be a struct, not %s", t)
	}
	defer func() {
		if p := recover(); p != nil {
			raw, err = nil, fmt.Errorf("schema: cannot derive the schema of %s: %v", t, p)
		}
	}()
	r := &invopop.Reflector{
		Anonymous:                  true,
		DoNotReference:             true,
		ExpandedStruct:             true,
		RequiredFromJSONSchemaTags: true,
		AllowAdditionalProperties:  allowUnknown,
	}
	s := r.ReflectFromType(t)
	if allowUnknown {
		s.AdditionalProperties = nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("schema: cannot encode the schema of %s: %w", t, err)
	}
	return b, nil
}

// Schema is a compiled parameters schema.
type Schema struct {
	raw      json.RawMessage
	compiled *jsonschema.Schema
	defaults map[string]any
}

// Compile compiles raw, which must be an object schema.
func Compile(raw json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema: not JSON: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("schema: the parameters schema must be a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("params.json", doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	sch, err := c.Compile("params.json")
	if err != nil {
		return nil, fmt.Errorf("schema: does not compile: %w", err)
	}
	s := &Schema{raw: raw, compiled: sch, defaults: map[string]any{}}
	if props, ok := top["properties"].(map[string]any); ok {
		for name, p := range props {
			if pm, ok := p.(map[string]any); ok {
				if d, ok := pm["default"]; ok {
					s.defaults[name] = d
				}
			}
		}
	}
	return s, nil
}

// Raw returns the schema's JSON.
func (s *Schema) Raw() json.RawMessage { return s.raw }

// FieldError is one offending value of the parameters.
type FieldError struct {
	// Field is the path of the value: "params", "params.rows", "params.items[2]".
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// Error is the error of parameters that do not fit the schema: every offending
// field.
type Error struct {
	Fields []FieldError
}

// Error joins the fields' messages.
func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

// Check fills in the top-level defaults of params and validates the result. It
// returns the parameters with the defaults, or an *Error.
func (s *Schema) Check(params json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		trimmed = []byte("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed))
	if err != nil {
		return nil, &Error{Fields: []FieldError{{Field: "params", Message: "malformed JSON"}}}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return nil, &Error{Fields: []FieldError{{Field: "params", Message: "must be a JSON object"}}}
	}
	added := false
	for k, d := range s.defaults {
		if _, ok := obj[k]; !ok {
			obj[k] = d
			added = true
		}
	}
	if err := s.compiled.Validate(obj); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, &Error{Fields: []FieldError{{Field: "params", Message: err.Error()}}}
		}
		return nil, &Error{Fields: Fields(ve)}
	}
	if !added {
		return trimmed, nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, &Error{Fields: []FieldError{{Field: "params", Message: err.Error()}}}
	}
	return b, nil
}

var printer = message.NewPrinter(language.English)

// Fields flattens a validation error into one FieldError per offending value,
// sorted by field: a missing required property and an unknown one are reported
// at their own path.
func Fields(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	seen := map[FieldError]bool{}
	add := func(f FieldError) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, name := range k.Missing {
				add(FieldError{Field: Path(append(slices.Clone(e.InstanceLocation), name)), Message: "is required"})
			}
		case *kind.AdditionalProperties:
			for _, name := range k.Properties {
				add(FieldError{Field: Path(append(slices.Clone(e.InstanceLocation), name)), Message: "unknown field"})
			}
		default:
			add(FieldError{Field: Path(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(printer)})
		}
	}
	walk(ve)
	slices.SortStableFunc(out, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// Path writes an instance location as "params.a.b[2]".
func Path(loc []string) string {
	var b strings.Builder
	b.WriteString("params")
	for _, tok := range loc {
		if isIndex(tok) {
			b.WriteString("[" + tok + "]")
		} else {
			b.WriteString("." + tok)
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
