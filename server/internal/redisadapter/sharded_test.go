package redisadapter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/testwait"
)

// shardNode is a server of a sharded test cluster, with namespaces "/" and
// "/admin"; server-side events "srv:hello" of either arrive on serverSide.
type shardNode struct {
	*node
	sharded    *redisadapter.Adapter
	admin      *redisadapter.Adapter
	serverSide chan []any
}

// newShardedNode starts a sharded server using redis at addr; onResubscribe, if
// given, is its adapter's OnResubscribe.
func newShardedNode(t *testing.T, addr string, mode wire.SubscriptionMode, onResubscribe ...func(string)) *shardNode {
	t.Helper()
	o := &nodeOpts{sharded: true, mode: mode, requestTimeout: 3 * time.Second}
	if len(onResubscribe) > 0 {
		o.onResubscribe = onResubscribe[0]
	}
	n := &shardNode{node: newNode(t, addr, o), serverSide: make(chan []any, 16)}
	admin := n.io.Of("/admin", nil)
	admin.Use(joinFromAuth)
	for _, nsp := range []socket.Namespace{n.io.Sockets(), admin} {
		name := nsp.Name()
		_ = nsp.On("srv:hello", func(args ...any) { n.serverSide <- append([]any{name}, args...) })
	}
	n.sharded = n.adapter
	n.admin = admin.Adapter().(*redisadapter.Adapter)
	return n
}

// connectAdmin opens a websocket client on /admin (only) in rooms.
func (n *shardNode) connectAdmin(t *testing.T, rooms ...string) *eiotest.Conn {
	t.Helper()
	c, ctx := n.dial(t)
	auth, _ := json.Marshal(map[string]any{"rooms": rooms})
	if err := c.SendRaw("40/admin," + string(auth)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitConnect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// settleAll emits a marker to everyone of "/" and "/admin" through em and checks
// that it is the next event of every client: nothing they should not have had
// came before it.
func settleAll(t *testing.T, em *emitter.Emitter, root []*eiotest.Conn, admin ...*eiotest.Conn) {
	t.Helper()
	ctx := timeout(t, 5*time.Second)
	if err := em.Emit(ctx, "marker"); err != nil {
		t.Fatal(err)
	}
	if err := em.Of("/admin").Emit(ctx, "marker"); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(slices.Clone(root), admin...) {
		expectEvent(t, c, "marker")
	}
}

// TestShardedEmitterMatrix drives two sharded servers with the sharded emitter,
// in each subscription mode (server and emitter alike), through every operation
// of the emitter.
func TestShardedEmitterMatrix(t *testing.T) {
	for _, mode := range []wire.SubscriptionMode{wire.SubscriptionStatic, wire.SubscriptionDynamic, wire.SubscriptionDynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			r := startRedis(t)
			a, b := newShardedNode(t, r.Addr, mode), newShardedNode(t, r.Addr, mode)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
			t.Cleanup(func() { _ = rdb.Close() })
			em := emitter.New(rdb, &emitter.Options{Sharded: true, SubscriptionMode: mode})
			ctx := timeout(t, 30*time.Second)

			a1, a1id := a.connect(t, "r1")
			a2, _ := a.connect(t, "r2")
			b1, _ := b.connect(t, "r1", "r2")
			b2, b2id := b.connect(t)
			adm := b.connectAdmin(t, "r1")
			all := []*eiotest.Conn{a1, a2, b1, b2}
			if len(b2id) != 24 {
				t.Fatalf("socket id %q: want the 24 characters of Go socket ids", b2id)
			}

			step := func(name string, fn func()) {
				t.Helper()
				fn()
				settleAll(t, em, all, adm)
				_ = name
			}
			step("to all", func() {
				if err := em.Emit(ctx, "ev", "all", 1); err != nil {
					t.Fatal(err)
				}
				for _, c := range all {
					expectEvent(t, c, "ev", "all", 1)
				}
			})
			step("one room", func() {
				if err := em.To("r1").Emit(ctx, "ev", "r1"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, a1, "ev", "r1")
				expectEvent(t, b1, "ev", "r1")
			})
			step("two rooms, once per socket", func() {
				if err := em.To("r1", "r2").Emit(ctx, "ev", "r1+r2"); err != nil {
					t.Fatal(err)
				}
				for _, c := range []*eiotest.Conn{a1, a2, b1} {
					expectEvent(t, c, "ev", "r1+r2")
				}
			})
			step("except", func() {
				if err := em.Except("r2").Emit(ctx, "ev", "not r2"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, a1, "ev", "not r2")
				expectEvent(t, b2, "ev", "not r2")
			})
			step("a socket id", func() {
				if err := em.To(b2id).Emit(ctx, "ev", "b2"); err != nil {
					t.Fatal(err)
				}
				if err := em.To(a1id).Emit(ctx, "ev", "a1"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, b2, "ev", "b2")
				expectEvent(t, a1, "ev", "a1")
			})
			step("another namespace", func() {
				if err := em.Of("admin").To("r1").Emit(ctx, "ev", "admin r1"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, adm, "ev", "admin r1")
			})
			step("binary and dates", func() {
				when := time.UnixMilli(1700000000123).UTC()
				if err := em.To("r2").Volatile().Emit(ctx, "bin", []byte{1, 2, 3}, map[string]any{"n": []byte{4}, "at": when}); err != nil {
					t.Fatal(err)
				}
				for _, c := range []*eiotest.Conn{a2, b1} {
					p := expectEvent(t, c, "bin")
					if p.Type != eiotest.TypeBinaryEvent || len(p.Attachments) != 2 || !bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) ||
						!strings.Contains(string(p.Data), `"2023-11-14T22:13:20.123Z"`) {
						t.Fatalf("binary event: type %d data %s attachments %v", p.Type, p.Data, p.Attachments)
					}
				}
			})
			step("socketsJoin then emit to the joined room", func() {
				if err := em.In("r2").Except(b2id).SocketsJoin(ctx, "joined"); err != nil {
					t.Fatal(err)
				}
				// The join reached both servers once the marker sent after it did.
				settleAll(t, em, all, adm)
				waitRoomSubscribed(t, mode, "joined", a.sharded, b.sharded)
				if err := em.To("joined").Emit(ctx, "ev", "joined"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, a2, "ev", "joined")
				expectEvent(t, b1, "ev", "joined")
			})
			step("socketsLeave", func() {
				if err := em.In("r1").SocketsLeave(ctx, "joined"); err != nil {
					t.Fatal(err)
				}
				settleAll(t, em, all, adm)
				if err := em.To("joined").Emit(ctx, "ev", "still joined"); err != nil {
					t.Fatal(err)
				}
				expectEvent(t, a2, "ev", "still joined")
			})
			step("serverSideEmit", func() {
				if err := em.ServerSideEmit(ctx, "srv:hello", "x", 1.5, map[string]any{"k": []any{true}}); err != nil {
					t.Fatal(err)
				}
				if err := em.Of("/admin").ServerSideEmit(ctx, "srv:hello", "admin"); err != nil {
					t.Fatal(err)
				}
				// Each namespace has its own subscription, so the two may arrive in
				// either order.
				for _, n := range []*shardNode{a, b} {
					var got []string
					for range 2 {
						select {
						case args := <-n.serverSide:
							j, _ := json.Marshal(args)
							got = append(got, string(j))
						case <-ctx.Done():
							t.Fatal("no server-side event")
						}
					}
					slices.Sort(got)
					if want := []string{`["/","x",1.5,{"k":[true]}]`, `["/admin","admin"]`}; !slices.Equal(got, want) {
						t.Errorf("server-side args %v, want %v", got, want)
					}
				}
			})
			// disconnectSockets(false) keeps the connection (the /admin socket on
			// another connection is untouched); (true) closes it.
			if err := em.In("r2").DisconnectSockets(ctx, false); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*eiotest.Conn{a2, b1} {
				p, err := c.Next(timeout(t, 5*time.Second))
				if err != nil || p.Type != eiotest.TypeDisconnect {
					t.Fatalf("want a disconnect packet, got %+v, %v", p, err)
				}
			}
			settleAll(t, em, []*eiotest.Conn{a1, b2}, adm)
			if err := em.To(a1id).DisconnectSockets(ctx, true); err != nil {
				t.Fatal(err)
			}
			select {
			case <-a1.Done():
			case <-ctx.Done():
				t.Fatal("disconnectSockets(true) did not close the connection")
			}
			if got := a.builder.Stats().Malformed + b.builder.Stats().Malformed; got != 0 {
				t.Errorf("%d malformed messages", got)
			}
		})
	}
}

// waitRoomSubscribed waits until, in the dynamic modes, every adapter that has
// room asked to subscribe to its channel and Redis counts the subscriptions.
func waitRoomSubscribed(t *testing.T, mode wire.SubscriptionMode, room string, adapters ...*redisadapter.Adapter) {
	t.Helper()
	if mode == wire.SubscriptionStatic {
		return
	}
	testwait.For(t, 5*time.Second, "room channel subscriptions", func() bool {
		for _, a := range adapters {
			if _, ok := a.Rooms().Load(socket.Room(room)); ok && !slices.Contains(a.RoomChannels(), "socket.io#/#"+room+"#") {
				return false
			}
		}
		return true
	})
}

// TestShardedRoomChannels: in dynamic mode a server subscribes to the channel of
// each room it has (its sockets' own rooms too: Go socket ids are not 20
// characters long) and leaves it when the room goes; in static mode, to none.
func TestShardedRoomChannels(t *testing.T) {
	r := startRedis(t)
	dyn := newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	static := newShardedNode(t, r.Addr, wire.SubscriptionStatic)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := timeout(t, 10*time.Second)

	c, sid := dyn.connect(t, "task:1", "user:7")
	_, _ = static.connect(t, "task:1")
	want := []string{"socket.io#/#" + sid + "#", "socket.io#/#task:1#", "socket.io#/#user:7#"}
	shardChannels := func() []string {
		list, err := rdb.PubSubShardChannels(ctx, "socket.io#/#*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(list)
		return list
	}
	testwait.For(t, 5*time.Second, "room channels of the dynamic server", func() bool {
		got := shardChannels()
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	})
	if got := static.sharded.RoomChannels(); len(got) != 0 {
		t.Errorf("static server subscribed to %q", got)
	}
	c.Close()
	testwait.For(t, 5*time.Second, "room channels to go with the socket", func() bool {
		for _, ch := range shardChannels() {
			if strings.Contains(ch, "task:1") || strings.Contains(ch, "user:7") || strings.Contains(ch, sid) {
				return false
			}
		}
		return true
	})
}

// TestShardedRequests: fetchSockets, serverSideEmit with acknowledgements and
// broadcasts with acknowledgements across two sharded servers.
func TestShardedRequests(t *testing.T) {
	r := startRedis(t)
	a, b := newShardedNode(t, r.Addr, wire.SubscriptionDynamic), newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	_, aid := a.connect(t, "room")
	bc, bid := b.connect(t, "room")

	fetched := make(chan []string, 1)
	a.io.In("room").FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
		if err != nil {
			t.Error(err)
		}
		var ids []string
		for _, s := range sockets {
			ids = append(ids, string(s.Id()))
		}
		fetched <- ids
	})
	var ids []string
	select {
	case ids = <-fetched:
	case <-time.After(5 * time.Second):
		t.Fatal("fetchSockets did not answer")
	}
	slices.Sort(ids)
	want := []string{aid, bid}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("fetchSockets: %q, want %q", ids, want)
	}

	_ = b.io.Sockets().On("srv:ack", func(args ...any) {
		if ack, ok := args[len(args)-1].(socket.Ack); ok {
			ack([]any{"from b", args[0]}, nil)
		}
	})
	got := make(chan []any, 1)
	if err := a.io.Sockets().ServerSideEmit("srv:ack", 7, socket.Ack(func(answers []any, err error) {
		if err != nil {
			t.Error(err)
		}
		got <- answers
	})); err != nil {
		t.Fatal(err)
	}
	select {
	case answers := <-got:
		if j, _ := json.Marshal(answers); string(j) != `["from b"]` {
			t.Fatalf("serverSideEmit answers %s", j)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no serverSideEmit answer")
	}

	// A broadcast with acknowledgements reaches the client of the other server,
	// whose answer comes back to the sender.
	acks := make(chan []any, 1)
	a.io.To("room").Timeout(3*time.Second).EmitWithAck("question", 1)(func(answers []any, err error) { acks <- answers })
	p := expectEvent(t, bc, "question", 1)
	if p.ID == nil {
		t.Fatal("the question has no ack id")
	}
	if err := bc.SendRaw(fmt.Sprintf(`43%d["answer from b"]`, *p.ID)); err != nil {
		t.Fatal(err)
	}
	select {
	case answers := <-acks:
		// The client of a does not answer, so the timeout ends the wait with b's.
		if j, _ := json.Marshal(answers); !strings.Contains(string(j), "answer from b") {
			t.Fatalf("acknowledgements %s", j)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgements")
	}
}

// TestShardedSurvivesRedisRestart: after Redis restarts (empty), every server
// subscribes again, room channels included, and events flow as before.
func TestShardedSurvivesRedisRestart(t *testing.T) {
	r := startRedis(t)
	resubscribed := make(chan string, 16)
	a := newShardedNode(t, r.Addr, wire.SubscriptionDynamic, func(nsp string) { resubscribed <- nsp })
	b := newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	a1, _ := a.connect(t, "r1")
	b1, _ := b.connect(t, "r1")
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	em := emitter.New(rdb, &emitter.Options{Sharded: true, SubscriptionMode: emitter.SubscriptionDynamic})

	before := a.builder.Stats().Subscriptions + b.builder.Stats().Subscriptions
	r.Restart()
	// Each server subscribes again to its main and response channels and to its
	// room channels (r1 and its socket's own room): at least 4 confirmations each.
	testwait.For(t, 15*time.Second, "resubscription after the restart", func() bool {
		return a.builder.Stats().Subscriptions+b.builder.Stats().Subscriptions >= before+8
	})
	expectResubscribed(t, resubscribed, "/")
	ctx := timeout(t, 10*time.Second)
	if err := em.To("r1").Emit(ctx, "after", "restart"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, a1, "after", "restart")
	expectEvent(t, b1, "after", "restart")
	if err := em.Emit(ctx, "all", 2); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, a1, "all", 2)
	expectEvent(t, b1, "all", 2)
	// Server to server too.
	if err := a.io.To("r1").Emit("from a", 3); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, a1, "from a", 3)
	expectEvent(t, b1, "from a", 3)
}

// TestShardedBadMessages: garbage on the channels a sharded server reads is
// counted and dropped, and the messages after it are delivered.
func TestShardedBadMessages(t *testing.T) {
	r := startRedis(t)
	a := newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	c, _ := a.connect(t, "r1")
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := timeout(t, 10*time.Second)
	waitRoomSubscribed(t, wire.SubscriptionDynamic, "r1", a.sharded)
	bad := []string{"", "{", "\xc1", `{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2,"data":"no"},"opts":{}}}`,
		`{"type":9,"uid":"x","nsp":"/","data":{"packet":[]}}`, `{"type":3,"uid":"x"}`, "\x93\xa1a\xa1b\xa1c"}
	for _, channel := range []string{"socket.io#/#", "socket.io#/#r1#", "socket.io#/#" + a.sharded.UID() + "#"} {
		for _, msg := range bad {
			if err := rdb.SPublish(ctx, channel, msg).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	em := emitter.New(rdb, &emitter.Options{Sharded: true, SubscriptionMode: emitter.SubscriptionDynamic})
	if err := em.To("r1").Emit(ctx, "good", 1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "good", 1)
	if err := em.Emit(ctx, "good", 2); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "good", 2)
	if got, want := a.builder.Stats().Malformed, uint64(3*len(bad)); got != want {
		t.Errorf("malformed = %d, want %d", got, want)
	}
	// Messages for another namespace or from this server itself are ignored.
	if st := a.builder.Stats(); st.Panics != 0 {
		t.Errorf("%d panics", st.Panics)
	}
}

// TestShardedAwaitRooms: in the dynamic mode, an emit to a room sent right after
// AwaitRooms returned for it reaches the socket that joined it, every time (a
// join alone only asks for the subscription); leaving releases a wait.
func TestShardedAwaitRooms(t *testing.T) {
	r := startRedis(t)
	n := newShardedNode(t, r.Addr, wire.SubscriptionDynamic)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	em := emitter.New(rdb, &emitter.Options{Sharded: true, SubscriptionMode: emitter.SubscriptionDynamic})
	c, sid := n.connect(t)
	s, ok := n.io.Sockets().Sockets().Load(socket.SocketId(sid))
	if !ok {
		t.Fatal("no server socket")
	}
	ctx := timeout(t, 20*time.Second)
	const rounds = 200
	for i := range rounds {
		room := socket.Room(fmt.Sprintf("task:%d", i))
		s.Join(room)
		if err := n.sharded.AwaitRooms(ctx, room); err != nil {
			t.Fatal(err)
		}
		if err := em.To(string(room)).Emit(ctx, "hello", i); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, c, "hello", i)
		s.Leave(room)
	}
	// A room that went is not waited for, nor one nobody joined.
	if err := n.sharded.AwaitRooms(ctx, "task:0", "nobody"); err != nil {
		t.Fatal(err)
	}
	// Nor in the static mode, where one subscription carries every room.
	static := newShardedNode(t, r.Addr, wire.SubscriptionStatic)
	if err := static.sharded.AwaitRooms(ctx, "task:1"); err != nil {
		t.Fatal(err)
	}
}
