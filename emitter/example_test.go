package emitter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/internal/msgpacktest"
	"github.com/taskwire/taskwire/emitter/wire"
)

// printer is an emitter.Publisher that prints what it would publish instead of
// sending it to Redis: the channel, then the message (decoded when it is a
// msgpack broadcast, as text when it is a JSON request). In a real program the
// publisher is a go-redis client (*redis.Client, *redis.ClusterClient...).
type printer struct{ hex bool }

func (p printer) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	b := message.([]byte)
	switch {
	case p.hex:
		fmt.Printf("PUBLISH %s\n%x\n", channel, b)
	case len(b) > 0 && b[0] == '{':
		fmt.Printf("PUBLISH %s %s\n", channel, b)
	default:
		m, err := msgpacktest.ReadBroadcast(b)
		if err != nil {
			fmt.Println("unreadable:", err)
			break
		}
		fmt.Printf("PUBLISH %s\n  from %s to nsp %s: %v\n  rooms %q except %q volatile %v compress %v\n",
			channel, m.UID, m.Nsp, m.Data, m.Rooms, m.Except, m.Volatile(), m.Compress())
	}
	cmd := redis.NewIntCmd(ctx)
	cmd.SetVal(1)
	return cmd
}

// SPublish prints a sharded message: the channel, then the message as JSON (or,
// when it holds binary, decoded from msgpack).
func (p printer) SPublish(ctx context.Context, channel string, message any) *redis.IntCmd {
	b := message.([]byte)
	if len(b) > 0 && b[0] == '{' {
		fmt.Printf("SPUBLISH %s %s\n", channel, b)
	} else if v, err := msgpacktest.Read(b); err == nil {
		m := v.(map[string]any)
		data := m["data"].(map[string]any)["packet"].(map[string]any)["data"]
		fmt.Printf("SPUBLISH %s (msgpack) type %v from %s to nsp %s: %v\n",
			channel, wire.MessageType(m["type"].(int64)), m["uid"], m["nsp"], data)
	}
	cmd := redis.NewIntCmd(ctx)
	cmd.SetVal(1)
	return cmd
}

func ExampleNew() {
	// With Redis: rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	// and emitter.New(rdb, nil).
	em := emitter.New(printer{hex: true}, nil)
	// Prints the 64 bytes Node's @socket.io/redis-emitter publishes for
	// emit("hello", "world", 1).
	if err := em.Emit(context.Background(), "hello", "world", 1); err != nil {
		fmt.Println(err)
	}
	// Output:
	// PUBLISH socket.io#/#
	// 93a7656d697474657283a47479706502a46461746193a568656c6c6fa5776f726c6401a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490
}

func ExampleEmitter_To() {
	em := emitter.New(printer{}, nil)
	ctx := context.Background()
	// One room: published on that room's own channel.
	_ = em.To("task:42").Emit(ctx, "task:progress", map[string]any{"taskId": "42", "percent": 50})
	// Several rooms: on the namespace channel; a socket in both gets it once.
	_ = em.To("user:1", "user:2").Emit(ctx, "notice", "maintenance at noon")
	// Output:
	// PUBLISH socket.io#/#task:42#
	//   from emitter to nsp /: [task:progress map[percent:50 taskId:42]]
	//   rooms ["task:42"] except [] volatile false compress true
	// PUBLISH socket.io#/#
	//   from emitter to nsp /: [notice maintenance at noon]
	//   rooms ["user:1" "user:2"] except [] volatile false compress true
}

func ExampleEmitter_Of() {
	em := emitter.New(printer{}, &emitter.Options{Key: "myapp"})
	_ = em.Of("admin").Emit(context.Background(), "stats", 3)
	// Output:
	// PUBLISH myapp#/admin#
	//   from emitter to nsp /admin: [stats 3]
	//   rooms [] except [] volatile false compress true
}

func ExampleBroadcastOperator_Except() {
	em := emitter.New(printer{}, nil)
	_ = em.To("room1").Except("room2").Volatile().Compress(false).Emit(context.Background(), "tick")
	// Output:
	// PUBLISH socket.io#/#room1#
	//   from emitter to nsp /: [tick]
	//   rooms ["room1"] except ["room2"] volatile true compress false
}

func ExampleBroadcastOperator_Encode() {
	em := emitter.New(nil, nil) // Encode never publishes
	m, err := em.To("room1").Encode("hello", []byte{1, 2, 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A caller can now publish m.Payload on m.Channel together with other commands,
	// for example in a MULTI that also writes the state the event describes.
	fmt.Println(m.Channel)
	fmt.Printf("%x\n", m.Payload)
	// Output:
	// socket.io#/#room1#
	// 93a7656d697474657283a47479706502a46461746192a568656c6c6fc403010203a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490
}

func ExampleEmitter_SocketsJoin() {
	em := emitter.New(printer{}, nil)
	ctx := context.Background()
	// Every socket in user:7 (on any server) also joins task:42.
	_ = em.In("user:7").SocketsJoin(ctx, "task:42")
	_ = em.SocketsLeave(ctx, "lobby")
	// Output:
	// PUBLISH socket.io-request#/# {"type":2,"opts":{"rooms":["user:7"],"except":[]},"rooms":["task:42"]}
	// PUBLISH socket.io-request#/# {"type":3,"opts":{"rooms":[],"except":[]},"rooms":["lobby"]}
}

func ExampleEmitter_DisconnectSockets() {
	em := emitter.New(printer{}, nil)
	_ = em.To("user:7").DisconnectSockets(context.Background(), true)
	// Output:
	// PUBLISH socket.io-request#/# {"type":4,"opts":{"rooms":["user:7"],"except":[]},"close":true}
}

func ExampleEmitter_ServerSideEmit() {
	em := emitter.New(printer{}, nil)
	// Received by io.on("cache:invalidate", ...) handlers on every server.
	_ = em.ServerSideEmit(context.Background(), "cache:invalidate", "users", 7)
	// Output:
	// PUBLISH socket.io-request#/# {"uid":"emitter","type":6,"data":["cache:invalidate","users",7]}
}

func ExampleEmitter_Emit_struct() {
	// Structs are written with the names of their json tags, in field order, the
	// way a JavaScript client would see them; []byte arrives as binary.
	type progress struct {
		TaskID  string  `json:"taskId"`
		Percent float64 `json:"percent"`
		Stage   string  `json:"stage,omitempty"`
	}
	em := emitter.New(printer{hex: true}, nil)
	_ = em.To("task:42").Emit(context.Background(), "task:progress", progress{TaskID: "42", Percent: 12.5})
	// Output:
	// PUBLISH socket.io#/#task:42#
	// 93a7656d697474657283a47479706502a46461746192ad7461736b3a70726f677265737382a67461736b4964a23432a770657263656e74cb4029000000000000a36e7370a12f83a5726f6f6d7391a77461736b3a3432a5666c61677380a665786365707490
}

func ExampleEmitter_Emit_reserved() {
	em := emitter.New(printer{}, nil)
	err := em.Emit(context.Background(), "disconnect")
	fmt.Println(err)
	// Output:
	// emitter: "disconnect" is a reserved event name
}

func ExampleEmitter_WithPublisher() {
	// With Redis, pass a transaction to publish an event in the same MULTI as the
	// state it describes:
	//
	//	pipe := rdb.TxPipeline()
	//	pipe.HSet(ctx, "task:42", "percent", 50)
	//	_ = em.WithPublisher(pipe).To("task:42").Emit(ctx, "task:progress", p)
	//	_, err := pipe.Exec(ctx)
	em := emitter.New(nil, nil)
	tx := em.WithPublisher(printer{})
	_ = tx.To("task:1").Emit(context.Background(), "task:cancelled")
	// Output:
	// PUBLISH socket.io#/#task:1#
	//   from emitter to nsp /: [task:cancelled]
	//   rooms ["task:1"] except [] volatile false compress true
}

func ExampleEmitter_Batch() {
	// With Redis (any go-redis client), the messages go out in one pipeline: one
	// round trip for the whole batch.
	em := emitter.New(printer{}, nil)
	ctx := context.Background()
	progress := map[string]int{"task:1": 10, "task:2": 55}
	err := em.Batch(ctx, func(b *emitter.Emitter) error {
		for _, room := range []string{"task:1", "task:2"} {
			// Queued, not sent: Emit only reports encoding errors here.
			if err := b.To(room).Emit(ctx, "task:progress", map[string]any{"percent": progress[room]}); err != nil {
				return err
			}
		}
		return nil
	})
	// err is nil, or a *BatchError that lists each message Redis did not take.
	fmt.Println("batch:", err)
	// Output:
	// PUBLISH socket.io#/#task:1#
	//   from emitter to nsp /: [task:progress map[percent:10]]
	//   rooms ["task:1"] except [] volatile false compress true
	// PUBLISH socket.io#/#task:2#
	//   from emitter to nsp /: [task:progress map[percent:55]]
	//   rooms ["task:2"] except [] volatile false compress true
	// batch: <nil>
}

func ExampleOptions_sharded() {
	// For servers that use Node's createShardedAdapter (or taskwire's server with
	// SOCKETIO_ADAPTER=sharded): SPUBLISH of the adapter's ClusterMessage, JSON
	// unless the data holds binary. By default everything goes to the namespace's
	// main channel, which every server reads whatever its subscription mode.
	em := emitter.New(printer{}, &emitter.Options{Sharded: true})
	ctx := context.Background()
	_ = em.To("task:42").Emit(ctx, "task:progress", map[string]any{"percent": 50})
	_ = em.In("user:7").SocketsJoin(ctx, "task:42")
	_ = em.ServerSideEmit(ctx, "cache:invalidate", "users")
	_ = em.Emit(ctx, "file", []byte{1, 2})

	// When every server runs subscriptionMode "dynamic", a broadcast to one room
	// can go to that room's channel: only servers that have the room get it.
	dyn := emitter.New(printer{}, &emitter.Options{Sharded: true, SubscriptionMode: emitter.SubscriptionDynamic})
	_ = dyn.To("task:42").Emit(ctx, "task:progress", map[string]any{"percent": 60})
	// Output:
	// SPUBLISH socket.io#/# {"type":3,"data":{"packet":{"type":2,"data":["task:progress",{"percent":50}]},"opts":{"rooms":["task:42"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}
	// SPUBLISH socket.io#/# {"type":4,"data":{"opts":{"rooms":["user:7"],"except":[],"flags":{}},"rooms":["task:42"]},"uid":"emitter","nsp":"/"}
	// SPUBLISH socket.io#/# {"type":9,"data":{"packet":["cache:invalidate","users"]},"uid":"emitter","nsp":"/"}
	// SPUBLISH socket.io#/# (msgpack) type BROADCAST from emitter to nsp /: [file [1 2]]
	// SPUBLISH socket.io#/#task:42# {"type":3,"data":{"packet":{"type":2,"data":["task:progress",{"percent":60}]},"opts":{"rooms":["task:42"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}
}

func ExampleEmitter_Emit_values() {
	// What a client receives is what encoding/json shows for the arguments, plus
	// binary for []byte and dates for time.Time: json tags, MarshalJSON,
	// MarshalText and json.RawMessage all apply, at any depth.
	type file struct {
		Name    string          `json:"name"`
		Data    []byte          `json:"data"`
		Meta    json.RawMessage `json:"meta"`
		Created time.Time       `json:"created"`
		Secret  string          `json:"-"`
	}
	em := emitter.New(printer{}, &emitter.Options{Sharded: true})
	_ = em.ServerSideEmit(context.Background(), "upload", file{
		Name: "a.csv", Meta: json.RawMessage(`{"rows": 3}`),
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC), Secret: "never sent",
	})
	// Output:
	// SPUBLISH socket.io#/# {"type":9,"data":{"packet":["upload",{"name":"a.csv","data":null,"meta":{"rows":3},"created":"2025-01-02T03:04:05.006Z"}]},"uid":"emitter","nsp":"/"}
}
