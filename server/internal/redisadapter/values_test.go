package redisadapter_test

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
)

type marshalsItself struct{ N int }

func (m marshalsItself) MarshalJSON() ([]byte, error) {
	return []byte(`{"n":` + strconv.Itoa(m.N) + `}`), nil
}

// argsPayload holds what the value rules treat specially: binary and dates at
// any depth, MarshalJSON, MarshalText, json.RawMessage, json tags and options.
type argsPayload struct {
	Name    string          `json:"name"`
	File    []byte          `json:"file"`
	When    time.Time       `json:"when"`
	Custom  marshalsItself  `json:"custom"`
	IP      net.IP          `json:"ip"`
	Raw     json.RawMessage `json:"raw"`
	Count   int             `json:"count,string"`
	Skipped string          `json:"-"`
	Empty   string          `json:"empty,omitempty"`
}

// TestArgumentsAreTheSameOnEveryPath: a client receives the same event whether
// it was emitted on its own server, on another server (classic or sharded), or by
// the emitter (classic or sharded), because all of them apply wire's value rules.
func TestArgumentsAreTheSameOnEveryPath(t *testing.T) {
	args := []any{argsPayload{Name: "n", File: []byte{1, 2}, When: time.UnixMilli(1700000000123).UTC(), Custom: marshalsItself{3},
		IP: net.IPv4(10, 0, 0, 1), Raw: json.RawMessage(`{"z":[1,2.5]}`), Count: 7, Skipped: "no"}, []byte{9}}
	type received struct {
		data        string
		attachments [][]byte
	}
	collect := func(c *eiotest.Conn) received {
		t.Helper()
		p := expectEvent(t, c, "payload")
		if p.Type != eiotest.TypeBinaryEvent {
			t.Fatalf("type %d, want a binary event: %s", p.Type, p.Data)
		}
		return received{string(p.Data), p.Attachments}
	}
	var all []received

	r := startRedis(t)
	a, b := newNode(t, r.Addr, nil), newNode(t, r.Addr, nil)
	ca, _ := a.connect(t, "room")
	cb, _ := b.connect(t, "room")
	if err := a.io.To("room").Emit("payload", args...); err != nil {
		t.Fatal(err)
	}
	all = append(all, collect(ca), collect(cb)) // local, then through Redis (classic)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := emitter.New(rdb, nil).To("room").Emit(timeout(t, 5*time.Second), "payload", args...); err != nil {
		t.Fatal(err)
	}
	all = append(all, collect(ca))

	s1, s2 := newShardedNode(t, r.Addr, wire.SubscriptionDynamic), newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	c1, _ := s1.connect(t, "room")
	c2, _ := s2.connect(t, "room")
	if err := s1.io.To("room").Emit("payload", args...); err != nil {
		t.Fatal(err)
	}
	all = append(all, collect(c1), collect(c2))
	if err := emitter.New(rdb, &emitter.Options{Sharded: true}).To("room").Emit(timeout(t, 5*time.Second), "payload", args...); err != nil {
		t.Fatal(err)
	}
	all = append(all, collect(c1))

	// What encoding/json shows, except binary (placeholders) and the date.
	var want any
	_ = json.Unmarshal([]byte(`["payload",{"count":"7","custom":{"n":3},"file":{"_placeholder":true,"num":0},"ip":"10.0.0.1",
		"name":"n","raw":{"z":[1,2.5]},"when":"2023-11-14T22:13:20.123Z"},{"_placeholder":true,"num":1}]`), &want)
	for i, got := range all {
		var g any
		if err := json.Unmarshal([]byte(got.data), &g); err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) || len(got.attachments) != 2 || !bytes.Equal(got.attachments[0], []byte{1, 2}) || !bytes.Equal(got.attachments[1], []byte{9}) {
			t.Errorf("path %d: got %s %v\nwant %s", i, gj, got.attachments, wj)
		}
	}
}
