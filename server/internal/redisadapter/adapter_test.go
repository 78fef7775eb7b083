package redisadapter_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/testwait"
)

// marker broadcasts a "marker" event to everyone from n and checks that it is
// the next event of every client: anything they should not have received would
// come before it.
func marker(t *testing.T, n *node, clients ...*eiotest.Conn) {
	t.Helper()
	if err := n.io.Sockets().Emit("marker"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		expectEvent(t, c, "marker")
	}
}

func TestBroadcastAcrossServers(t *testing.T) {
	r := startRedis(t)
	a, b := newNode(t, r.Addr, nil), newNode(t, r.Addr, nil)
	a1, _ := a.connect(t, "r1")
	a2, _ := a.connect(t, "r2")
	b1, _ := b.connect(t, "r1")
	b2, _ := b.connect(t, "r3")
	all := []*eiotest.Conn{a1, a2, b1, b2}

	t.Run("to all", func(t *testing.T) {
		if err := a.io.Sockets().Emit("all", "x", 1); err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			expectEvent(t, c, "all", "x", 1)
		}
	})
	t.Run("to one room", func(t *testing.T) {
		if err := b.io.To("r1").Emit("room", 2); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, a1, "room", 2)
		expectEvent(t, b1, "room", 2)
		marker(t, a, all...)
	})
	t.Run("to two rooms", func(t *testing.T) {
		if err := a.io.To("r1", "r2").Emit("rooms", 3); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, a1, "rooms", 3)
		expectEvent(t, a2, "rooms", 3)
		expectEvent(t, b1, "rooms", 3)
		marker(t, b, all...)
	})
	t.Run("except", func(t *testing.T) {
		if err := b.io.Except("r1").Emit("except", 4); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, a2, "except", 4)
		expectEvent(t, b2, "except", 4)
		marker(t, a, all...)
	})
	t.Run("local", func(t *testing.T) {
		if err := a.io.Local().Emit("local", 5); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, a1, "local", 5)
		expectEvent(t, a2, "local", 5)
		marker(t, a, all...)
	})
	t.Run("binary", func(t *testing.T) {
		if err := a.io.Sockets().Emit("bin", []byte{1, 2, 3}, map[string]any{"nested": []byte{4}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			p := expectEvent(t, c, "bin")
			if p.Type != eiotest.TypeBinaryEvent || len(p.Attachments) != 2 ||
				!bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) || !bytes.Equal(p.Attachments[1], []byte{4}) {
				t.Fatalf("binary event: type %d, data %s, attachments %v", p.Type, p.Data, p.Attachments)
			}
		}
	})
	t.Run("struct and raw JSON arguments", func(t *testing.T) {
		type payload struct {
			TaskID string `json:"taskId"`
			Seq    int    `json:"seq"`
			Skip   string `json:"skip,omitempty"`
		}
		if err := a.io.To("r3").Emit("typed", payload{TaskID: "t1", Seq: 7}, json.RawMessage(`{"a":[1,2.5]}`)); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, b2, "typed", map[string]any{"taskId": "t1", "seq": 7}, map[string]any{"a": []any{1, 2.5}})
	})
	t.Run("many in order", func(t *testing.T) {
		const n = 500
		for i := range n {
			if err := a.io.To("r1").Emit("seq", i); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []*eiotest.Conn{a1, b1} {
			for i := range n {
				expectEvent(t, c, "seq", i)
			}
		}
	})
	if s := a.builder.Stats(); s.Malformed != 0 || s.Panics != 0 || s.PublishErrors != 0 {
		t.Fatalf("stats of A: %+v", s)
	}
}

// TestNodeMessages decodes and delivers messages in the exact form Node's
// emitter and adapter publish (research/wire-format.md).
func TestNodeMessages(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, r.Addr, nil)
	c, sid := a.connect(t, "room1")
	ctx := timeout(t, 5*time.Second)
	pub := func(channel, payload string) {
		t.Helper()
		if err := a.client.Publish(ctx, channel, payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	golden, _ := hex.DecodeString("93a7656d697474657283a47479706502a46461746193a568656c6c6fa5776f726c6401a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490")
	pub("socket.io#/#", string(golden))
	expectEvent(t, c, "hello", "world", 1)

	// Node adapter, binary argument (notepack writes a Buffer as bin 8), to one room.
	nodeBin := []byte{0x93, 0xa6, 'n', 'o', 'd', 'e', 'i', 'd',
		0x83, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a', 0x92, 0xa3, 'b', 'i', 'n', 0xc4, 0x03, 9, 8, 7, 0xa3, 'n', 's', 'p', 0xa1, '/',
		0x83, 0xa5, 'r', 'o', 'o', 'm', 's', 0x91, 0xa5, 'r', 'o', 'o', 'm', '1', 0xa6, 'e', 'x', 'c', 'e', 'p', 't', 0x90, 0xa5, 'f', 'l', 'a', 'g', 's', 0x80}
	pub("socket.io#/#room1#", string(nodeBin))
	p := expectEvent(t, c, "bin")
	if len(p.Attachments) != 1 || !bytes.Equal(p.Attachments[0], []byte{9, 8, 7}) {
		t.Fatalf("binary from Node: %s %v", p.Data, p.Attachments)
	}

	// Node emitter socketsJoin (no uid), then an emit to the joined room.
	pub("socket.io-request#/#", `{"type":2,"opts":{"rooms":["`+sid+`"],"except":[]},"rooms":["joined"]}`)
	pub("socket.io#/#joined#", string(mustEncode(t, "emitter", "in-joined", []string{"joined"}, nil)))
	expectEvent(t, c, "in-joined", 1)
	// Node emitter socketsLeave, then an emit to the room must not arrive.
	pub("socket.io-request#/#", `{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["joined"]}`)
	pub("socket.io#/#joined#", string(mustEncode(t, "emitter", "left", []string{"joined"}, nil)))
	marker(t, a, c)

	// Another namespace's packet on our channel is ignored.
	other := mustEncode(t, "emitter", "other-nsp", nil, nil)
	other = bytes.Replace(other, []byte{0xa3, 'n', 's', 'p', 0xa1, '/'}, []byte{0xa3, 'n', 's', 'p', 0xa2, '/', 'x'}, 1)
	pub("socket.io#/#", string(other))
	marker(t, a, c)
}

func mustEncode(t *testing.T, uid, event string, rooms, except []string) []byte {
	t.Helper()
	b, err := wire.EncodeBroadcast(uid, &wire.Packet{Type: wire.PacketEvent, Data: []any{event, 1}, Nsp: "/"},
		&wire.Opts{Rooms: rooms, Except: except})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSocketsJoinLeaveDisconnectAcrossServers(t *testing.T) {
	r := startRedis(t)
	a, b := newNode(t, r.Addr, nil), newNode(t, r.Addr, nil)
	c, sid := a.connect(t)
	other, _ := a.connect(t)

	// Issued on B for a socket on A; B's emit right after must reach it: A
	// applies the join before it reads the emit.
	b.io.In(socket.Room(sid)).SocketsJoin("moved")
	if err := b.io.To("moved").Emit("after-join", 1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "after-join", 1)
	marker(t, b, c, other)

	b.io.In(socket.Room(sid)).SocketsLeave("moved")
	if err := b.io.To("moved").Emit("after-leave", 1); err != nil {
		t.Fatal(err)
	}
	marker(t, b, c, other)

	// disconnectSockets(false): the socket gets a DISCONNECT packet, the
	// connection stays.
	b.io.In(socket.Room(sid)).DisconnectSockets(false)
	pkt, err := c.Next(timeout(t, 5*time.Second))
	if err != nil || pkt.Type != eiotest.TypeDisconnect {
		t.Fatalf("want a DISCONNECT packet, got %+v, %v", pkt, err)
	}
	// disconnectSockets(true) closes the connection of the other socket.
	_, otherSid := a.connect(t)
	_ = otherSid
	b.io.Except(socket.Room(sid)).DisconnectSockets(true)
	select {
	case <-other.Done():
	case <-timeout(t, 5*time.Second).Done():
		t.Fatal("connection not closed by a remote disconnectSockets(true)")
	}
}

func TestServerSideEmit(t *testing.T) {
	r := startRedis(t)
	a, b := newNode(t, r.Addr, nil), newNode(t, r.Addr, nil)
	got := make(chan []any, 1)
	_ = a.io.On("hello-servers", func(args ...any) { got <- args })
	_ = a.io.On("question", func(args ...any) {
		ack := args[len(args)-1].(socket.Ack)
		ack([]any{"answer from A", args[0]}, nil)
	})
	_ = b.io.On("question", func(args ...any) {
		t.Errorf("a server received its own server-side emit")
	})

	if err := b.io.ServerSideEmit("hello-servers", "x", 2); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-got:
		if len(args) != 2 || args[0] != "x" || args[1] != int64(2) {
			t.Fatalf("server-side emit args %#v", args)
		}
	case <-timeout(t, 5*time.Second).Done():
		t.Fatal("server-side emit not received")
	}

	answers := make(chan []any, 1)
	errs := make(chan error, 1)
	if err := b.io.ServerSideEmitWithAck("question", 42)(func(args []any, err error) {
		answers <- args
		errs <- err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-answers:
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if len(args) != 1 || args[0] != "answer from A" {
			t.Fatalf("answers %#v", args)
		}
	case <-timeout(t, 5*time.Second).Done():
		t.Fatal("no acknowledgement")
	}
}

func TestFetchSocketsAndQueries(t *testing.T) {
	r := startRedis(t)
	a, b := newNode(t, r.Addr, nil), newNode(t, r.Addr, nil)
	_, sidA := a.connectWith(t, map[string]any{"rooms": []string{"shared", "only-a"}, "data": map[string]any{"identity": "alice"}})
	_, sidB := b.connect(t, "shared")

	type result struct {
		sockets []*socket.RemoteSocket
		err     error
	}
	res := make(chan result, 1)
	b.io.In("shared").FetchSockets()(func(s []*socket.RemoteSocket, err error) { res <- result{s, err} })
	var got result
	select {
	case got = <-res:
	case <-timeout(t, 6*time.Second).Done():
		t.Fatal("fetchSockets did not return")
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	ids := map[string]*socket.RemoteSocket{}
	for _, s := range got.sockets {
		ids[string(s.Id())] = s
	}
	if len(ids) != 2 || ids[sidA] == nil || ids[sidB] == nil {
		t.Fatalf("fetched %v, want %s and %s", ids, sidA, sidB)
	}
	remote := ids[sidA]
	if !remote.Rooms().Has("only-a") || !remote.Rooms().Has(socket.Room(sidA)) {
		t.Fatalf("rooms of the remote socket: %v", remote.Rooms().Keys())
	}
	if d, ok := remote.Data().(map[string]any); !ok || d["identity"] != "alice" {
		t.Fatalf("data of the remote socket: %#v", remote.Data())
	}
	if remote.Handshake() == nil || remote.Handshake().Headers["Cookie"] != nil {
		t.Fatalf("handshake of the remote socket: %#v", remote.Handshake())
	}

	// An empty result from A must still be an answer (a Node requester waits
	// for an array).
	b.io.In("nobody-here").FetchSockets()(func(s []*socket.RemoteSocket, err error) { res <- result{s, err} })
	select {
	case got = <-res:
		if got.err != nil || len(got.sockets) != 0 {
			t.Fatalf("empty fetch: %v %v", got.sockets, got.err)
		}
	case <-timeout(t, 6*time.Second).Done():
		t.Fatal("empty fetchSockets did not return")
	}

	// Node-style ALL_ROOMS and SOCKETS requests are answered on the response channel.
	ctx := timeout(t, 5*time.Second)
	sub := b.client.Subscribe(ctx, "socket.io-response#/#")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`{"uid":"nodeXY","requestId":"rq1","type":1}`,
		`{"uid":"nodeXY","requestId":"rq2","type":0,"rooms":["only-a"]}`,
		`{"uid":"nodeXY","requestId":"rq3","type":5,"opts":{"rooms":["nobody"],"except":[]}}`,
	} {
		if err := b.client.Publish(ctx, "socket.io-request#/#", q).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var answers []map[string]any
	for len(answers) < 6 { // each request is answered by A and by B
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("answers so far %v: %v", answers, err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &v); err != nil {
			t.Fatalf("answer %q: %v", m.Payload, err)
		}
		answers = append(answers, v)
	}
	var sawRoom, sawSid, sawEmpty bool
	for _, v := range answers {
		switch v["requestId"] {
		case "rq1":
			for _, r := range v["rooms"].([]any) {
				sawRoom = sawRoom || r == "only-a"
			}
		case "rq2":
			for _, s := range v["sockets"].([]any) {
				sawSid = sawSid || s == sidA
			}
		case "rq3":
			s, ok := v["sockets"].([]any)
			if !ok {
				t.Fatalf("REMOTE_FETCH answer without a sockets array: %v", v)
			}
			sawEmpty = sawEmpty || len(s) == 0
		}
	}
	if !sawRoom || !sawSid || !sawEmpty {
		t.Fatalf("answers %v", answers)
	}
}

// TestGarbageNeverStopsTheSubscriber publishes bad messages of every kind on
// every channel; they are counted and dropped, and a good message after them
// still arrives.
func TestGarbageNeverStopsTheSubscriber(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, r.Addr, &nodeOpts{maxBytes: 1 << 20})
	c, _ := a.connect(t, "room")
	ctx := timeout(t, 20*time.Second)

	golden, _ := hex.DecodeString("93a7656d697474657283a47479706502a46461746193a568656c6c6fa5776f726c6401a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490")
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	deep := "\x93\xa1x\x83\xa4type\x02\xa4data" + strings.Repeat("\x91", 900<<10) + "\xc0"
	garbage := map[string]string{
		"empty":            "",
		"random":           random(200),
		"truncated":        string(golden[:40]),
		"trailing":         string(golden) + "\x00",
		"map not array":    "\x83\xa3uid\xa1x\xa6packet\x80\xa4opts\x80",
		"type 50":          strings.Replace(string(golden), "\xa4type\x02", "\xa4type\xcc\x32", 1),
		"rooms not array":  strings.Replace(string(golden), "\xa5rooms\x90", "\xa5rooms\xa1x", 1),
		"nil packet":       "\x93\xa1x\xc0\x80",
		"deep nesting":     deep,
		"json garbage":     `{"type":"x"`,
		"json wrong types": `{"type":2,"opts":{"rooms":"r"},"rooms":[1,{}]}`,
		"json bad type":    `{"type":99}`,
		"sse no event":     `{"type":6,"data":[]}`,
		"huge":             strings.Repeat("\x90", 2<<20),
		"response no id":   `{"sockets":[]}`,
		"msgpack response": "\x81\xa9requestId\xc3",
	}
	channels := []string{"socket.io#/#", "socket.io#/#room#", "socket.io-request#/#", "socket.io-response#/#",
		"socket.io-response#/#" + a.adapter.UID() + "#"}
	before := a.builder.Stats()
	sent := 0
	for _, ch := range channels {
		for _, g := range garbage {
			if err := a.client.Publish(ctx, ch, g).Err(); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	// A good message after the garbage (distinct from every garbage message,
	// some of which are near misses of the golden bytes).
	if err := a.client.Publish(ctx, "socket.io#/#", string(mustEncode(t, "emitter", "after-garbage", nil, nil))).Err(); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "after-garbage", 1)
	after := a.builder.Stats()
	bad := (after.Malformed - before.Malformed) + (after.Oversized - before.Oversized) + (after.Ignored - before.Ignored)
	if after.Received-before.Received != uint64(sent+1) || bad != uint64(sent) {
		t.Fatalf("sent %d bad messages; stats before %+v after %+v", sent, before, after)
	}
	if after.Oversized-before.Oversized != uint64(len(channels)) { // "huge"
		t.Fatalf("oversized: %+v", after)
	}
	if after.Panics != 0 {
		t.Fatalf("panics: %+v", after)
	}
	if !strings.Contains(a.logs.String(), "malformed message dropped") {
		t.Fatal("malformed messages were not logged")
	}
	if n := strings.Count(a.logs.String(), "malformed message dropped"); n > 3 {
		t.Fatalf("malformed messages logged %d times within a second; want rate-limited", n)
	}
}

func TestRedisRestart(t *testing.T) {
	r := startRedis(t)
	resubscribed := make(chan string, 16)
	a := newNode(t, r.Addr, &nodeOpts{publishTimeout: 500 * time.Millisecond,
		onResubscribe: func(nsp string) { resubscribed <- nsp }})
	b := newNode(t, r.Addr, &nodeOpts{publishTimeout: 500 * time.Millisecond})
	c, _ := a.connect(t, "room")
	if err := b.io.To("room").Emit("before", 1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "before", 1)

	subsA := a.builder.Stats().Subscriptions
	if len(resubscribed) != 0 {
		t.Fatal("OnResubscribe called for the first subscription")
	}
	r.Stop()
	// While Redis is away a broadcast still reaches local sockets; the publish
	// fails after PublishTimeout, is counted and logged, and nothing blocks.
	start := time.Now()
	if err := a.io.To("room").Emit("during", 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("broadcast blocked %v while Redis was down", d)
	}
	expectEvent(t, c, "during", 1)
	if a.builder.Stats().PublishErrors == 0 {
		t.Fatal("failed publish not counted")
	}
	err := a.adapter.AddSocketsContext(context.Background(), &socket.BroadcastOptions{Rooms: types.NewSet[socket.Room]("x")}, []socket.Room{"y"})
	if err == nil {
		t.Fatal("AddSocketsContext succeeded with Redis down")
	}

	r.Restart()
	// Both subscribers reconnect and subscribe again on their own.
	testwait.For(t, 15*time.Second, "A to subscribe again", func() bool { return a.builder.Stats().Subscriptions >= subsA+4 })
	testwait.For(t, 15*time.Second, "both servers subscribed", func() bool {
		n, err := b.client.PubSubNumSub(context.Background(), "socket.io-request#/#").Result()
		return err == nil && n["socket.io-request#/#"] == 2
	})
	expectResubscribed(t, resubscribed, "/")
	if err := b.io.To("room").Emit("after", 1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "after", 1)
}

// expectResubscribed waits for OnResubscribe to be called for nsp (the first
// subscription does not call it: got must be empty until the reconnection).
func expectResubscribed(t *testing.T, got <-chan string, nsp string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-got:
			if n == nsp {
				return
			}
		case <-deadline:
			t.Fatalf("OnResubscribe(%q) was not called after the reconnection", nsp)
		}
	}
}

func TestNewNeedsAClient(t *testing.T) {
	if _, err := redisadapter.New(redisadapter.Config{}); err == nil {
		t.Fatal("New accepted a config without a client")
	}
}

// TestFetchSocketsTimesOut checks that a request nobody answers ends with an
// error after the request timeout instead of hanging.
func TestFetchSocketsTimesOut(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, r.Addr, &nodeOpts{requestTimeout: 300 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	var got error
	// Pretend another server exists so that a request is sent and waited for.
	ctx := timeout(t, 5*time.Second)
	fake := a.client.Subscribe(ctx, "socket.io-request#/#")
	defer fake.Close()
	if _, err := fake.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	a.io.FetchSockets()(func(_ []*socket.RemoteSocket, err error) {
		got = err
		wg.Done()
	})
	wg.Wait()
	if got == nil || !strings.Contains(got.Error(), "timeout") {
		t.Fatalf("fetchSockets without an answer: %v", got)
	}
}

// TestPublishedBytes checks what a Go broadcast looks like on Redis: the array
// [uid, packet, opts] with the numeric packet type, rooms and except as arrays,
// only the flags that were set, and binary as msgpack bin.
func TestPublishedBytes(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, r.Addr, nil)
	ctx := timeout(t, 5*time.Second)
	sub := a.client.PSubscribe(ctx, "socket.io#/#*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.io.To("r").Volatile().Emit("ev", 1, []byte{7}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != "socket.io#/#r#" {
		t.Fatalf("channel %q", m.Channel)
	}
	raw := []byte(m.Payload)
	if raw[0] != 0x93 || !bytes.Contains(raw, []byte("\xa4type\x02")) || !bytes.Contains(raw, []byte("\xc4\x01\x07")) {
		t.Fatalf("bytes % x", raw)
	}
	b, err := decode.Broadcast(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.UID != a.adapter.UID() || b.Packet.Type != wire.PacketEvent || b.Packet.Nsp != "/" ||
		len(b.Opts.Rooms) != 1 || b.Opts.Rooms[0] != "r" || b.Opts.Except == nil || len(b.Opts.Except) != 0 {
		t.Fatalf("decoded %+v", b)
	}
	if !b.Opts.Flags.IsVolatile() || b.Opts.Flags.Compress != nil || b.Opts.Flags.Local != nil || b.Opts.Flags.Timeout != nil {
		t.Fatalf("flags %+v", b.Opts.Flags)
	}
	if !bytes.Contains(raw, []byte("\xa5flags\x81\xa8volatile\xc3")) {
		t.Fatalf("flags must hold volatile only: % x", raw)
	}

	// A plain emit carries empty flags, like Node's.
	if err := a.io.Sockets().Emit("plain"); err != nil {
		t.Fatal(err)
	}
	m, err = sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != "socket.io#/#" || !bytes.Contains([]byte(m.Payload), []byte("\xa5flags\x80")) {
		t.Fatalf("plain emit on %q: % x", m.Channel, m.Payload)
	}
}

// TestFetchAnsweredOnSpecificChannel plays a Node server started with
// publishOnSpecificResponseChannel: it answers our REMOTE_FETCH on our own
// response channel, with a Node-shaped handshake.
func TestFetchAnsweredOnSpecificChannel(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, r.Addr, nil)
	ctx := timeout(t, 10*time.Second)
	fake := a.client.Subscribe(ctx, "socket.io-request#/#")
	defer fake.Close()
	if _, err := fake.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			m, err := fake.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			var req struct {
				UID       string `json:"uid"`
				RequestID string `json:"requestId"`
				Type      int    `json:"type"`
			}
			if json.Unmarshal([]byte(m.Payload), &req) != nil || req.Type != 5 {
				continue
			}
			answer := `{"requestId":"` + req.RequestID + `","sockets":[{"id":"node-socket","handshake":{"headers":{"user-agent":"node","accept":"*/*"},"time":"Tue Nov 25 2026","address":"::1","xdomain":false,"secure":false,"issued":1764111600000,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{}},"rooms":["node-socket","lobby"],"data":{"identity":"nina"}}]}`
			_ = a.client.Publish(ctx, "socket.io-response#/#"+req.UID+"#", answer).Err()
		}
	}()
	type result struct {
		s   []*socket.RemoteSocket
		err error
	}
	res := make(chan result, 1)
	a.io.In("lobby").FetchSockets()(func(s []*socket.RemoteSocket, err error) { res <- result{s, err} })
	select {
	case got := <-res:
		if got.err != nil || len(got.s) != 1 {
			t.Fatalf("fetch: %v %v", got.s, got.err)
		}
		s := got.s[0]
		h := s.Handshake()
		if s.Id() != "node-socket" || !s.Rooms().Has("lobby") || h.Headers["User-Agent"][0] != "node" ||
			h.Query["EIO"][0] != "4" || h.Issued != 1764111600000 || h.Address != "::1" {
			t.Fatalf("remote socket %+v handshake %+v", s, h)
		}
	case <-ctx.Done():
		t.Fatal("no result")
	}
}
