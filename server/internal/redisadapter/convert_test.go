package redisadapter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

func TestPacketTypes(t *testing.T) {
	for want, pt := range []parser.PacketType{parser.CONNECT, parser.DISCONNECT, parser.EVENT, parser.ACK, parser.CONNECT_ERROR, parser.BINARY_EVENT, parser.BINARY_ACK} {
		got, err := toWireType(pt)
		if err != nil || int(got) != want {
			t.Fatalf("%v -> %d, %v", pt, got, err)
		}
	}
	if _, err := toWireType(2); err == nil {
		t.Fatal("byte 2 (not ASCII '2') accepted")
	}
	if fromWireType(wire.PacketEvent) != parser.EVENT || fromWireType(wire.PacketBinaryEvent) != parser.EVENT ||
		fromWireType(wire.PacketBinaryAck) != parser.ACK || fromWireType(wire.PacketAck) != parser.ACK {
		t.Fatal("wire types map wrong")
	}
}

func TestFlags(t *testing.T) {
	ms := 1500 * time.Millisecond
	w := wireFlags(&socket.BroadcastFlags{WriteOptions: socket.WriteOptions{Volatile: true}, Timeout: &ms, Local: true})
	if !w.IsVolatile() || w.Compress != nil || w.Local != nil || *w.Timeout != 1500 {
		t.Fatalf("wire flags %+v", w)
	}
	// Incoming: absent compress means compress (Node's reading), explicit false does not.
	in := fromWireOpts(&wire.Opts{Rooms: []string{"a"}, Flags: wire.Flags{}.WithVolatile(true)})
	if !in.Flags.Volatile || !in.Flags.Compress || !in.Rooms.Has("a") || in.Except != nil {
		t.Fatalf("opts %+v flags %+v", in, in.Flags)
	}
	in = fromWireOpts(&wire.Opts{Flags: wire.Flags{}.WithCompress(false).WithTimeout(250)})
	if in.Flags.Compress || in.Flags.Volatile || *in.Flags.Timeout != 250*time.Millisecond {
		t.Fatalf("flags %+v", in.Flags)
	}
	o := toWireOpts(&socket.BroadcastOptions{Rooms: types.NewSet[socket.Room]("x")})
	if o.Except == nil || len(o.Rooms) != 1 {
		t.Fatalf("wire opts %+v", o)
	}
}

type typed struct {
	A string          `json:"a"`
	B []byte          `json:"b,omitempty"`
	R json.RawMessage `json:"r"`
}

func TestNormalizeArgs(t *testing.T) {
	got, err := normalizeArgs([]any{
		"ev",
		[]byte{1},
		types.NewBytesBuffer([]byte{2}),
		types.NewStringBuffer([]byte("s")),
		strings.NewReader("r"),
		bytes.NewBufferString("buf"),
		json.RawMessage(`{"n":1}`),
		typed{A: "x", R: json.RawMessage(`[1.5]`)},
		map[string]int{"k": 3},
		[]any{[]byte{9}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ev", []byte{1}, []byte{2}, "s", "r", []byte("buf"),
		map[string]any{"n": int64(1)}, map[string]any{"a": "x", "r": []any{1.5}}, map[string]any{"k": int64(3)}, []any{[]byte{9}}}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("got %s\nwant %s", gj, wj)
	}
	if _, err := normalizeArgs("not an array"); err == nil {
		t.Fatal("non-array data accepted")
	}
	if _, err := normalizeArgs([]any{func() {}}); err == nil {
		t.Fatal("a func accepted")
	}
}

func TestHandshakeRedaction(t *testing.T) {
	h := nodeHandshake(&socket.Handshake{
		Headers: map[string][]string{"Cookie": {"s=secret"}, "Authorization": {"Bearer x"}, "User-Agent": {"ua"}, "Accept": {"a", "b"}},
		Query:   map[string][]string{"EIO": {"4"}, "multi": {"1", "2"}},
		Auth:    map[string]any{"token": "secret"},
	})
	b, _ := json.Marshal(h)
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "Bearer") {
		t.Fatalf("credentials leaked: %s", b)
	}
	headers := h["headers"].(map[string]any)
	if headers["user-agent"] != "ua" || headers["accept"] != "a, b" {
		t.Fatalf("headers %v", headers)
	}
	q := h["query"].(map[string]any)
	if q["EIO"] != "4" || len(q["multi"].([]string)) != 2 {
		t.Fatalf("query %v", q)
	}
}
