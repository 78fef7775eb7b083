package relaytrace

import (
	"math"
	"testing"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
)

// TestNumberOfDecodedSeq encodes task events as a worker publishes them and reads
// their seq and attempt back as Observe does, through both decoders of the
// adapter: msgpack gives each integer the Go type of its encoding (int8 for a
// fixint, uint8, uint16, uint32, int64...), and every one must come out whole.
func TestNumberOfDecodedSeq(t *testing.T) {
	for _, seq := range []int64{1, 2, 127, 128, 255, 256, 40_000, 65_535, 70_000, 1 << 33, math.MaxInt64} {
		payload := map[string]any{"taskId": "AAAAAAAAAAAAAAAAAAAAAA", "seq": seq, "attempt": 2}
		msg, err := wire.EncodeBroadcast("uid", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"task:progress", payload}},
			&wire.Opts{Rooms: []string{"task:AAAAAAAAAAAAAAAAAAAAAA"}})
		if err != nil {
			t.Fatal(err)
		}
		lazy, err := decode.Lazy(msg)
		if err != nil {
			t.Fatal(err)
		}
		lazyData, err := lazy.Data()
		if err != nil {
			t.Fatal(err)
		}
		full, err := decode.Broadcast(msg)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]any{"Lazy": lazyData, "Broadcast": full.Packet.Data} {
			p, ok := data[1].(map[string]any)
			if !ok {
				t.Fatalf("%s: payload is %T", name, data[1])
			}
			if got := number(p["seq"]); got != seq {
				t.Errorf("%s: seq %d (decoded as %T) read as %d", name, seq, p["seq"], got)
			}
			if got := number(p["attempt"]); got != 2 {
				t.Errorf("%s: attempt 2 (decoded as %T) read as %d", name, p["attempt"], got)
			}
		}
	}
}

// TestNumberTypes covers every Go type a decoder can give a number, and what is
// no whole number.
func TestNumberTypes(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int64
	}{
		{int8(-3), -3}, {int16(300), 300}, {int32(70_000), 70_000}, {int64(1 << 40), 1 << 40}, {int(7), 7},
		{uint8(200), 200}, {uint16(60_000), 60_000}, {uint32(1 << 31), 1 << 31}, {uint64(1 << 40), 1 << 40},
		{float32(12), 12}, {float64(1 << 35), 1 << 35},
		{float64(1.5), 0}, {uint64(math.MaxUint64), 0}, {math.Inf(1), 0}, {"3", 0}, {nil, 0}, {true, 0},
	} {
		if got := number(c.v); got != c.want {
			t.Errorf("number(%T %v) = %d, want %d", c.v, c.v, got, c.want)
		}
	}
}
