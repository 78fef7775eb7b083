package spec

import (
	"fmt"
	"time"
)

// Progress is a typical progress payload: json tags, omitempty, a pointer, an
// unexported field and a field tagged "-" (the last two are never sent).
type Progress struct {
	TaskID  string  `json:"taskId"`
	Seq     int64   `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int     `json:"done"`
	Total   int     `json:"total"`
	Stage   string  `json:"stage,omitempty"`
	ETA     *int    `json:"etaSeconds,omitempty"`
	Skipped string  `json:"-"`
	secret  string
}

// Base is embedded in Order: its fields are inlined, as encoding/json does.
type Base struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// Item is an element of Order.Items.
type Item struct {
	Name string `json:"name"`
	Qty  int    `json:"qty"`
}

// Order has an embedded struct, a slice of structs, a map, binary, a nil pointer, a
// field without a tag and a time.
type Order struct {
	Base
	Items   []Item         `json:"items"`
	Meta    map[string]any `json:"meta"`
	Blob    []byte         `json:"blob"`
	Parent  *Order         `json:"parent"`
	NoTag   string
	Created time.Time `json:"createdAt"`
}

// GoArgs returns the Go values registered under name, used by specs with "goArgs"
// in place of args[1:]. Each matches, value for value, the JSON args of the golden
// vector of the same name (struct/<name> in the golden file).
func GoArgs(name string) ([]any, error) {
	zero := 0
	switch name {
	case "progress":
		return []any{Progress{TaskID: "t-1", Seq: 3, Percent: 42.5, Done: 425, Total: 1000,
			Skipped: "not sent", secret: "not sent"}}, nil
	case "progress-full":
		return []any{&Progress{TaskID: "t-2", Seq: 4, Percent: 100, Done: 10, Total: 10, Stage: "done", ETA: &zero}}, nil
	case "order":
		return []any{Order{
			Base:    Base{ID: "o-1", Kind: "export"},
			Items:   []Item{{Name: "pen", Qty: 2}, {Name: "ink", Qty: 1}},
			Meta:    map[string]any{"b": "x", "a": 1},
			Blob:    []byte{1, 2, 3},
			NoTag:   "kept",
			Created: time.UnixMilli(1700000000123).UTC(),
		}}, nil
	case "pointer-and-args":
		return []any{"first", &Progress{TaskID: "t-3", Seq: 1, Percent: 0.5, Done: 1, Total: 200}, 7}, nil
	case "sse-progress":
		return []any{Progress{TaskID: "t-4", Seq: 9, Percent: 12.5, Done: 1, Total: 8}}, nil
	}
	return nil, fmt.Errorf("spec: no Go args named %q", name)
}
