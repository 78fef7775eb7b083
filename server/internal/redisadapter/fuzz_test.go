package redisadapter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

// The fuzz targets feed arbitrary payloads to the adapters exactly as their
// subscription loop does (handle), on every channel each one reads, and require
// that nothing panics (a recovered panic is counted: the count must stay 0) and
// that every message is accounted for. Redis is unreachable: what the handlers
// publish (answers to requests) fails at once and is counted as a publish error.

// fuzzRoom is a room that exists on the fuzzed adapters, so that messages on its
// channel are decoded (those of rooms a server lacks are dropped unread).
const fuzzRoom = "room-1"

// Request ids of requests of ours that wait for answers, so that fuzzed answers
// can match them.
var fuzzRequests = []struct {
	id   string
	kind wire.RequestType
}{{"req-fetch", wire.RequestRemoteFetch}, {"req-sse", wire.RequestServerSideEmit}, {"req-bcast", wire.RequestBroadcast}}

func offlineClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:       "redis.invalid:6379",
		MaxRetries: -1,
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("fuzz: offline")
		},
	})
}

func fuzzBuilder(tb testing.TB, sharded bool) (*Builder, socket.Adapter) {
	tb.Helper()
	client := offlineClient()
	b, err := New(Config{
		Client: client, Sharded: sharded, RequestTimeout: 20 * time.Millisecond, PublishTimeout: 20 * time.Millisecond,
		MaxMessageBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetAdapter(b)
	io := socket.NewServer(nil, opts)
	a := io.Sockets().Adapter()
	// A room with a socket id that has no socket: its channel is read, and
	// deliveries find nobody.
	a.AddAll("no-such-socket", types.NewSet[socket.Room](fuzzRoom))
	return b, a
}

var (
	classicOnce, shardedOnce sync.Once
	classicB, shardedB       *Builder
	classicA                 *Adapter
	shardedA                 *Adapter
)

func classicAdapter(tb testing.TB) (*Builder, *Adapter) {
	classicOnce.Do(func() {
		b, a := fuzzBuilder(tb, false)
		classicB, classicA = b, a.(*Adapter)
	})
	return classicB, classicA
}

func shardedAdapter(tb testing.TB) (*Builder, *Adapter) {
	shardedOnce.Do(func() {
		b, a := fuzzBuilder(tb, true)
		shardedB, shardedA = b, a.(*Adapter)
	})
	return shardedB, shardedA
}

// accounted reports whether the counters moved as one handled message must move
// them: received by one, and at least one outcome counted.
func accounted(before, after Stats) bool {
	outcome := func(s Stats) uint64 {
		return s.Delivered + s.Requests + s.Responses + s.Ignored + s.Malformed + s.Oversized
	}
	return after.Received == before.Received+1 && outcome(after) > outcome(before)
}

func noop(...any) {}

// registerPending makes the fuzzed answers find requests of ours to complete.
func registerPending(register func(string, *pending, time.Duration)) {
	for _, r := range fuzzRequests {
		register(r.id, &pending{
			kind: r.kind, expected: 2, keep: r.kind == wire.RequestBroadcast,
			onSockets:   func([]socket.SocketDetails, error) {},
			onAck:       func([]any, error) {},
			clientCount: func(uint64) {},
		}, time.Minute)
	}
}

func classicSeeds(f *testing.F) {
	bc := func(o *wire.Opts) []byte {
		b, err := wire.EncodeBroadcast("other-server", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"ev", "x", 1.5, []byte{1, 2}}}, o)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	id := uint64(7)
	bcAck, _ := wire.EncodeBroadcast("other-server", &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"ev"}, ID: &id},
		&wire.Opts{Flags: wire.Flags{}.WithTimeout(10)})
	f.Add(uint8(0), bc(&wire.Opts{}))
	f.Add(uint8(1), bc(&wire.Opts{Rooms: []string{fuzzRoom}, Except: []string{"x"}, Flags: wire.Flags{}.WithVolatile(true)}))
	f.Add(uint8(0), bcAck)
	for _, r := range []*wire.Request{
		{UID: "other", RequestID: "r1", Type: wire.RequestSockets, Rooms: []string{fuzzRoom}},
		{UID: "other", RequestID: "r2", Type: wire.RequestAllRooms},
		{UID: "other", Type: wire.RequestRemoteJoin, Opts: &wire.Opts{Rooms: []string{fuzzRoom}}, Rooms: []string{"new"}},
		{UID: "other", Type: wire.RequestRemoteLeave, Opts: &wire.Opts{Rooms: []string{fuzzRoom}}, Rooms: []string{"new"}},
		{UID: "other", Type: wire.RequestRemoteDisconnect, Opts: &wire.Opts{Rooms: []string{"nobody"}}, Close: true},
		{UID: "other", RequestID: "r3", Type: wire.RequestRemoteFetch, Opts: &wire.Opts{Rooms: []string{fuzzRoom}}},
		{UID: "other", RequestID: "r4", Type: wire.RequestServerSideEmit, Data: []any{"hello", 1}},
		{UID: "other", RequestID: "r5", Type: wire.RequestBroadcast, Opts: &wire.Opts{Rooms: []string{fuzzRoom}},
			Packet: &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"ev"}}},
	} {
		b, err := wire.EncodeRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(2), b)
	}
	for _, r := range []*wire.Response{
		{Type: wire.RequestSockets, RequestID: "r1", SocketIDs: []string{"a"}},
		{Type: wire.RequestAllRooms, RequestID: "r2", Rooms: []string{"a"}},
		{Type: wire.RequestRemoteFetch, RequestID: "req-fetch", Sockets: []wire.SocketInfo{{ID: "s1", Rooms: []string{"a"}}}},
		{Type: wire.RequestServerSideEmit, RequestID: "req-sse", Data: "pong"},
		{Type: wire.RequestBroadcastClientCount, RequestID: "req-bcast", ClientCount: 3},
		{Type: wire.RequestBroadcastAck, RequestID: "req-bcast", Packet: []any{"ok"}},
	} {
		b, err := wire.EncodeResponse(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(3), b)
		f.Add(uint8(4), b)
	}
	for _, g := range [][]byte{nil, []byte("not msgpack"), {0x93, 0xa3, 'u', 'i', 'd'}, {0xc1}, []byte(`{"type":`), []byte(`{"type":"3"}`)} {
		for ch := range uint8(5) {
			f.Add(ch, g)
		}
	}
}

// FuzzClassicChannels: the classic adapter (PUBLISH/PSUBSCRIBE) and every
// channel it reads: the namespace's broadcast channel, a room's broadcast
// channel, the request channel, the shared response channel and its own.
func FuzzClassicChannels(f *testing.F) {
	classicSeeds(f)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		b, a := classicAdapter(t)
		registerPending(a.reqs.register)
		ch := a.bus.(*classicBus).ch
		var m *redis.Message
		switch which % 5 {
		case 0:
			m = &redis.Message{Pattern: ch.BroadcastPattern(), Channel: ch.Broadcast(nil)}
		case 1:
			m = &redis.Message{Pattern: ch.BroadcastPattern(), Channel: ch.Broadcast([]string{fuzzRoom})}
		case 2:
			m = &redis.Message{Channel: ch.Request()}
		case 3:
			m = &redis.Message{Channel: ch.Response()}
		default:
			m = &redis.Message{Channel: ch.SpecificResponse(a.uid)}
		}
		m.Payload = string(payload)
		before := b.Stats()
		a.handle(m)
		after := b.Stats()
		if after.Panics != 0 {
			t.Fatalf("a handler panicked on % x (channel %s)", payload, m.Channel)
		}
		if !accounted(before, after) {
			t.Fatalf("message on %s not accounted for: before %+v, after %+v", m.Channel, before, after)
		}
	})
}

func shardedSeeds(f *testing.F) {
	add := func(ch uint8, m *wire.ClusterMessage) {
		b, err := wire.EncodeClusterMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ch, b)
	}
	pkt := &wire.Packet{Type: wire.PacketEvent, Nsp: "/", Data: []any{"ev", "x", []byte{1}}}
	add(0, &wire.ClusterMessage{Type: wire.MessageBroadcast, UID: "other", Nsp: "/", Packet: pkt, Opts: &wire.Opts{}})
	add(1, &wire.ClusterMessage{Type: wire.MessageBroadcast, UID: "other", Nsp: "/", Packet: pkt, Opts: &wire.Opts{Rooms: []string{fuzzRoom}}})
	add(0, &wire.ClusterMessage{Type: wire.MessageSocketsJoin, UID: "other", Nsp: "/", Opts: &wire.Opts{Rooms: []string{fuzzRoom}}, Rooms: []string{"b"}})
	add(0, &wire.ClusterMessage{Type: wire.MessageDisconnectSockets, UID: "other", Nsp: "/", Opts: &wire.Opts{}, Close: true})
	add(0, &wire.ClusterMessage{Type: wire.MessageFetchSockets, UID: "other", Nsp: "/", RequestID: "q1", Opts: &wire.Opts{}})
	add(0, &wire.ClusterMessage{Type: wire.MessageServerSideEmit, UID: "other", Nsp: "/", RequestID: "q2", Args: []any{"hi", 1}})
	add(0, &wire.ClusterMessage{Type: wire.MessageHeartbeat, UID: "other", Nsp: "/"})
	add(2, &wire.ClusterMessage{Type: wire.MessageFetchSocketsResponse, UID: "other", Nsp: "/", RequestID: "req-fetch",
		Sockets: []wire.SocketInfo{{ID: "s", Rooms: []string{"a"}}}})
	add(2, &wire.ClusterMessage{Type: wire.MessageServerSideEmitResponse, UID: "other", Nsp: "/", RequestID: "req-sse", Value: "pong"})
	add(2, &wire.ClusterMessage{Type: wire.MessageBroadcastClientCount, UID: "other", Nsp: "/", RequestID: "req-bcast", ClientCount: 2})
	add(2, &wire.ClusterMessage{Type: wire.MessageBroadcastAck, UID: "other", Nsp: "/", RequestID: "req-bcast", Value: []any{"ok"}})
	for _, g := range [][]byte{nil, []byte("{"), []byte(`{"type":99}`), []byte(`{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2}}}`), {0x81, 0xa4, 't', 'y', 'p', 'e', 0x03}} {
		for ch := range uint8(3) {
			f.Add(ch, g)
		}
	}
}

// FuzzShardedChannels: the sharded adapter (SPUBLISH/SSUBSCRIBE) and every
// channel it reads: the namespace's main channel, a room's channel (dynamic
// mode) and its own response channel.
func FuzzShardedChannels(f *testing.F) {
	shardedSeeds(f)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		b, a := shardedAdapter(t)
		registerPending(a.reqs.register)
		channels := a.bus.(*shardedBus).ch
		var ch string
		switch which % 3 {
		case 0:
			ch = channels.Main()
		case 1:
			ch = channels.Room(fuzzRoom)
		default:
			ch = channels.Response(a.uid)
		}
		before := b.Stats()
		a.handle(&redis.Message{Channel: ch, Payload: string(payload)})
		after := b.Stats()
		if after.Panics != 0 {
			t.Fatalf("a handler panicked on % x (channel %s)", payload, ch)
		}
		if !accounted(before, after) {
			t.Fatalf("message on %s not accounted for: before %+v, after %+v", ch, before, after)
		}
	})
}
