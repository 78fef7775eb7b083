package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind names a kind of task. The worker registers one handler per kind.
type Kind string

// KindExport generates a CSV file of orders. Its parameters are ExportParams.
const KindExport Kind = "export"

// Bounds of ExportParams.Rows.
const (
	MinExportRows = 1
	MaxExportRows = 1_000_000
)

// ExportParams are the parameters of an export task.
type ExportParams struct {
	// Rows is the number of data rows of the CSV file, header not included.
	Rows int `json:"rows"`
}

// Validate reports whether p is within bounds.
func (p ExportParams) Validate() error {
	if p.Rows < MinExportRows || p.Rows > MaxExportRows {
		return &ValidationError{Field: "params.rows", Message: fmt.Sprintf("must be between %d and %d, got %d", MinExportRows, MaxExportRows, p.Rows)}
	}
	return nil
}

// A ValidationError says which part of a task request is wrong and why.
type ValidationError struct {
	// Field is the dotted path of the offending value ("params.rows"), or empty when
	// the whole body is at fault.
	Field string
	// Message says what is wrong, in words a client developer can act on.
	Message string
	// Code is a stable machine-readable reason: "unknown_kind" or "invalid_params".
	Code string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ErrorCode returns e.Code, or "invalid_params" when it is empty.
func (e *ValidationError) ErrorCode() string {
	if e.Code == "" {
		return "invalid_params"
	}
	return e.Code
}

// DecodeStrict decodes one JSON object from raw into v. Unknown fields, trailing data,
// a missing object and type mismatches become a *ValidationError whose Field is
// prefixed with path.
func DecodeStrict(raw []byte, v any, path string) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return &ValidationError{Field: path, Message: "is required and must be a JSON object"}
	}
	if trimmed[0] != '{' {
		return &ValidationError{Field: path, Message: "must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, path)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &ValidationError{Field: path, Message: "unexpected data after the JSON object"}
	}
	return nil
}

// jsonError turns an encoding/json error into a *ValidationError naming the field.
func jsonError(err error, path string) error {
	join := func(field string) string {
		switch {
		case path == "":
			return field
		case field == "":
			return path
		default:
			return path + "." + field
		}
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return &ValidationError{Field: join(typeErr.Field), Message: fmt.Sprintf("must be %s, got %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &ValidationError{Field: path, Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &ValidationError{Field: path, Message: "truncated JSON"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &ValidationError{Field: path, Message: "unknown field " + f}
	}
	return &ValidationError{Field: path, Message: err.Error()}
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "of type " + goKind
}
