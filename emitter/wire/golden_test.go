package wire_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"

	"github.com/taskwire/taskwire/emitter/internal/msgpacktest"
	"github.com/taskwire/taskwire/emitter/internal/spec"
	"github.com/taskwire/taskwire/emitter/wire"
)

// The golden vectors are what Node's @socket.io/redis-emitter 5.1.0 publishes for
// each spec; e2e/golden/generate.mjs writes them (npm run golden in e2e/).
const goldenFile = "testdata/golden.json"

func loadGolden(t *testing.T) []spec.Golden {
	t.Helper()
	g, err := spec.LoadGolden(goldenFile)
	if err != nil {
		t.Fatalf("load golden vectors: %v", err)
	}
	if len(g) < 50 {
		t.Fatalf("only %d golden vectors in %s", len(g), goldenFile)
	}
	return g
}

// target is what a spec's operators select, computed with the wire package only.
type target struct {
	key, nsp      string
	rooms, except []string
	flags         wire.Flags
	// compress is the last compress value set, when set.
	compress *bool
	volatile bool
}

// addUnique appends the rooms not yet in list, like the Set of Node's operators.
func addUnique(list []string, rooms ...string) []string {
	for _, r := range rooms {
		found := false
		for _, x := range list {
			if x == r {
				found = true
				break
			}
		}
		if !found {
			list = append(list, r)
		}
	}
	return list
}

func targetOf(t *testing.T, s *spec.Spec) target {
	t.Helper()
	tg := target{key: wire.DefaultKey, nsp: "/"}
	if s.Key != "" {
		tg.key = s.Key
	}
	if s.HasNsp {
		nsp, err := wire.NormalizeNamespace(s.Nsp)
		if err != nil {
			t.Fatalf("namespace %q: %v", s.Nsp, err)
		}
		tg.nsp = nsp
	}
	for _, op := range s.Ops {
		switch op.Kind {
		case spec.OpTo, spec.OpIn:
			tg.rooms = addUnique(tg.rooms, op.Rooms...)
		case spec.OpExcept:
			tg.except = addUnique(tg.except, op.Rooms...)
		case spec.OpVolatile:
			tg.flags = tg.flags.WithVolatile(true)
			tg.volatile = true
		case spec.OpCompress:
			tg.flags = tg.flags.WithCompress(op.Bool)
			b := op.Bool
			tg.compress = &b
		}
	}
	return tg
}

// clusterMessageOf builds the sharded message of s with the wire package alone.
func clusterMessageOf(t *testing.T, s *spec.Spec, tg target) *wire.ClusterMessage {
	t.Helper()
	m := &wire.ClusterMessage{UID: wire.EmitterUID, Nsp: tg.nsp,
		Opts: &wire.Opts{Rooms: orEmpty(tg.rooms), Except: orEmpty(tg.except), Flags: tg.flags}}
	switch s.Call {
	case spec.CallEmit:
		m.Type = wire.MessageBroadcast
		m.Packet = &wire.Packet{Type: wire.PacketEvent, Data: s.Args, Nsp: tg.nsp}
	case spec.CallSocketsJoin:
		m.Type, m.Rooms = wire.MessageSocketsJoin, s.Rooms()
	case spec.CallSocketsLeave:
		m.Type, m.Rooms = wire.MessageSocketsLeave, s.Rooms()
	case spec.CallDisconnectSockets:
		m.Type, m.Close = wire.MessageDisconnectSockets, s.Close()
	case spec.CallServerSideEmit:
		m.Type, m.Args, m.Opts = wire.MessageServerSideEmit, s.Args, nil
	default:
		t.Fatalf("unknown call %q", s.Call)
	}
	return m
}

func modeOf(t *testing.T, s *spec.Spec) wire.SubscriptionMode {
	t.Helper()
	mode, err := wire.ParseSubscriptionMode(s.SubscriptionMode)
	if err != nil {
		t.Fatal(err)
	}
	return mode
}

// encodeWithWire builds the message of s with the wire package alone (no emitter).
func encodeWithWire(t *testing.T, s *spec.Spec) (string, []byte) {
	t.Helper()
	tg := targetOf(t, s)
	if s.Sharded {
		m := clusterMessageOf(t, s, tg)
		b, err := wire.EncodeClusterMessage(m)
		if err != nil {
			t.Fatalf("EncodeClusterMessage: %v", err)
		}
		return wire.ShardedChannels{Prefix: tg.key, Nsp: tg.nsp}.Publish(m, modeOf(t, s)), b
	}
	ch := wire.Channels{Key: tg.key, Nsp: tg.nsp}
	var (
		b   []byte
		err error
	)
	switch s.Call {
	case spec.CallEmit:
		b, err = wire.EncodeBroadcast(wire.EmitterUID,
			&wire.Packet{Type: wire.PacketEvent, Data: s.Args, Nsp: tg.nsp},
			&wire.Opts{Rooms: tg.rooms, Except: tg.except, Flags: tg.flags})
		if err != nil {
			t.Fatalf("EncodeBroadcast: %v", err)
		}
		return ch.Broadcast(tg.rooms), b
	case spec.CallSocketsJoin, spec.CallSocketsLeave:
		typ := wire.RequestRemoteJoin
		if s.Call == spec.CallSocketsLeave {
			typ = wire.RequestRemoteLeave
		}
		b, err = wire.EncodeRequest(&wire.Request{Type: typ,
			Opts: &wire.Opts{Rooms: tg.rooms, Except: tg.except}, Rooms: s.Rooms()})
	case spec.CallDisconnectSockets:
		b, err = wire.EncodeRequest(&wire.Request{Type: wire.RequestRemoteDisconnect,
			Opts: &wire.Opts{Rooms: tg.rooms, Except: tg.except}, Close: s.Close()})
	case spec.CallServerSideEmit:
		b, err = wire.EncodeRequest(&wire.Request{UID: wire.EmitterUID, Type: wire.RequestServerSideEmit, Data: s.Args})
	default:
		t.Fatalf("unknown call %q", s.Call)
	}
	if err != nil {
		t.Fatalf("EncodeRequest: %v", err)
	}
	return ch.Request(), b
}

// diffBytes describes where got and want first differ.
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
	s := fmt.Sprintf("len got %d, want %d; first difference at byte %d (| marks it):\n  got  ...%s\n  want ...%s",
		len(got), len(want), i, window(got), window(want))
	if len(got) < 400 && len(want) < 400 {
		s += fmt.Sprintf("\n  got  %x\n  want %x", got, want)
	}
	return s
}

// TestGoldenWireEncode checks that the wire package, driven by hand, writes exactly
// the channel and bytes of Node's emitter for every golden vector.
func TestGoldenWireEncode(t *testing.T) {
	for _, g := range loadGolden(t) {
		if g.Differs != "" {
			continue // TestGoldenKnownDifferences
		}
		t.Run(g.Name, func(t *testing.T) {
			ch, b := encodeWithWire(t, g.Spec)
			if ch != g.Channel {
				t.Errorf("channel = %q, want %q", ch, g.Channel)
			}
			if !bytes.Equal(b, g.Payload) {
				t.Errorf("payload differs from Node's: %s", diffBytes(b, g.Payload))
			}
		})
	}
}

// TestGoldenKnownDifferences covers the vectors where taskwire knowingly writes
// other bytes than Node (see their "differs" note): what taskwire writes must decode
// to exactly the values of the spec, and differ from Node's bytes only in the
// argument data.
func TestGoldenKnownDifferences(t *testing.T) {
	n := 0
	for _, g := range loadGolden(t) {
		if g.Differs == "" {
			continue
		}
		n++
		t.Run(g.Name, func(t *testing.T) {
			ch, b := encodeWithWire(t, g.Spec)
			if ch != g.Channel {
				t.Errorf("channel = %q, want %q", ch, g.Channel)
			}
			if bytes.Equal(b, g.Payload) {
				t.Logf("now byte-identical to Node: drop the differs note of %s", g.Name)
			}
			got, want := spec.Normalize(broadcastData(t, b)), spec.Normalize(g.Spec.JSONArgs)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("our payload decodes to\n %s\nwant\n %s", short(got), short(want))
			}
			t.Logf("%s\n  Node's payload decodes to %s\n  ours decodes to        %s",
				g.Differs, short(spec.Normalize(broadcastData(t, g.Payload))), short(got))
		})
	}
	if n == 0 {
		t.Fatal("no vectors with a differs note; the golden file lost them")
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ptrStr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

func short(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

// broadcastData reads the event data of a broadcast [uid, {type, data, nsp}, opts].
// (The server's decoder is tested against these vectors in its own package.)
func broadcastData(t *testing.T, b []byte) any {
	t.Helper()
	v, err := msgpacktest.Read(b)
	if err != nil {
		t.Fatalf("read %x: %v", b, err)
	}
	msg, ok := v.([]any)
	if !ok || len(msg) != 3 {
		t.Fatalf("not a broadcast: %#v", v)
	}
	pkt, ok := msg[1].(map[string]any)
	if !ok {
		t.Fatalf("packet is %T", msg[1])
	}
	return pkt["data"]
}
