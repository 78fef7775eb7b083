package decode

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/emitter/wire"
)

// goldenFile holds what Node's @socket.io/redis-emitter 5.1.0 publishes for each
// spec of e2e/golden/generate.mjs. The emitter's tests check that package wire
// writes these bytes; the tests here that this package reads them back into what
// wire writes again.
const goldenFile = "../../../../emitter/wire/testdata/golden.json"

type golden struct {
	name, channel string
	payload       []byte
	// sharded and emit say which format and which call the vector is.
	sharded, emit bool
	// goArgs marks specs with Go-only argument types (no Node equivalent to
	// round-trip), differs the vectors where taskwire knowingly writes other bytes.
	goArgs, differs bool
}

func loadGolden(t testing.TB) []golden {
	t.Helper()
	raw, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	var list []struct {
		Name       string `json:"name"`
		Channel    string `json:"channel"`
		PayloadHex string `json:"payloadHex"`
		Differs    string `json:"differs"`
		Spec       struct {
			Call    string          `json:"call"`
			Sharded bool            `json:"sharded"`
			GoArgs  json.RawMessage `json:"goArgs"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	if len(list) < 50 {
		t.Fatalf("only %d golden vectors", len(list))
	}
	out := make([]golden, 0, len(list))
	for _, g := range list {
		p, err := hex.DecodeString(g.PayloadHex)
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		out = append(out, golden{name: g.Name, channel: g.Channel, payload: p, sharded: g.Spec.Sharded,
			emit: g.Spec.Call == "emit", goArgs: len(g.Spec.GoArgs) > 0, differs: g.Differs != ""})
	}
	return out
}

// flagsReordered reports whether Node wrote compress before volatile, an order
// that decoding does not keep (wire writes the flags it decoded in their standard
// order).
func flagsReordered(f *wire.Flags, payload []byte) bool {
	return f.Volatile != nil && f.Compress != nil &&
		bytes.Index(payload, []byte("compress")) < bytes.Index(payload, []byte("volatile"))
}

// TestGoldenDecodes reads every vector of Node's emitter as a server receiving it
// does (sharded messages, broadcasts, requests; the lazy decoder too) and writes it
// again with package wire: the bytes are Node's, so nothing was lost or changed.
func TestGoldenDecodes(t *testing.T) {
	var broadcasts, requests, sharded int
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			var again []byte
			var err error
			switch {
			case g.sharded:
				m, derr := ClusterMessage(g.payload)
				if derr != nil {
					t.Fatalf("ClusterMessage: %v", derr)
				}
				if m.UID != wire.EmitterUID {
					t.Errorf("uid %q", m.UID)
				}
				if m.Opts != nil && flagsReordered(&m.Opts.Flags, g.payload) {
					return
				}
				sharded++
				again, err = wire.EncodeClusterMessage(m)
			case g.emit:
				m, derr := Broadcast(g.payload)
				if derr != nil {
					t.Fatalf("Broadcast: %v", derr)
				}
				if m.UID != wire.EmitterUID || m.Packet.Type != wire.PacketEvent {
					t.Errorf("uid %q, packet type %d", m.UID, m.Packet.Type)
				}
				lb, lerr := Lazy(g.payload)
				if lerr != nil || lb.UID != m.UID || lb.Nsp != m.Packet.Nsp {
					t.Errorf("Lazy: %+v, %v", lb, lerr)
				}
				if flagsReordered(&m.Opts.Flags, g.payload) {
					return
				}
				broadcasts++
				again, err = wire.EncodeBroadcast(m.UID, &m.Packet, &m.Opts)
			default:
				r, derr := Request(g.payload)
				if derr != nil {
					t.Fatalf("Request: %v", derr)
				}
				if !strings.HasPrefix(g.channel, wire.DefaultKey+"-request#") && !strings.Contains(g.channel, "-request#") {
					t.Errorf("request on %q", g.channel)
				}
				requests++
				again, err = wire.EncodeRequest(r)
				if err == nil && bytes.Contains(g.payload, []byte(`{"type":"Buffer"`)) {
					// Node's Buffer objects decode as maps, which keep no key order:
					// what is written again must read as the same request.
					if r2, err := Request(again); err != nil || !reflect.DeepEqual(r2, r) {
						t.Errorf("written again as %s: %+v, %v", again, r2, err)
					}
					return
				}
			}
			if err != nil {
				t.Fatalf("encode again: %v", err)
			}
			if g.goArgs || g.differs {
				return // no Node bytes to come back to (or knowingly other ones)
			}
			if !bytes.Equal(again, g.payload) {
				t.Errorf("read and written again:\n got  %x\n want %x", again, g.payload)
			}
		})
	}
	if broadcasts < 20 || requests < 5 || sharded < 20 {
		t.Fatalf("only %d broadcasts, %d requests and %d sharded messages round-tripped", broadcasts, requests, sharded)
	}
}
