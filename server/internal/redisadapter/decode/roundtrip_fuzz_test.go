package decode

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/wire"
)

// FuzzEncodeDecode checks the emitter's encode -> decode round trip, classic and
// sharded: a message the emitter encodes for any event, rooms, namespace, flags
// and arguments (strings, integers, floats, bytes, booleans, nested in maps and
// arrays) decodes, with the codec the server uses, into the same event, rooms,
// except rooms, namespace, flags and arguments, on the channel the message names.
// What the emitter refuses, it refuses with one of its documented errors.
//
// Equality is the wire format's: msgpack keeps every value; the JSON of sharded
// messages without binary may read numbers back as floats, turns non-finite
// floats into null (as Node's does) and text into valid UTF-8.
func FuzzEncodeDecode(f *testing.F) {
	f.Add("task:progress", "task:abc", "", "/", "hello", int64(42), 37.5, []byte(nil), false, false, uint8(0))
	f.Add("ev", "", "user:x", "/admin", "é 日本 🎉", int64(math.MinInt64), math.Inf(1), []byte{0, 1, 2}, true, false, uint8(1))
	f.Add("ev", "r", "r", "admin", "\xff\xfe", int64(1<<53+1), math.NaN(), []byte{}, false, true, uint8(2))
	f.Add("connect", "r", "", "/", "", int64(0), 0.0, []byte(nil), false, true, uint8(3))
	f.Add("e", "a#b", "*", "/x#y", "\u2028\"\\", int64(-1), -0.0, []byte("bin"), true, true, uint8(4))
	f.Fuzz(func(t *testing.T, event, room, except, nsp, s string, n int64, x float64, b []byte, volatile, sharded bool, shape uint8) {
		em := emitter.New(nil, &emitter.Options{Sharded: sharded})
		if nsp != "/" {
			em = em.Of(nsp)
		}
		op := em.To()
		var rooms, excepts []string
		if room != "" {
			op, rooms = op.To(room), []string{room}
		}
		if except != "" {
			op, excepts = op.Except(except), []string{except}
		}
		if volatile {
			op = op.Volatile()
		}
		args := argsOf(shape, s, n, x, b)
		m, err := op.Encode(event, args...)
		if err != nil {
			if errors.Is(err, emitter.ErrNoEvent) || errors.Is(err, emitter.ErrReservedEvent) || errors.Is(err, emitter.ErrInvalidNamespace) {
				return
			}
			t.Fatalf("unexpected error: %v", err)
		}
		if m.Sharded != sharded {
			t.Fatalf("sharded %v, want %v", m.Sharded, sharded)
		}
		wantNsp := em.Namespace()
		var pkt *wire.Packet
		var opts *wire.Opts
		jsonMode := false
		if sharded {
			cm, err := ClusterMessage(m.Payload)
			if err != nil {
				t.Fatalf("decode %q: %v", m.Payload, err)
			}
			pkt, opts = cm.Packet, cm.Opts
			jsonMode = len(m.Payload) > 0 && m.Payload[0] == '{'
			if jsonMode {
				// JSON text is UTF-8: names with invalid bytes arrive with U+FFFD
				// instead (known limit of the sharded format's JSON form).
				wantNsp = asUTF8(wantNsp)
				rooms, excepts = utf8All(rooms), utf8All(excepts)
			}
			if cm.Type != wire.MessageBroadcast || cm.UID != wire.EmitterUID || cm.Nsp != wantNsp || cm.Opts == nil || cm.Packet == nil {
				t.Fatalf("cluster message %+v (nsp %q, want %q; payload %q)", cm, cm.Nsp, wantNsp, m.Payload)
			}
			if want := (wire.ShardedChannels{Prefix: wire.DefaultKey, Nsp: em.Namespace()}).Main(); m.Channel != want {
				t.Fatalf("channel %q, want %q", m.Channel, want)
			}
		} else {
			bc, err := Broadcast(m.Payload)
			if err != nil {
				t.Fatalf("decode % x: %v", m.Payload, err)
			}
			if bc.UID != wire.EmitterUID {
				t.Fatalf("uid %q", bc.UID)
			}
			pkt, opts = &bc.Packet, &bc.Opts
			if want := (wire.Channels{Key: wire.DefaultKey, Nsp: wantNsp}).Broadcast(rooms); m.Channel != want {
				t.Fatalf("channel %q, want %q", m.Channel, want)
			}
		}
		if pkt.Type != wire.PacketEvent || pkt.Nsp != wantNsp || pkt.ID != nil {
			t.Fatalf("packet %+v (namespace want %q)", pkt, wantNsp)
		}
		if !slices.Equal(nonNil(opts.Rooms), nonNil(rooms)) || !slices.Equal(nonNil(opts.Except), nonNil(excepts)) {
			t.Fatalf("rooms %q except %q, want %q and %q", opts.Rooms, opts.Except, rooms, excepts)
		}
		if opts.Flags.IsVolatile() != volatile {
			t.Fatalf("volatile %v, want %v", opts.Flags.IsVolatile(), volatile)
		}
		want := append([]any{event}, args...)
		if err := same(want, pkt.Data, jsonMode); err != nil {
			t.Fatalf("data: %v\n want %#v\n got  %#v", err, want, pkt.Data)
		}
	})
}

// asUTF8 replaces every byte of s that is not part of valid UTF-8 with U+FFFD,
// as JSON writers do.
func asUTF8(s string) string { return string([]rune(s)) }

func utf8All(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = asUTF8(s)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// argsOf builds the arguments of an emit from the fuzzed values, in one of a few
// shapes (flat, nested in a map, nested in arrays).
func argsOf(shape uint8, s string, n int64, x float64, b []byte) []any {
	flat := []any{s, n, x, true, nil}
	if b != nil {
		flat = append(flat, b)
	}
	switch shape % 4 {
	case 0:
		return flat
	case 1:
		m := map[string]any{"s": s, "n": n, "x": x, "ok": false, "none": nil}
		if b != nil {
			m["b"] = b
		}
		if s != "" {
			m[s] = []any{n}
		}
		return []any{m}
	case 2:
		return []any{[]any{flat, []any{}, map[string]any{}}, s}
	default:
		return []any{map[string]any{"deep": []any{map[string]any{"list": flat}}}, n}
	}
}

// same compares a value given to the emitter with what the codec decoded.
func same(want, got any, jsonMode bool) error {
	switch w := want.(type) {
	case nil:
		if got != nil {
			return fmt.Errorf("nil became %#v", got)
		}
	case bool:
		if g, ok := got.(bool); !ok || g != w {
			return fmt.Errorf("%v became %#v", w, got)
		}
	case string:
		if g, ok := got.(string); !ok || g != w {
			if ok && jsonMode && g == asUTF8(w) {
				return nil // JSON text is UTF-8: invalid bytes become U+FFFD
			}
			return fmt.Errorf("%q became %#v", w, got)
		}
	case []byte:
		if g, ok := got.([]byte); !ok || !bytes.Equal(g, w) {
			return fmt.Errorf("% x became %#v", w, got)
		}
	case int64:
		if g, ok := got.(float64); ok && jsonMode && g == float64(w) {
			return nil // a JSON number read as a float
		}
		if g, ok := asInt(got); !ok || g != w {
			return fmt.Errorf("%d became %#v", w, got)
		}
	case float64:
		if jsonMode && (math.IsNaN(w) || math.IsInf(w, 0)) {
			if got != nil {
				return fmt.Errorf("%v became %#v, want null", w, got)
			}
			return nil
		}
		g, ok := got.(float64)
		if !ok {
			if i, isInt := asInt(got); isInt && float64(i) == w && w == math.Trunc(w) {
				return nil // an integral float may travel as an integer, as from Node
			}
			return fmt.Errorf("%v became %#v", w, got)
		}
		if !(g == w && math.Signbit(g) == math.Signbit(w)) && !(math.IsNaN(g) && math.IsNaN(w)) {
			if jsonMode && g == w { // JSON has no negative zero
				return nil
			}
			return fmt.Errorf("%v became %v", w, g)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("array of %d became %#v", len(w), got)
		}
		for i := range w {
			if err := same(w[i], g[i], jsonMode); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("map of %d became %#v", len(w), got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				if jsonMode {
					if _, found := g[asUTF8(k)]; found {
						continue
					}
				}
				return fmt.Errorf("key %q missing", k)
			}
			if err := same(v, gv, jsonMode); err != nil {
				return fmt.Errorf("[%q]: %w", k, err)
			}
		}
	default:
		return fmt.Errorf("unexpected value %T", want)
	}
	return nil
}

// asInt reads an integer of any integer type (not an integral float).
func asInt(v any) (int64, bool) {
	switch v.(type) {
	case float32, float64:
		return 0, false
	}
	return toInt64(v)
}
