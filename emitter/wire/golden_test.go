package wire_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"

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

// TestGoldenDecode decodes every golden payload (as a server receiving it from Node's
// emitter would) and checks every field against the spec.
func TestGoldenDecode(t *testing.T) {
	for _, g := range loadGolden(t) {
		if g.Differs != "" {
			continue // TestGoldenKnownDifferences
		}
		t.Run(g.Name, func(t *testing.T) {
			tg := targetOf(t, g.Spec)
			ch := wire.Channels{Key: tg.key, Nsp: tg.nsp}
			if g.Spec.Sharded {
				checkCluster(t, g, tg)
				return
			}
			if g.IsBroadcast() {
				checkBroadcast(t, g, tg, ch)
			} else {
				checkRequest(t, g, tg, ch)
			}
		})
	}
}

func checkBroadcast(t *testing.T, g spec.Golden, tg target, ch wire.Channels) {
	room, ok := ch.RoomOf(g.Channel)
	if !ok {
		t.Fatalf("RoomOf(%q) = not a broadcast channel of %+v", g.Channel, ch)
	}
	wantRoom := ""
	if len(tg.rooms) == 1 {
		wantRoom = tg.rooms[0]
	}
	if room != wantRoom {
		t.Errorf("RoomOf(%q) = %q, want %q", g.Channel, room, wantRoom)
	}
	if _, ok := (wire.Channels{Key: tg.key + "x", Nsp: tg.nsp}).RoomOf(g.Channel); ok {
		t.Errorf("RoomOf accepts %q for another key", g.Channel)
	}

	m, err := wire.DecodeBroadcast(g.Payload)
	if err != nil {
		t.Fatalf("DecodeBroadcast: %v", err)
	}
	if m.UID != wire.EmitterUID {
		t.Errorf("uid = %q, want %q", m.UID, wire.EmitterUID)
	}
	if m.Packet.Type != wire.PacketEvent {
		t.Errorf("packet type = %d, want %d", m.Packet.Type, wire.PacketEvent)
	}
	if m.Packet.Nsp != tg.nsp {
		t.Errorf("packet nsp = %q, want %q", m.Packet.Nsp, tg.nsp)
	}
	if m.Packet.ID != nil {
		t.Errorf("packet id = %d, want none", *m.Packet.ID)
	}
	got, want := spec.Normalize(m.Packet.Data), spec.Normalize(g.Spec.JSONArgs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packet data differs:\n got  %s\n want %s", short(got), short(want))
	}
	if !reflect.DeepEqual(spec.Normalize(m.Opts.Rooms), spec.Normalize(orEmpty(tg.rooms))) {
		t.Errorf("rooms = %q, want %q", m.Opts.Rooms, tg.rooms)
	}
	if !reflect.DeepEqual(spec.Normalize(m.Opts.Except), spec.Normalize(orEmpty(tg.except))) {
		t.Errorf("except = %q, want %q", m.Opts.Except, tg.except)
	}
	f := m.Opts.Flags
	if (f.Volatile != nil) != tg.volatile || (f.Volatile != nil && !*f.Volatile) {
		t.Errorf("volatile = %v, want set=%v", ptrStr(f.Volatile), tg.volatile)
	}
	if f.IsVolatile() != tg.volatile {
		t.Errorf("IsVolatile() = %v, want %v", f.IsVolatile(), tg.volatile)
	}
	switch {
	case tg.compress == nil && f.Compress != nil:
		t.Errorf("compress = %v, want unset", *f.Compress)
	case tg.compress != nil && (f.Compress == nil || *f.Compress != *tg.compress):
		t.Errorf("compress = %v, want %v", ptrStr(f.Compress), *tg.compress)
	}
	if want := tg.compress == nil || *tg.compress; f.ShouldCompress() != want {
		t.Errorf("ShouldCompress() = %v, want %v", f.ShouldCompress(), want)
	}
	if f.Local != nil || f.Broadcast != nil || f.Binary != nil || f.Timeout != nil || f.ExpectSingleResponse != nil {
		t.Errorf("unexpected flags decoded: %+v", f)
	}
}

func checkRequest(t *testing.T, g spec.Golden, tg target, ch wire.Channels) {
	if g.Channel != ch.Request() {
		t.Errorf("channel = %q, want %q", g.Channel, ch.Request())
	}
	r, err := wire.DecodeRequest(g.Payload)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	if r.RequestID != "" || r.Sid != "" || r.Room != "" || r.Packet != nil {
		t.Errorf("unexpected fields: %+v", r)
	}
	wantOpts := func() {
		if r.Opts == nil {
			t.Fatalf("opts missing")
		}
		if !reflect.DeepEqual(spec.Normalize(r.Opts.Rooms), spec.Normalize(orEmpty(tg.rooms))) ||
			!reflect.DeepEqual(spec.Normalize(r.Opts.Except), spec.Normalize(orEmpty(tg.except))) {
			t.Errorf("opts = rooms %q except %q, want %q %q", r.Opts.Rooms, r.Opts.Except, tg.rooms, tg.except)
		}
	}
	switch g.Spec.Call {
	case spec.CallSocketsJoin, spec.CallSocketsLeave:
		want := wire.RequestRemoteJoin
		if g.Spec.Call == spec.CallSocketsLeave {
			want = wire.RequestRemoteLeave
		}
		if r.Type != want {
			t.Errorf("type = %v, want %v", r.Type, want)
		}
		if r.UID != "" {
			t.Errorf("uid = %q, want none (Node's emitter sends none)", r.UID)
		}
		wantOpts()
		if !reflect.DeepEqual(r.Rooms, g.Spec.Rooms()) {
			t.Errorf("rooms = %q, want %q", r.Rooms, g.Spec.Rooms())
		}
	case spec.CallDisconnectSockets:
		if r.Type != wire.RequestRemoteDisconnect {
			t.Errorf("type = %v, want REMOTE_DISCONNECT", r.Type)
		}
		wantOpts()
		if r.Close != g.Spec.Close() {
			t.Errorf("close = %v, want %v", r.Close, g.Spec.Close())
		}
	case spec.CallServerSideEmit:
		if r.Type != wire.RequestServerSideEmit {
			t.Errorf("type = %v, want SERVER_SIDE_EMIT", r.Type)
		}
		if r.UID != wire.EmitterUID {
			t.Errorf("uid = %q, want %q", r.UID, wire.EmitterUID)
		}
		if r.Opts != nil {
			t.Errorf("opts = %+v, want none", r.Opts)
		}
		// JSON: dates as strings, binary as Node's Buffer objects.
		got, want := spec.Normalize(r.Data), spec.Normalize(spec.AsJSON(g.Spec.JSONArgs, true))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("data differs:\n got  %s\n want %s", short(got), short(want))
		}
	}
}

// checkCluster decodes a sharded vector as a sharded server would and checks every
// field against the spec.
func checkCluster(t *testing.T, g spec.Golden, tg target) {
	t.Helper()
	sch := wire.ShardedChannels{Prefix: tg.key, Nsp: tg.nsp}
	if g.Channel != sch.Main() && !(g.IsBroadcast() && len(tg.rooms) == 1 && g.Channel == sch.Room(tg.rooms[0])) {
		t.Errorf("channel %q is neither the main channel nor the room's", g.Channel)
	}
	m, err := wire.DecodeClusterMessage(g.Payload)
	if err != nil {
		t.Fatalf("DecodeClusterMessage: %v", err)
	}
	if m.UID != wire.EmitterUID || m.Nsp != tg.nsp {
		t.Errorf("uid %q nsp %q, want %q %q", m.UID, m.Nsp, wire.EmitterUID, tg.nsp)
	}
	want := clusterMessageOf(t, g.Spec, tg)
	if m.Type != want.Type {
		t.Fatalf("type %v, want %v", m.Type, want.Type)
	}
	if m.RequestID != "" {
		t.Errorf("requestId %q, want none", m.RequestID)
	}
	if want.Opts != nil {
		if m.Opts == nil {
			t.Fatal("opts missing")
		}
		if !reflect.DeepEqual(spec.Normalize(m.Opts.Rooms), spec.Normalize(want.Opts.Rooms)) ||
			!reflect.DeepEqual(spec.Normalize(m.Opts.Except), spec.Normalize(want.Opts.Except)) {
			t.Errorf("opts rooms %q except %q, want %q %q", m.Opts.Rooms, m.Opts.Except, want.Opts.Rooms, want.Opts.Except)
		}
		if m.Opts.Flags.IsVolatile() != tg.volatile {
			t.Errorf("volatile = %v, want %v", m.Opts.Flags.IsVolatile(), tg.volatile)
		}
		if wantC := tg.compress == nil || *tg.compress; m.Opts.Flags.ShouldCompress() != wantC {
			t.Errorf("ShouldCompress() = %v, want %v", m.Opts.Flags.ShouldCompress(), wantC)
		}
	}
	// JSON carries dates as strings: compare with what JSON would make of them.
	jsonArgs := spec.Normalize(g.Spec.JSONArgs)
	if g.Payload[0] == '{' {
		jsonArgs = spec.Normalize(spec.AsJSON(g.Spec.JSONArgs, false))
	}
	switch want.Type {
	case wire.MessageBroadcast:
		if m.Packet == nil || m.Packet.Type != wire.PacketEvent || m.Packet.Nsp != tg.nsp || m.Packet.ID != nil {
			t.Fatalf("packet %+v", m.Packet)
		}
		if got := spec.Normalize(m.Packet.Data); !reflect.DeepEqual(got, jsonArgs) {
			t.Errorf("packet data differs:\n got  %s\n want %s", short(got), short(jsonArgs))
		}
	case wire.MessageSocketsJoin, wire.MessageSocketsLeave:
		if !reflect.DeepEqual(m.Rooms, want.Rooms) {
			t.Errorf("rooms %q, want %q", m.Rooms, want.Rooms)
		}
	case wire.MessageDisconnectSockets:
		if m.Close != want.Close {
			t.Errorf("close %v, want %v", m.Close, want.Close)
		}
	case wire.MessageServerSideEmit:
		if got := spec.Normalize(m.Args); !reflect.DeepEqual(got, jsonArgs) {
			t.Errorf("packet differs:\n got  %s\n want %s", short(got), short(jsonArgs))
		}
	}
}

// TestGoldenRoundTrip decodes each broadcast and encodes it again: a relaying server
// reproduces Node's bytes, except where the order of flags or of object keys cannot
// be recovered from the decoded form.
func TestGoldenRoundTrip(t *testing.T) {
	for _, g := range loadGolden(t) {
		if !g.IsBroadcast() || g.Spec.GoArgs != "" || g.Differs != "" || g.Spec.Sharded {
			continue
		}
		t.Run(g.Name, func(t *testing.T) {
			m, err := wire.DecodeBroadcast(g.Payload)
			if err != nil {
				t.Fatalf("DecodeBroadcast: %v", err)
			}
			f := m.Opts.Flags
			if f.Volatile != nil && f.Compress != nil && bytes.Index(g.Payload, []byte("compress")) < bytes.Index(g.Payload, []byte("volatile")) {
				t.Skip("flag order (compress before volatile) is not kept by decoding")
			}
			b, err := wire.EncodeBroadcast(m.UID, &m.Packet, &m.Opts)
			if err != nil {
				t.Fatalf("EncodeBroadcast: %v", err)
			}
			if !bytes.Equal(b, g.Payload) {
				t.Errorf("re-encoded payload differs: %s", diffBytes(b, g.Payload))
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
			m, err := wire.DecodeBroadcast(b)
			if err != nil {
				t.Fatalf("DecodeBroadcast(ours): %v", err)
			}
			got, want := spec.Normalize(m.Packet.Data), spec.Normalize(g.Spec.JSONArgs)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("our payload decodes to\n %s\nwant\n %s", short(got), short(want))
			}
			node, err := wire.DecodeBroadcast(g.Payload)
			if err != nil {
				t.Fatalf("DecodeBroadcast(Node's): %v", err)
			}
			t.Logf("%s\n  Node's payload decodes to %s\n  ours decodes to        %s",
				g.Differs, short(spec.Normalize(node.Packet.Data)), short(got))
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

// TestGoldenShardedRoundTrip decodes each sharded vector and encodes it again: a
// relaying server reproduces Node's bytes (object keys of the specs are sorted, so
// decoding loses no order).
func TestGoldenShardedRoundTrip(t *testing.T) {
	n := 0
	for _, g := range loadGolden(t) {
		if !g.Spec.Sharded || g.Spec.GoArgs != "" {
			continue
		}
		n++
		t.Run(g.Name, func(t *testing.T) {
			m, err := wire.DecodeClusterMessage(g.Payload)
			if err != nil {
				t.Fatalf("DecodeClusterMessage: %v", err)
			}
			f := m.Opts
			if f != nil && f.Flags.Volatile != nil && f.Flags.Compress != nil &&
				bytes.Index(g.Payload, []byte("compress")) < bytes.Index(g.Payload, []byte("volatile")) {
				t.Skip("flag order (compress before volatile) is not kept by decoding")
			}
			b, err := wire.EncodeClusterMessage(m)
			if err != nil {
				t.Fatalf("EncodeClusterMessage: %v", err)
			}
			if !bytes.Equal(b, g.Payload) {
				t.Errorf("re-encoded payload differs: %s", diffBytes(b, g.Payload))
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d sharded vectors", n)
	}
}
