package spec

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
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

// Custom marshals itself (MarshalJSON) to an object whose keys are not sorted.
type Custom struct{ N int }

// MarshalJSON writes {"z":true,"a":[1,2.5],"n":N}.
func (c Custom) MarshalJSON() ([]byte, error) {
	return []byte(`{"z":true,"a":[1,2.5e0],"n":` + strconv.Itoa(c.N) + `}`), nil
}

// Level marshals itself as text (MarshalText).
type Level int

// MarshalText writes "level-N".
func (l Level) MarshalText() ([]byte, error) { return []byte("level-" + strconv.Itoa(int(l))), nil }

// PtrJSON has MarshalJSON on its pointer only: it applies when the value is
// addressable (a field of a struct passed by pointer).
type PtrJSON struct{ V string }

// MarshalJSON writes "ptr:V".
func (p *PtrJSON) MarshalJSON() ([]byte, error) { return json.Marshal("ptr:" + p.V) }

// Marshalers holds the types that encode themselves, and the field options of
// encoding/json.
type Marshalers struct {
	IP     net.IP          `json:"ip"`
	Custom Custom          `json:"custom"`
	Level  Level           `json:"level"`
	Ptr    PtrJSON         `json:"ptr"`
	Raw    json.RawMessage `json:"raw"`
	Quoted int64           `json:"quoted,string"`
	Flag   bool            `json:"flag,string"`
	Dur    time.Duration   `json:"dur"`
	Hash   [4]byte         `json:"hash"`
	When   *time.Time      `json:"when"`
	Never  time.Time       `json:"never,omitzero"`
	Empty  []int           `json:"empty,omitempty"`
	Nil    []int           `json:"nil"`
	Skip   string          `json:"-"`
	Dash   string          `json:"-,"`
}

// EmbA and EmbB are embedded in Conflicts.
type EmbA struct {
	Name string
	X    string `json:"Kind"`
	Same string `json:"same"`
}

// EmbB is embedded in Conflicts, through a pointer.
type EmbB struct {
	Name string
	Kind string
	Same string `json:"same"`
}

// Conflicts has promoted fields that collide: the least nested wins, a tagged
// one over an untagged one at the same depth, and otherwise none is kept.
type Conflicts struct {
	EmbA
	*EmbB
	Name string `json:"name"`
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
	case "raw-json":
		return []any{json.RawMessage(`{"b":1,"a":[1.5,"x",null,true,1e3],"c":{"z":1,"y":-0.5}}`), json.RawMessage(`"s"`)}, nil
	case "marshalers":
		when := time.UnixMilli(1700000000123).UTC()
		return []any{&Marshalers{
			IP: net.IPv4(10, 0, 0, 1), Custom: Custom{N: 7}, Level: 3, Ptr: PtrJSON{V: "x"},
			Raw: json.RawMessage(`[1, {"b": 2}]`), Quoted: 42, Flag: true, Dur: 1500 * time.Millisecond,
			Hash: [4]byte{0xde, 0xad, 0xbe, 0xef}, When: &when, Empty: []int{}, Skip: "not sent", Dash: "dash",
		}}, nil
	case "conflicts":
		return []any{Conflicts{EmbA: EmbA{Name: "a", X: "a-kind", Same: "a"}, EmbB: &EmbB{Name: "b", Kind: "b-kind", Same: "b"}, Name: "top"}}, nil
	}
	return nil, fmt.Errorf("spec: no Go args named %q", name)
}
