package spec

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// Golden is one vector of wire/testdata/golden.json: a spec and what Node's
// @socket.io/redis-emitter published for it.
type Golden struct {
	Name    string
	Spec    *Spec
	RawSpec json.RawMessage
	Channel string
	Payload []byte
	// Differs, when set, says why taskwire knowingly writes other bytes for this
	// spec (a bug or an unobservable quirk on the Node side).
	Differs string
}

// IsBroadcast reports whether the vector is a broadcast (an emit), as opposed to a
// request on the request channel.
func (g *Golden) IsBroadcast() bool { return g.Spec.Call == CallEmit }

// LoadGolden reads and parses a golden file written by e2e/golden/generate.mjs.
func LoadGolden(path string) ([]Golden, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		Name       string          `json:"name"`
		Spec       json.RawMessage `json:"spec"`
		Channel    string          `json:"channel"`
		PayloadHex string          `json:"payloadHex"`
		Differs    string          `json:"differs"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("spec: %s: %w", path, err)
	}
	out := make([]Golden, 0, len(raw))
	for _, r := range raw {
		s, err := Parse(r.Spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		p, err := hex.DecodeString(r.PayloadHex)
		if err != nil {
			return nil, fmt.Errorf("%s: payloadHex: %w", r.Name, err)
		}
		out = append(out, Golden{Name: r.Name, Spec: s, RawSpec: r.Spec, Channel: r.Channel, Payload: p, Differs: r.Differs})
	}
	return out, nil
}
