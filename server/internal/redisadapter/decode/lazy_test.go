package decode

import (
	"github.com/taskwire/taskwire/emitter/wire"

	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// lazyCases are broadcasts of every kind of argument and option.
func lazyCases(t testing.TB) [][]byte {
	t.Helper()
	id := uint64(7)
	date := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	args := [][]any{
		nil,
		{"ping"},
		{"task:progress", map[string]any{"taskId": "01JD5R3Q0S7X9ZK2M4N6P8B0CD", "seq": 42, "percent": 37.5, "done": 375000, "total": 1000000, "stage": "rows"}},
		{"e", 1, -1, 127, 128, -33, 255, 65535, 65536, -70000, int64(math.MaxInt64), uint64(math.MaxUint64), int64(math.MinInt64)},
		{"e", 0.5, -0.0, 1e21, 1e-7, 123456789.125, float32(1.1), math.MaxFloat64},
		{"e", "", "\"quoted\" \\ back", "<html> & \u2028 ctrl\x01\x1f", "unicode é 日本 🎉", string([]byte{0xff, 'a'})},
		{"e", nil, true, false, []any{}, map[string]any{}, []any{[]any{[]any{1}}}, map[string]any{"b": map[string]any{"c": []any{nil}}}},
		{"e", date},
		{"e", []byte{1, 2, 3}},
		{"e", math.NaN()},
		{"e", math.Inf(1)},
	}
	var out [][]byte
	for _, a := range args {
		for _, opts := range []*wire.Opts{
			{Rooms: []string{}, Except: []string{}},
			{Rooms: []string{"r1"}, Except: []string{"x"}, Flags: wire.Flags{}.WithVolatile(true).WithCompress(false).WithTimeout(5000)},
			{Rooms: []string{"a", "b"}},
		} {
			for _, p := range []wire.Packet{
				{Type: wire.PacketEvent, Data: a, Nsp: "/"},
				{Type: wire.PacketEvent, Data: a, Nsp: "/admin", ID: &id},
			} {
				b, err := wire.EncodeBroadcast("uid1", &p, opts)
				if err != nil {
					continue // NaN and the like, where the encoder has rules of its own
				}
				out = append(out, b)
			}
		}
	}
	// Hand-made shapes: Node servers' messages, odd but valid encodings.
	for _, h := range []string{
		// [uid, {type:2, data:["a"], nsp:"/"}, {rooms:[1,"2"], except:null, flags:null}]
		"93a3756964" + "83a47479706502a46461746191a161a36e7370a12f" + "83a5726f6f6d739201a132a6657863657074c0a5666c616773c0",
		// packet without nsp, with unknown keys, data nil; opts with unknown key
		"93a3756964" + "84a47479706502a464617461c0a378797aa3616263a26964c0" + "81a3666f6fc3",
		// type as uint16, id as int8, 4 elements
		"94a3756964" + "83a474797065cd0002a46461746190a26964d005" + "80" + "c0",
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	// The golden broadcasts of Node's emitter.
	for _, g := range loadGolden(t) {
		if _, err := Broadcast(g.payload); err == nil {
			out = append(out, g.payload)
		}
	}
	return out
}

// checkLazy checks the promise of Lazy against Broadcast.
func checkLazy(t *testing.T, b []byte) {
	full, fullErr := Broadcast(b)
	lazy, lazyErr := Lazy(b)
	if fullErr != nil {
		if lazyErr == nil {
			if _, err := lazy.Data(); err == nil {
				t.Fatalf("Broadcast: %v; the lazy decoder accepted it, data included (%x)", fullErr, b)
			}
		} else if !errors.Is(lazyErr, ErrMalformed) {
			t.Fatalf("lazy error %v does not wrap ErrMalformed", lazyErr)
		}
		return
	}
	if lazyErr != nil {
		t.Fatalf("Broadcast accepted %x, the lazy decoder: %v", b, lazyErr)
	}
	if lazy.UID != full.UID || lazy.Type != full.Packet.Type || lazy.Nsp != full.Packet.Nsp ||
		!reflect.DeepEqual(lazy.ID, full.Packet.ID) || !reflect.DeepEqual(lazy.Opts, full.Opts) {
		t.Fatalf("fields differ for %x:\nlazy %+v\nfull %+v %+v", b, lazy, full.Packet, full.Opts)
	}
	data, err := lazy.Data()
	if err != nil || fmt.Sprintf("%#v", data) != fmt.Sprintf("%#v", full.Packet.Data) {
		t.Fatalf("data differs for %x: %#v (%v), want %#v", b, data, err, full.Packet.Data)
	}
	// AppendJSON, when it succeeds, is the data as a client sees it.
	fresh, _ := Lazy(b)
	js, err := fresh.AppendJSON([]byte("prefix"))
	if err != nil {
		if !errors.Is(err, ErrNotJSON) || string(js) != "prefix" {
			t.Fatalf("AppendJSON failure %v left %q", err, js)
		}
		return
	}
	var got any
	if err := json.Unmarshal(js[len("prefix"):], &got); err != nil {
		t.Fatalf("AppendJSON wrote invalid JSON %q: %v", js, err)
	}
	want := clientView(t, data)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendJSON %s\nparses to %#v\nwant       %#v", js, got, want)
	}
}

// clientView is what a client parses for data: JSON's numbers, dates as ISO
// strings; it fails the test for values that AppendJSON must refuse.
func clientView(t *testing.T, v any) any {
	switch v := v.(type) {
	case nil, bool:
		return v
	case string:
		return validUTF8(v)
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		f, _ := strconv.ParseFloat(reflectNumber(v), 64)
		return f
	case float32:
		// Its shortest 32-bit form, as encoding/json writes it too.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
		return f
	case float64:
		return v
	case time.Time:
		var s string
		_ = json.Unmarshal(wire.AppendJSDate(nil, v), &s)
		return s
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = clientView(t, e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[validUTF8(k)] = clientView(t, e)
		}
		return out
	}
	t.Fatalf("AppendJSON accepted a %T", v)
	return nil
}

// validUTF8 is s as a client receives it: invalid UTF-8 as U+FFFD.
func validUTF8(s string) string {
	var back string
	raw, _ := json.Marshal(s)
	_ = json.Unmarshal(raw, &back)
	return back
}

func reflectNumber(v any) string {
	rv := reflect.ValueOf(v)
	if rv.CanInt() {
		return strconv.FormatInt(rv.Int(), 10)
	}
	return strconv.FormatUint(rv.Uint(), 10)
}

func TestLazyBroadcastMatchesDecodeBroadcast(t *testing.T) {
	cases := lazyCases(t)
	if len(cases) < 50 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, b := range cases {
		checkLazy(t, b)
		// Truncations and a flipped byte anywhere (at up to 128 places): same
		// verdicts.
		step := max(1, len(b)/128)
		for i := 0; i < len(b); i += step {
			checkLazy(t, b[:i])
			m := append([]byte(nil), b...)
			m[i] ^= 0x5a
			checkLazy(t, m)
		}
	}
}

func TestLazyBroadcastJSON(t *testing.T) {
	b, err := wire.EncodeBroadcast("emitter", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{
		"task:progress", map[string]any{"taskId": "t1", "percent": 37.5, "done": 3, "stage": "<rows>"},
	}}, &wire.Opts{Rooms: []string{"task:t1"}})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := Lazy(b)
	if err != nil {
		t.Fatal(err)
	}
	js, err := lb.AppendJSON(nil)
	// Keys in the message's order (the emitter sorts map keys), strings escaped
	// as JSON.stringify does.
	if want := `["task:progress",{"done":3,"percent":37.5,"stage":"<rows>","taskId":"t1"}]`; err != nil || string(js) != want {
		t.Fatalf("got %s (%v), want %s", js, err, want)
	}
	for _, bad := range [][]any{{"e", []byte{1}}, {"e", map[string]any{"x": []any{[]byte{}}}}} {
		b, _ := wire.EncodeBroadcast("u", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: bad}, &wire.Opts{})
		lb, _ := Lazy(b)
		if _, err := lb.AppendJSON(nil); !errors.Is(err, ErrNotJSON) {
			t.Fatalf("binary: %v, want ErrNotJSON", err)
		}
	}
}

func FuzzLazyBroadcast(f *testing.F) {
	for _, b := range lazyCases(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkLazy(t, b) })
}

func BenchmarkDecodeLazyToJSON(b *testing.B) {
	payload, _ := wire.EncodeBroadcast("emitter", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"task:progress", map[string]any{
		"taskId": "01JD5R3Q0S7X9ZK2M4N6P8B0CD", "seq": 42, "percent": 37.5, "done": 375000, "total": 1000000, "stage": "rows",
	}}}, &wire.Opts{Rooms: []string{"task:01JD5R3Q0S7X9ZK2M4N6P8B0CD"}})
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		lb, err := Lazy(payload)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = lb.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLazyData(b *testing.B) {
	payload, _ := wire.EncodeBroadcast("emitter", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"task:progress", map[string]any{
		"taskId": "01JD5R3Q0S7X9ZK2M4N6P8B0CD", "seq": 42, "percent": 37.5, "done": 375000, "total": 1000000, "stage": "rows",
	}}}, &wire.Opts{Rooms: []string{"task:01JD5R3Q0S7X9ZK2M4N6P8B0CD"}})
	b.ReportAllocs()
	for b.Loop() {
		lb, err := Lazy(payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := lb.Data(); err != nil {
			b.Fatal(err)
		}
	}
}
