package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/emitter/internal/msgpacktest"
)

// jsonOf writes v with the JSON writer (binary as Node's Buffer objects).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	w := &jsonWriter{}
	w.reset(true)
	if err := writeValue(w, v, 0); err != nil {
		t.Fatalf("writeValue(%#v): %v", v, err)
	}
	return string(w.b)
}

// stdJSON is encoding/json's output without HTML escaping (JSON.stringify does not
// escape <, > and &) and with U+2028/U+2029 written as themselves.
func stdJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	s := strings.TrimSuffix(buf.String(), "\n")
	return strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
}

type (
	inner struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	hidden struct {
		Exported string
		secret   string
	}
	embA struct {
		Name string
		X    string `json:"Kind"`
		Same string `json:"same"`
		Deep int
	}
	embB struct {
		Name string
		Kind string
		Same string `json:"same"`
	}
	level1   struct{ embA }
	marshals struct{ V int }
	texty    int
	ptrOnly  struct{ V string }
	zeroer   struct{ N int }
	textKey  struct{ K string }
	nested   struct {
		Inner  inner           `json:"inner"`
		PInner *inner          `json:"pinner"`
		NilPtr *inner          `json:"nilptr"`
		Iface  any             `json:"iface"`
		NilIf  any             `json:"nilif"`
		Slice  []inner         `json:"slice"`
		NilSl  []int           `json:"nilsl"`
		Arr    [2]int          `json:"arr"`
		Map    map[string]int  `json:"map"`
		NilMap map[string]int  `json:"nilmap"`
		IntMap map[int]string  `json:"intmap"`
		UMap   map[uint8]bool  `json:"umap"`
		TMap   map[textKey]int `json:"tmap"`
	}
	options struct {
		Empty    string  `json:"empty,omitempty"`
		Zero     int     `json:"zero,omitempty"`
		ZeroF    float64 `json:"zerof,omitempty"`
		NilP     *int    `json:"nilp,omitempty"`
		EmptySl  []int   `json:"emptysl,omitempty"`
		Kept     int     `json:"kept,omitempty"`
		Str      int     `json:"str,string"`
		StrB     bool    `json:"strb,string"`
		StrS     string  `json:"strs,string"`
		StrF     float64 `json:"strf,string"`
		StrP     *int    `json:"strp,string"`
		OZ       inner   `json:"oz,omitzero"`
		OZM      zeroer  `json:"ozm,omitzero"`
		OZKept   zeroer  `json:"ozkept,omitzero"`
		Dash     string  `json:"-,"`
		Skip     string  `json:"-"`
		BadTag   string  `json:"a\"b"`
		NoTag    string
		private  string
		Anon     struct{ X int }
		Unicode  string `json:"名前"`
		Question string `json:"q?"`
	}
	conflicts struct {
		embA
		*embB
		hidden
		Name string `json:"name"`
	}
	deeper struct {
		level1
		Deep string
	}
)

func (m marshals) MarshalJSON() ([]byte, error) {
	return []byte(`{"v":` + strconv.Itoa(m.V) + `,"arr":[1,2.5,"x"]}`), nil
}
func (t texty) MarshalText() ([]byte, error)    { return []byte("t" + strconv.Itoa(int(t))), nil }
func (p *ptrOnly) MarshalJSON() ([]byte, error) { return json.Marshal("p:" + p.V) }
func (z zeroer) IsZero() bool                   { return z.N == 42 }
func (k textKey) MarshalText() ([]byte, error)  { return []byte("key-" + k.K), nil }
func (k *textKey) UnmarshalText(b []byte) error { k.K = string(b); return nil }

type withMarshalers struct {
	M      marshals        `json:"m"`
	PM     *marshals       `json:"pm"`
	NilPM  *marshals       `json:"nilpm"`
	T      texty           `json:"t"`
	P      ptrOnly         `json:"p"`
	Raw    json.RawMessage `json:"raw"`
	NilRaw json.RawMessage `json:"nilraw"`
	IP     net.IP          `json:"ip"`
	Dur    time.Duration   `json:"dur"`
}

// TestFieldRulesMatchEncodingJSON: for values without binary, dates or
// non-finite numbers, the JSON writer writes exactly what encoding/json writes.
// This pins the field rules (names, options, promotion and conflicts of embedded
// fields, marshalers, map keys) to the standard library's.
func TestFieldRulesMatchEncodingJSON(t *testing.T) {
	seven := 7
	for i, v := range []any{
		inner{A: 1},
		&inner{A: 2, B: "x"},
		nested{
			Inner: inner{A: 1}, PInner: &inner{A: 2}, Iface: inner{A: 3}, Slice: []inner{{A: 4}, {A: 5, B: "b"}},
			Arr: [2]int{6, 7}, Map: map[string]int{"z": 1, "a": 2, "m": 3}, IntMap: map[int]string{10: "ten", 2: "two", -1: "m"},
			UMap: map[uint8]bool{200: true, 3: false}, TMap: map[textKey]int{{"b"}: 1, {"a"}: 2},
		},
		options{Kept: 3, Str: 12, StrB: true, StrS: `q"s`, StrF: 1.5, StrP: &seven, OZM: zeroer{42}, OZKept: zeroer{1},
			Dash: "d", Skip: "s", BadTag: "bt", NoTag: "nt", private: "p", Unicode: "u", Question: "?"},
		options{},
		conflicts{embA: embA{Name: "a", X: "ax", Same: "s1", Deep: 1}, embB: &embB{Name: "b", Kind: "bk", Same: "s2"},
			hidden: hidden{Exported: "e", secret: "s"}, Name: "n"},
		conflicts{},
		deeper{level1: level1{embA{Name: "n", Deep: 9}}, Deep: "top"},
		&withMarshalers{M: marshals{1}, PM: &marshals{2}, T: 3, P: ptrOnly{"x"}, Raw: json.RawMessage(` { "b" : [ 1 , 2 ] , "a" : null } `),
			IP: net.IPv4(1, 2, 3, 4), Dur: time.Second},
		withMarshalers{P: ptrOnly{"not addressable"}},
		[]any{1, "x", nil, true, 1.5, []string{"a"}, map[string]any{"k": []any{}}},
		map[string]any{"<b>&amp;</b>": "\u2028 \u0001 \" \\ é 🎉", "": 0},
		[]texty{1, 2},
		map[string][]int{"a": nil, "b": {}},
		[]*int{nil, &seven},
		struct{ A, B any }{A: int8(-3), B: uint64(math.MaxUint64)},
		[]float64{0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, -2.5e-10, 5e-324, math.MaxFloat64},
		[]float32{0.1, 1.5, 3e38, 1e-7},
	} {
		if got, want := jsonOf(t, v), stdJSON(t, v); got != want {
			t.Errorf("value %d (%T):\n got  %s\n want %s", i, v, got, want)
		}
	}
}

// TestJSONLikeJavaScript covers what JSON.stringify writes differently from
// encoding/json: non-finite numbers, -0, dates, binary, invalid UTF-8.
func TestJSONLikeJavaScript(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
		{math.Copysign(0, -1), "0"},
		{float32(math.Copysign(0, -1)), "0"},
		{1e21, "1e+21"},
		{-1e-7, "-1e-7"},
		{1.5e300, "1.5e+300"},
		{time.UnixMilli(1700000000123).In(time.FixedZone("x", 3600)), `"2023-11-14T22:13:20.123Z"`},
		{time.Unix(0, 999_999), `"1970-01-01T00:00:00.000Z"`},
		{time.Unix(-1, 500_000_000), `"1969-12-31T23:59:59.500Z"`},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"+010000-01-01T00:00:00.000Z"`},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), `"-000001-01-01T00:00:00.000Z"`},
		{[]byte{1, 255}, `{"type":"Buffer","data":[1,255]}`},
		{[2]byte{7, 8}, `{"type":"Buffer","data":[7,8]}`},
		{"a\xffb", "\"a\uFFFDb\""},
		{"\b\f\n\r\t\x1f\x7f", `"\b\f\n\r\t\u001f` + "\x7f\""},
		{[]byte(nil), "null"},
		{&time.Time{}, `"0001-01-01T00:00:00.000Z"`},
	} {
		if got := jsonOf(t, tc.v); got != tc.want {
			t.Errorf("%#v: got %s, want %s", tc.v, got, tc.want)
		}
	}
	w := &jsonWriter{}
	w.reset(false)
	if err := writeValue(w, map[string]any{"b": []byte{1}}, 0); !errors.Is(err, errBinary) {
		t.Errorf("binary without buffers: %v", err)
	}
}

// TestNormalizeMatchesEncoding: what a server delivers locally (Normalize) is what
// remote servers decode from the msgpack the same value is published as.
func TestNormalizeMatchesEncoding(t *testing.T) {
	when := time.UnixMilli(1700000000123).UTC()
	for i, v := range []any{
		nested{Inner: inner{A: 1}, Slice: []inner{{A: 2}}, IntMap: map[int]string{3: "c"}, TMap: map[textKey]int{{"k"}: 1}},
		options{Str: 5, StrB: true, StrS: "s", StrF: 2.5, OZM: zeroer{42}},
		conflicts{Name: "n", embB: &embB{Kind: "k"}},
		&withMarshalers{M: marshals{1}, P: ptrOnly{"x"}, Raw: json.RawMessage(`{"b":[1,2.5e3]}`), IP: net.IPv4(1, 2, 3, 4)},
		map[string]any{"bin": []byte{1, 2}, "arr": [3]byte{4, 5, 6}, "when": when, "pwhen": &when, "f32": float32(1.5), "u": uint(7)},
		[]any{json.RawMessage(`[1, "x", {"z": null}]`), texty(4), nil},
	} {
		want, err := Normalize(v)
		if err != nil {
			t.Fatalf("Normalize %d: %v", i, err)
		}
		w := getMP()
		if err := writeValue(w, v, 0); err != nil {
			t.Fatalf("writeValue %d: %v", i, err)
		}
		got, err := msgpacktest.Read(w.b)
		if err != nil {
			t.Fatalf("decode %d: %v", i, err)
		}
		if g, w := canon(got), canon(want); !reflect.DeepEqual(g, w) {
			t.Errorf("value %d:\n msgpack   %#v\n Normalize %#v", i, g, w)
		}
	}
}

// canon maps numbers to float64 and times to UTC, for comparisons across codecs.
func canon(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canon(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canon(e)
		}
		return out
	case time.Time:
		return x.UTC()
	}
	if f, ok := toFloat(v); ok {
		return f
	}
	return v
}

func toFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

type cyclic struct {
	Next *cyclic `json:"next"`
}

// TestValueErrors: unsupported types, bad marshalers and cycles are errors, never
// panics or stack overflows.
func TestValueErrors(t *testing.T) {
	loop := &cyclic{}
	loop.Next = loop
	selfMap := map[string]any{}
	selfMap["me"] = selfMap
	for i, v := range []any{
		func() {},
		make(chan int),
		complex(1, 2),
		map[[2]int]int{{1, 2}: 3},
		json.RawMessage(`{"a":`),
		json.RawMessage(`1 2`),
		loop,
		selfMap,
		struct{ F func() }{F: func() {}},
	} {
		w := getMP()
		if err := writeValue(w, v, 0); err == nil {
			t.Errorf("value %d (%T): no error from writeValue", i, v)
		}
		if _, err := Normalize(v); err == nil {
			t.Errorf("value %d (%T): no error from Normalize", i, v)
		}
	}
}

func TestSubscriptionModes(t *testing.T) {
	nodeID, goID := strings.Repeat("x", nodeSocketIDLength), strings.Repeat("y", 24)
	for _, tc := range []struct {
		mode                    SubscriptionMode
		room, nodeSid, goSid    bool // roomChannel
		subRoom, subNode, subGo bool // SubscribeRoom of socket rooms
		subPublicNodeLengthRoom bool
	}{
		{SubscriptionStatic, false, false, false, false, false, false, false},
		{SubscriptionDynamic, true, false, true, true, false, true, true},
		{SubscriptionDynamicPrivate, true, true, true, true, true, true, true},
	} {
		if tc.mode.roomChannel("task:1") != tc.room || tc.mode.roomChannel(nodeID) != tc.nodeSid || tc.mode.roomChannel(goID) != tc.goSid {
			t.Errorf("%s: roomChannel wrong", tc.mode)
		}
		if tc.mode.SubscribeRoom("task:1", false) != tc.subRoom || tc.mode.SubscribeRoom(nodeID, true) != tc.subNode ||
			tc.mode.SubscribeRoom(goID, true) != tc.subGo || tc.mode.SubscribeRoom(nodeID, false) != tc.subPublicNodeLengthRoom {
			t.Errorf("%s: SubscribeRoom wrong", tc.mode)
		}
		// Whatever a publisher sends to a room channel, a subscriber that has the
		// room reads it.
		for _, room := range []string{"task:1", nodeID, goID} {
			for _, socket := range []bool{false, true} {
				if tc.mode.roomChannel(room) && !tc.mode.SubscribeRoom(room, socket) {
					t.Errorf("%s: room %q (socket room %v) published to its channel but not subscribed", tc.mode, room, socket)
				}
			}
		}
	}
	if m, err := ParseSubscriptionMode(""); err != nil || m != SubscriptionStatic {
		t.Errorf(`ParseSubscriptionMode("") = %q, %v`, m, err)
	}
	if _, err := ParseSubscriptionMode("Dynamic"); err == nil {
		t.Error("a wrong mode name was accepted")
	}
}

func TestEncodeJSONLikeEncodingJSON(t *testing.T) {
	type payload struct {
		TaskID string         `json:"taskId"`
		Seq    int64          `json:"seq"`
		Done   float64        `json:"done"`
		Stage  string         `json:"stage,omitempty"`
		Meta   map[string]any `json:"meta,omitempty"`
		Skip   string         `json:"-"`
	}
	v := payload{TaskID: "t1", Seq: 7, Done: 0.25, Meta: map[string]any{"b": []any{1, "x"}, "a": nil}, Skip: "no"}
	got, err := EncodeJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"taskId":"t1","seq":7,"done":0.25,"meta":{"a":null,"b":[1,"x"]}}`
	if string(got) != want {
		t.Fatalf("EncodeJSON: %s, want %s", got, want)
	}
	if _, err := EncodeJSON(map[string]any{"f": func() {}}); err == nil {
		t.Fatal("EncodeJSON of a func: no error")
	}
}
