package emitter_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/internal/spec"
)

// The golden vectors are what Node's @socket.io/redis-emitter 5.1.0 publishes for
// each spec; e2e/golden/generate.mjs writes them (npm run golden in e2e/).
const goldenFile = "wire/testdata/golden.json"

func loadGolden(t *testing.T) []spec.Golden {
	t.Helper()
	g, err := spec.LoadGolden(goldenFile)
	if err != nil {
		t.Fatalf("load golden vectors: %v", err)
	}
	return g
}

func diffBytes(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-16)
	window := func(b []byte) string {
		hi := min(len(b), i+24)
		if lo >= hi {
			return "(end)"
		}
		return hex.EncodeToString(b[lo:i]) + "|" + hex.EncodeToString(b[i:hi])
	}
	return fmt.Sprintf("len got %d, want %d; first difference at byte %d (| marks it):\n  got  ...%s\n  want ...%s",
		len(got), len(want), i, window(got), window(want))
}

// publishOne runs s through the emitter with a recording publisher and returns the
// one message it published.
func publishOne(t *testing.T, s *spec.Spec) spec.Published {
	t.Helper()
	var rec spec.Recorder
	if err := spec.Run(context.Background(), &rec, s); err != nil {
		t.Fatalf("emitter: %v", err)
	}
	msgs := rec.Messages()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func checkSame(t *testing.T, got spec.Published, g spec.Golden) {
	t.Helper()
	if got.Sharded != g.Spec.Sharded {
		t.Errorf("sharded = %v (SPUBLISH), want %v", got.Sharded, g.Spec.Sharded)
	}
	if got.Channel != g.Channel {
		t.Errorf("channel = %q, want %q", got.Channel, g.Channel)
	}
	if !bytes.Equal(got.Payload, g.Payload) {
		t.Errorf("payload differs from Node's: %s", diffBytes(got.Payload, g.Payload))
	}
}

// TestGoldenEmitter performs every golden spec with the emitter's public API and
// requires the channel and the bytes Node's emitter published for the same call.
func TestGoldenEmitter(t *testing.T) {
	for _, g := range loadGolden(t) {
		if g.Differs != "" {
			continue // covered in wire's TestGoldenKnownDifferences
		}
		t.Run(g.Name, func(t *testing.T) {
			checkSame(t, publishOne(t, g.Spec), g)
		})
	}
}

// TestGoldenEncode checks that BroadcastOperator.Encode returns what Emit publishes.
func TestGoldenEncode(t *testing.T) {
	for _, g := range loadGolden(t) {
		if !g.IsBroadcast() || g.Differs != "" {
			continue
		}
		t.Run(g.Name, func(t *testing.T) {
			var rec spec.Recorder
			em, op := spec.Build(&rec, g.Spec)
			if op == nil {
				o := em.To() // no rooms: every socket, as em.Emit
				op = &o
			}
			m, err := op.Encode(g.Spec.Event(), g.Spec.Args[1:]...)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			checkSame(t, spec.Published{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}, g)
			if n := len(rec.Messages()); n != 0 {
				t.Errorf("Encode published %d messages", n)
			}
		})
	}
}

// TestGoldenTypedNumbers replaces each number of the number vectors by every Go
// numeric type that holds it exactly (int8 ... uint64, float32, float64): the bytes
// must not change, since JavaScript has one number type.
func TestGoldenTypedNumbers(t *testing.T) {
	checked := 0
	for _, g := range loadGolden(t) {
		if !strings.HasPrefix(g.Name, "int/") && g.Name != "float/integral" && g.Name != "float/values" && g.Name != "float/special" {
			continue
		}
		for i := 1; i < len(g.Spec.Args); i++ {
			for _, v := range numericVariants(g.Spec.Args[i]) {
				s := *g.Spec
				s.Args = append([]any(nil), g.Spec.Args...)
				s.Args[i] = v
				t.Run(fmt.Sprintf("%s/%d/%T", g.Name, i, v), func(t *testing.T) {
					checkSame(t, publishOne(t, &s), g)
				})
				checked++
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d typed variants checked", checked)
	}
}

// numericVariants returns v as every Go numeric type that represents it exactly.
func numericVariants(v any) []any {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
		if int(f) != n {
			return nil
		}
	case float64:
		f = n
	default:
		return nil
	}
	var out []any
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return []any{f} // float32: see TestFloat32IsNotNodeBytes
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		i := int64(f)
		add := func(ok bool, x any) {
			if ok {
				out = append(out, x)
			}
		}
		add(i >= math.MinInt8 && i <= math.MaxInt8, int8(i))
		add(i >= math.MinInt16 && i <= math.MaxInt16, int16(i))
		add(i >= math.MinInt32 && i <= math.MaxInt32, int32(i))
		out = append(out, int64(i), int(i))
		add(i >= 0 && i <= math.MaxUint8, uint8(i))
		add(i >= 0 && i <= math.MaxUint16, uint16(i))
		add(i >= 0 && i <= math.MaxUint32, uint32(i))
		add(i >= 0, uint64(i))
		add(i >= 0, uint(i))
	}
	out = append(out, f)
	if float64(float32(f)) == f && f == math.Trunc(f) {
		// float32 only when integral: msgpack float32 has no JavaScript counterpart
		// (see TestFloat32IsNotNodeBytes).
		out = append(out, float32(f))
	}
	return out
}

// TestFloat32IsNotNodeBytes pins a known difference: a non-integral float32 is
// written as a msgpack float32, which Node never writes (its numbers are doubles).
// JavaScript decodes it to the same number as float64(x) would give.
func TestFloat32IsNotNodeBytes(t *testing.T) {
	var rec spec.Recorder
	em := emitter.New(&rec, nil)
	if err := em.Emit(context.Background(), "f", float32(1.5)); err != nil {
		t.Fatal(err)
	}
	p := rec.Messages()[0].Payload
	if !bytes.Contains(p, []byte{0xca, 0x3f, 0xc0, 0x00, 0x00}) {
		t.Errorf("float32(1.5) not written as msgpack float32: %x", p)
	}
}

// TestOperatorsAreImmutable derives operators from a parent and checks that the
// parent still publishes exactly Node's bytes for its own target.
func TestOperatorsAreImmutable(t *testing.T) {
	var want spec.Golden
	for _, g := range loadGolden(t) {
		if g.Name == "emit/room" {
			want = g
		}
	}
	if want.Name == "" {
		t.Fatal("no emit/room vector")
	}
	var rec spec.Recorder
	em := emitter.New(&rec, nil)
	parent := em.To("room1")
	for i := 0; i < 3; i++ {
		_ = parent.To("other", fmt.Sprint(i)).Except("x").Volatile().Compress(false)
		_ = parent.In("more").Except("y", "z")
	}
	_ = em.Of("/admin").To("room1")
	if err := parent.Emit(context.Background(), "hello", "x"); err != nil {
		t.Fatal(err)
	}
	checkSame(t, rec.Messages()[0], want)
}
