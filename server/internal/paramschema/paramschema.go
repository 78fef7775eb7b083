// Package paramschema checks the parameters of a task against the JSON Schema
// (draft 2020-12) that the workers of its kind published, and says what is wrong
// field by field, in words a client developer can act on.
//
// Schemas come from Redis, written by workers: a Schema never loads anything
// ($ref to a file or a URL fails to compile), and a Cache compiles each schema
// version once.
package paramschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxDetails bounds the field errors of one Error, so that a huge bad request
// gets a bounded answer. Past it, the last detail says how many were left out.
const MaxDetails = 50

// resourceURL names the schema being compiled. It is never fetched.
const resourceURL = "taskwire:///kind/params.json"

// Schema is a compiled params schema. It is safe for concurrent use.
type Schema struct {
	sch *jsonschema.Schema
	// byLocation finds a subschema by its location, to word errors with the
	// bounds they failed against.
	byLocation map[string]*jsonschema.Schema
	// defaults are the top-level properties' defaults, by property name.
	defaults map[string]any
	// props are the top-level property names, sorted, for messages.
	props []string
}

// noLoader refuses to load any schema resource: a params schema must be whole.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("a params schema may not refer to another document (%s)", url)
}

// Compile compiles raw, a JSON Schema. Without "$schema" it is read as draft
// 2020-12; "format" is asserted. It refers to nothing outside itself: a $ref to
// another document is an error.
func Compile(raw []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("paramschema: schema is not JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, isBool := doc.(bool); !isBool {
			return nil, errors.New("paramschema: schema must be a JSON object")
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(resourceURL, doc); err != nil {
		return nil, fmt.Errorf("paramschema: %w", err)
	}
	sch, err := c.Compile(resourceURL)
	if err != nil {
		return nil, fmt.Errorf("paramschema: schema does not compile: %w", err)
	}
	s := &Schema{sch: sch, byLocation: map[string]*jsonschema.Schema{}, defaults: map[string]any{}}
	index(sch, s.byLocation)
	for name, p := range sch.Properties {
		s.props = append(s.props, name)
		for p != nil && p.Default == nil && p.Ref != nil {
			p = p.Ref
		}
		if p != nil && p.Default != nil {
			s.defaults[name] = *p.Default
		}
	}
	sort.Strings(s.props)
	return s, nil
}

// index records every subschema reachable from sch by its location.
func index(sch *jsonschema.Schema, into map[string]*jsonschema.Schema) {
	if sch == nil {
		return
	}
	if _, seen := into[sch.Location]; seen {
		return
	}
	into[sch.Location] = sch
	for _, sub := range []*jsonschema.Schema{sch.Ref, sch.RecursiveRef, sch.Not, sch.If, sch.Then, sch.Else,
		sch.PropertyNames, sch.UnevaluatedProperties, sch.Contains, sch.Items2020, sch.UnevaluatedItems, sch.ContentSchema} {
		index(sub, into)
	}
	for _, list := range [][]*jsonschema.Schema{sch.AllOf, sch.AnyOf, sch.OneOf, sch.PrefixItems} {
		for _, sub := range list {
			index(sub, into)
		}
	}
	for _, sub := range sch.Properties {
		index(sub, into)
	}
	for _, sub := range sch.PatternProperties {
		index(sub, into)
	}
	for _, sub := range sch.DependentSchemas {
		index(sub, into)
	}
	for _, v := range []any{sch.AdditionalProperties, sch.Items, sch.AdditionalItems} {
		switch v := v.(type) {
		case *jsonschema.Schema:
			index(v, into)
		case []*jsonschema.Schema:
			for _, sub := range v {
				index(sub, into)
			}
		}
	}
	if sch.DynamicRef != nil {
		index(sch.DynamicRef.Ref, into)
	}
}

// FieldError is one thing wrong with the parameters.
type FieldError struct {
	// Field is the path of the offending value: "params", "params.rows",
	// "params.items[2]", `params["odd name"]`.
	Field string `json:"field"`
	// Message says what is wrong with it.
	Message string `json:"message"`
}

// Error says that parameters do not match their schema. It lists every
// offending field (at most MaxDetails), sorted by field.
type Error struct {
	Details []FieldError
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Details))
	for i, d := range e.Details {
		parts[i] = d.Field + ": " + d.Message
	}
	return strings.Join(parts, "; ")
}

// Apply checks params (a JSON object) against the schema after filling in the
// defaults of the missing top-level properties, and returns the parameters to
// store: compact JSON, keys sorted, whole numbers written as integers. A value
// that is not a JSON object, or does not match, gives an *Error.
func (s *Schema) Apply(params []byte) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, &Error{Details: []FieldError{{Field: "params", Message: "is required and must be a JSON object"}}}
	}
	if trimmed[0] != '{' {
		return nil, &Error{Details: []FieldError{{Field: "params", Message: "must be a JSON object"}}}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed))
	if err != nil {
		return nil, &Error{Details: []FieldError{{Field: "params", Message: "is not valid JSON: " + err.Error()}}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Details: []FieldError{{Field: "params", Message: "must be a JSON object"}}}
	}
	for name, def := range s.defaults {
		if _, set := obj[name]; !set {
			obj[name] = def
		}
	}
	if err := s.sch.Validate(obj); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, &Error{Details: []FieldError{{Field: "params", Message: err.Error()}}}
		}
		return nil, &Error{Details: s.details(ve, obj)}
	}
	out, err := json.Marshal(canonical(obj))
	if err != nil {
		return nil, &Error{Details: []FieldError{{Field: "params", Message: err.Error()}}}
	}
	return out, nil
}

// canonical rewrites the numbers of v that are whole (1.0, 1e3) as integers, so
// that workers decoding them into Go integers accept what the schema accepted.
func canonical(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = canonical(x)
		}
	case []any:
		for i, x := range v {
			v[i] = canonical(x)
		}
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return v
		}
		if r, ok := new(big.Rat).SetString(string(v)); ok && r.IsInt() && r.Num().IsInt64() {
			return json.Number(strconv.FormatInt(r.Num().Int64(), 10))
		}
	}
	return v
}

// details flattens the error tree into its leaves, one FieldError per offending
// value: a missing required property at its own path, an unknown one at its own.
func (s *Schema) details(root *jsonschema.ValidationError, instance any) []FieldError {
	var out []FieldError
	seen := map[FieldError]bool{}
	add := func(loc []string, msg string) {
		d := FieldError{Field: fieldPath(instance, loc), Message: msg}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
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
				add(append(clone(e.InstanceLocation), name), "is required")
			}
		case *kind.DependentRequired:
			for _, name := range k.Missing {
				add(append(clone(e.InstanceLocation), name), fmt.Sprintf("is required when %q is set", k.Prop))
			}
		case *kind.Dependency:
			for _, name := range k.Missing {
				add(append(clone(e.InstanceLocation), name), fmt.Sprintf("is required when %q is set", k.Prop))
			}
		case *kind.AdditionalProperties:
			for _, name := range k.Properties {
				add(append(clone(e.InstanceLocation), name), s.unknownField(name, e))
			}
		default:
			add(e.InstanceLocation, s.message(e))
		}
	}
	walk(root)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	if len(out) > MaxDetails {
		left := len(out) - (MaxDetails - 1)
		out = append(out[:MaxDetails-1], FieldError{Field: "params", Message: fmt.Sprintf("and %d more errors", left)})
	}
	if len(out) == 0 {
		out = []FieldError{{Field: "params", Message: root.Error()}}
	}
	return out
}

func clone(s []string) []string { return append([]string(nil), s...) }

// unknownField words an unknown property, naming the ones the object takes.
func (s *Schema) unknownField(name string, e *jsonschema.ValidationError) string {
	var props []string
	if sub := s.byLocation[e.SchemaURL]; sub != nil {
		for p := range sub.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
	}
	if len(props) == 0 {
		return fmt.Sprintf("unknown field %q", name)
	}
	return fmt.Sprintf("unknown field %q (the fields are: %s)", name, strings.Join(props, ", "))
}

// message words one leaf error.
func (s *Schema) message(e *jsonschema.ValidationError) string {
	sub := s.byLocation[e.SchemaURL]
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = article(w)
		}
		return fmt.Sprintf("must be %s, got %s", strings.Join(want, " or "), k.Got)
	case *kind.Minimum:
		if sub != nil && sub.Maximum != nil {
			return fmt.Sprintf("must be between %s and %s, got %s", rat(k.Want), rat(sub.Maximum), rat(k.Got))
		}
		return fmt.Sprintf("must be at least %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.Maximum:
		if sub != nil && sub.Minimum != nil {
			return fmt.Sprintf("must be between %s and %s, got %s", rat(sub.Minimum), rat(k.Want), rat(k.Got))
		}
		return fmt.Sprintf("must be at most %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("must be greater than %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("must be less than %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.MultipleOf:
		return fmt.Sprintf("must be a multiple of %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.MinLength:
		return fmt.Sprintf("must have at least %d characters, got %d", k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("must have at most %d characters, got %d", k.Want, k.Got)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items, got %d", k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items, got %d", k.Want, k.Got)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d fields, got %d", k.Want, k.Got)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d fields, got %d", k.Want, k.Got)
	case *kind.Pattern:
		return fmt.Sprintf("must match the pattern %s", k.Want)
	case *kind.Enum:
		return "must be one of " + values(k.Want) + ", got " + display(k.Got)
	case *kind.Const:
		return "must be " + display(k.Want) + ", got " + display(k.Got)
	case *kind.FalseSchema:
		return "is not allowed"
	case *kind.UniqueItems:
		return fmt.Sprintf("must not repeat items (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	}
	return e.ErrorKind.LocalizedString(printer)
}

// printer words the errors this package has no message of its own for.
var printer = message.NewPrinter(language.English)

func article(jsonType string) string {
	switch jsonType {
	case "integer", "object", "array":
		return "an " + jsonType
	case "null":
		return "null"
	}
	return "a " + jsonType
}

func rat(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func display(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 64 {
		return string(b[:61]) + "..."
	}
	return string(b)
}

func values(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = display(v)
	}
	return strings.Join(parts, ", ")
}

// fieldPath writes an instance location as "params.a.b", "params.items[2]",
// `params["a b"]`: an index where the value there is an array, a name otherwise.
func fieldPath(instance any, loc []string) string {
	var b strings.Builder
	b.WriteString("params")
	cur := instance
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		if plainName(tok) {
			b.WriteString("." + tok)
		} else {
			q, _ := json.Marshal(tok)
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

// plainName reports whether a property name can be written after a dot.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || (i > 0 && (c >= '0' && c <= '9' || c == '-'))) {
			return false
		}
	}
	return true
}
