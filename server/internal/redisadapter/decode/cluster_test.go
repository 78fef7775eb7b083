package decode

import (
	"github.com/taskwire/taskwire/emitter/wire"

	"errors"
	"reflect"
	"testing"
)

func TestDecodeClusterMessageRefusesBadInput(t *testing.T) {
	for _, in := range []string{
		``,
		`{`,
		`[]`,
		`{"type":3}`,
		`{"type":3,"nsp":"/"}`,
		`{"type":3,"uid":"x","nsp":"/","data":{}}`,
		`{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2,"data":["e"]}}}`,
		`{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":9,"data":["e"]},"opts":{"rooms":[],"except":[]}}}`,
		`{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2,"data":"e"},"opts":{"rooms":[],"except":[]}}}`,
		`{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2,"data":["e"]},"opts":{"rooms":"r"}}}`,
		`{"type":3,"uid":"x","nsp":7,"data":{"packet":{"type":2,"data":["e"]},"opts":{}}}`,
		`{"type":4,"uid":"x","nsp":"/","data":{"rooms":["a"]}}`,
		`{"type":4,"uid":"x","nsp":"/","data":{"opts":{},"rooms":[{}]}}`,
		`{"type":6,"uid":"x","nsp":"/","data":{"opts":{},"close":"yes"}}`,
		`{"type":8,"uid":"x","nsp":"/","data":{"requestId":"r"}}`,
		`{"type":9,"uid":"x","nsp":"/","data":{"packet":[]}}`,
		`{"type":9,"uid":"x","nsp":"/","data":{"packet":[1]}}`,
		`{"type":10,"uid":"x","nsp":"/","data":{"packet":1}}`,
		`{"type":11,"uid":"x","nsp":"/","data":{"requestId":"r","clientCount":"3"}}`,
		`{"type":14,"uid":"x","nsp":"/","data":{}}`,
		`{"type":0,"uid":"x","nsp":"/"}`,
		"\x84\xa4type\x03",
		"\xc1",
	} {
		m, err := ClusterMessage([]byte(in))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %+v, %v; want ErrMalformed", in, m, err)
		}
	}
}

func TestClusterMessageRoundTrip(t *testing.T) {
	one := 1
	for _, m := range []*wire.ClusterMessage{
		{Type: wire.MessageHeartbeat, UID: "a", Nsp: "/"},
		{Type: wire.MessageBroadcast, UID: "a", Nsp: "/x", RequestID: "r1", Packet: &wire.Packet{Type: wire.PacketEvent, Nsp: "/x", Data: []any{"ev", int64(1)}},
			Opts: &wire.Opts{Rooms: []string{"a"}, Except: []string{}, Flags: wire.Flags{}.WithTimeout(500)}},
		{Type: wire.MessageFetchSockets, UID: "a", Nsp: "/", RequestID: "r2", Opts: &wire.Opts{Rooms: []string{}, Except: []string{"b"}}},
		{Type: wire.MessageFetchSocketsResponse, UID: "b", Nsp: "/", RequestID: "r2", Sockets: []wire.SocketInfo{
			{ID: "s1", Handshake: map[string]any{"auth": map[string]any{}}, Rooms: []string{"s1", "r"}, Data: []byte{1}}}},
		{Type: wire.MessageServerSideEmitResponse, UID: "b", Nsp: "/", RequestID: "r3", Value: map[string]any{"ok": true}},
		{Type: wire.MessageBroadcastClientCount, UID: "b", Nsp: "/", RequestID: "r4", ClientCount: 12},
		{Type: wire.MessageBroadcastAck, UID: "b", Nsp: "/", RequestID: "r4", Value: []byte{9}},
		{Type: wire.MessageServerSideEmit, UID: "a", Nsp: "/", RequestID: "r5", Args: []any{"ev", int64(one)}},
	} {
		b, err := wire.EncodeClusterMessage(m)
		if err != nil {
			t.Fatalf("%v: %v", m.Type, err)
		}
		got, err := ClusterMessage(b)
		if err != nil {
			t.Fatalf("%v: decode %s: %v", m.Type, b, err)
		}
		again, err := wire.EncodeClusterMessage(got)
		if err != nil || string(again) != string(b) {
			t.Errorf("%v: re-encoded differs:\n %q\n %q (%v)", m.Type, again, b, err)
		}
		if got.Type != m.Type || got.UID != m.UID || got.Nsp != m.Nsp || got.RequestID != m.RequestID || got.ClientCount != m.ClientCount {
			t.Errorf("%v: decoded %+v", m.Type, got)
		}
		if m.Sockets != nil && !reflect.DeepEqual(got.Sockets[0].Rooms, m.Sockets[0].Rooms) {
			t.Errorf("sockets %+v", got.Sockets)
		}
	}
}

// FuzzDecodeClusterMessage: any input gives a message or ErrMalformed, never a
// panic, and what decodes encodes again to something that decodes the same way.
func FuzzDecodeClusterMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":3,"data":{"packet":{"type":2,"data":["hello","world",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`,
		`{"type":4,"data":{"opts":{"rooms":["a"],"except":[],"flags":{}},"rooms":["x"]},"uid":"emitter","nsp":"/"}`,
		`{"type":9,"data":{"packet":["ev",1]},"uid":"emitter","nsp":"/"}`,
		`{"type":8,"data":{"requestId":"r","sockets":[{"id":"s","handshake":{},"rooms":["s"],"data":null}]},"uid":"u","nsp":"/"}`,
		"\x84\xa4type\x09\xa4data\x81\xa6packet\x93\xa2ev\x01\xc4\x01\x01\xa3uid\xa7emitter\xa3nsp\xa1/",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ClusterMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		out, err := wire.EncodeClusterMessage(m)
		if err != nil {
			return // e.g. a number JSON cannot hold; decoding it was still safe
		}
		if _, err := ClusterMessage(out); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", out, err)
		}
	})
}
