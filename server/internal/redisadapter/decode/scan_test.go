package decode

import (
	"github.com/taskwire/taskwire/emitter/wire"

	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// nodeEmit is what Node's @socket.io/redis-emitter 5.1 publishes for
// emit("hello", "world", 1) to everyone (research/wire-format.md, 1.4).
const nodeEmit = "93a7656d697474657283a47479706502a46461746193a568656c6c6fa5776f726c6401a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckMsgpackAcceptsNodeBytes(t *testing.T) {
	if err := checkMsgpack(mustHex(t, nodeEmit)); err != nil {
		t.Fatalf("golden emitter bytes rejected: %v", err)
	}
	b, err := wire.EncodeBroadcast("abc", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"ev", []byte{1, 2, 3}, map[string]any{"k": []any{1.5, nil, true}}}},
		&wire.Opts{Rooms: []string{"r"}, Flags: wire.Flags{}.WithVolatile(true).WithTimeout(2000)})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMsgpack(b); err != nil {
		t.Fatalf("own encoding rejected: %v", err)
	}
}

func TestCheckMsgpackRejects(t *testing.T) {
	golden := mustHex(t, nodeEmit)
	deep := append([]byte{0x93, 0xa1, 'x', 0x81, 0xa4, 'd', 'a', 't', 'a'}, bytes.Repeat([]byte{0x91}, 8_000_000)...)
	deep = append(deep, 0xc0, 0x80)
	cases := map[string][]byte{
		"empty":              {},
		"truncated":          golden[:len(golden)-1],
		"trailing":           append(bytes.Clone(golden), 0xc0),
		"reserved":           {0xc1},
		"huge array claim":   {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"huge map claim":     {0xdf, 0xff, 0xff, 0xff, 0xff},
		"huge string claim":  {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"truncated ext":      {0xc7, 0x05, 0x01, 0x00},
		"truncated int":      {0xcf, 0x00},
		"deep nesting (8MB)": deep,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := checkMsgpack(b); err == nil {
				t.Fatalf("accepted % x...", b[:min(len(b), 16)])
			}
			if _, err := Broadcast(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Broadcast: want ErrMalformed, got %v", err)
			}
			if len(b) > 0 && b[0] != '{' {
				if _, err := Request(b); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Request: want ErrMalformed, got %v", err)
				}
				if _, err := Response(b); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Response: want ErrMalformed, got %v", err)
				}
			}
		})
	}
}

func TestCheckMsgpackDepthLimit(t *testing.T) {
	ok := append(bytes.Repeat([]byte{0x91}, wire.MaxDepth-1), 0xc0)
	if err := checkMsgpack(ok); err != nil {
		t.Fatalf("depth %d rejected: %v", wire.MaxDepth-1, err)
	}
	tooDeep := append(bytes.Repeat([]byte{0x91}, wire.MaxDepth+1), 0xc0)
	if err := checkMsgpack(tooDeep); err == nil {
		t.Fatalf("depth %d accepted", wire.MaxDepth+1)
	}
}

// FuzzDecode checks that no input makes the decoders panic or crash.
func FuzzDecode(f *testing.F) {
	f.Add(mustHex(f, nodeEmit))
	f.Add([]byte(`{"type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}`))
	f.Add([]byte(`{"requestId":"x","sockets":[{"id":"a"}]}`))
	f.Add([]byte{0x93, 0xa1, 'x', 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Broadcast(b)
		_, _ = Request(b)
		_, _ = Response(b)
	})
}
