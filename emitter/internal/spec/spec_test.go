package spec

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	s, err := Parse([]byte(`{"key":"k","nsp":"admin","ops":[{"to":"a"},{"in":["b","c"]},{"except":"x"},{"volatile":true},{"compress":false}],
		"call":"emit","args":["ev",1,1.5,{"$float":2},{"$bin":"AQI="},{"$binpat":3},{"$repeat":"ab","times":2},
		{"$date":1700000000123},{"$num":"-0"},{"$num":"Infinity"},{"a":[null,true]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Key != "k" || !s.HasNsp || s.Nsp != "admin" || s.Call != CallEmit || s.Event() != "ev" {
		t.Errorf("parsed %+v", s)
	}
	wantOps := []Op{{Kind: OpTo, Rooms: []string{"a"}}, {Kind: OpIn, Rooms: []string{"b", "c"}},
		{Kind: OpExcept, Rooms: []string{"x"}}, {Kind: OpVolatile, Bool: true}, {Kind: OpCompress}}
	if !reflect.DeepEqual(s.Ops, wantOps) {
		t.Errorf("ops = %+v", s.Ops)
	}
	want := []any{"ev", 1, 1.5, 2.0, []byte{1, 2}, []byte{0, 1, 2}, "abab",
		time.UnixMilli(1700000000123).UTC(), math.Copysign(0, -1), math.Inf(1), map[string]any{"a": []any{nil, true}}}
	if !reflect.DeepEqual(s.Args, want) {
		t.Errorf("args = %#v\nwant %#v", s.Args, want)
	}
	if !math.Signbit(s.Args[8].(float64)) {
		t.Error("-0 lost its sign")
	}
}

func TestParseRequests(t *testing.T) {
	s, err := Parse([]byte(`{"call":"socketsJoin","args":["r"]}`))
	if err != nil || !reflect.DeepEqual(s.Rooms(), []string{"r"}) {
		t.Errorf("join: %v %v", s, err)
	}
	s, err = Parse([]byte(`{"call":"socketsLeave","args":[["r","s"]]}`))
	if err != nil || !reflect.DeepEqual(s.Rooms(), []string{"r", "s"}) {
		t.Errorf("leave: %v %v", s, err)
	}
	for line, want := range map[string]bool{
		`{"call":"disconnectSockets","args":[]}`:     false,
		`{"call":"disconnectSockets","args":[true]}`: true,
	} {
		s, err := Parse([]byte(line))
		if err != nil || s.Close() != want {
			t.Errorf("%s: close %v, err %v", line, s.Close(), err)
		}
	}
	s, err = Parse([]byte(`{"call":"emit","goArgs":"progress","args":["task:progress",{"taskId":"t-1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Args[1].(Progress); !ok || len(s.JSONArgs) != 2 {
		t.Errorf("goArgs: args %#v json %#v", s.Args, s.JSONArgs)
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		`{"call":"emit","args":[]}`,
		`{"call":"emit","args":[1]}`,
		`{"call":"nope","args":["x"]}`,
		`{"call":"emit","args":["x"],"extra":1}`,
		`{"call":"emit","ops":[{"to":"a","in":"b"}],"args":["x"]}`,
		`{"call":"emit","ops":[{"volatile":false}],"args":["x"]}`,
		`{"call":"emit","ops":[{"to":1}],"args":["x"]}`,
		`{"call":"emit","ops":[{"jump":1}],"args":["x"]}`,
		`{"call":"serverSideEmit","ops":[{"to":"a"}],"args":["x"]}`,
		`{"call":"socketsJoin","args":[]}`,
		`{"call":"disconnectSockets","args":["yes"]}`,
		`{"call":"emit","args":["x",{"$bin":"!!"}]}`,
		`{"call":"emit","args":["x",{"$what":1}]}`,
		`{"call":"emit","args":["x",{"$num":"two"}]}`,
		`{"call":"emit","goArgs":"nope","args":["x"]}`,
		`not json`,
	} {
		if _, err := Parse([]byte(line)); err == nil || !strings.HasPrefix(err.Error(), "spec: ") {
			t.Errorf("%s: err = %v, want a spec error", line, err)
		}
	}
}

func TestRunReportsEmitterErrors(t *testing.T) {
	var rec Recorder
	s, err := Parse([]byte(`{"call":"emit","args":["disconnect"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), &rec, s); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Run(reserved event) = %v", err)
	}
	if n := len(rec.Messages()); n != 0 {
		t.Errorf("published %d messages", n)
	}
}
