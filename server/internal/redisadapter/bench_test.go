package redisadapter

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter/decode"
	"github.com/taskwire/taskwire/server/internal/transport"
	"github.com/taskwire/taskwire/shared/redistest"
)

// progressArgs is the shape of a worker's task:progress event.
func progressArgs() []any {
	return []any{"task:progress", map[string]any{
		"taskId": "01JD5R3Q0S7X9ZK2M4N6P8B0CD", "seq": 42, "percent": 37.5, "done": 375000, "total": 1000000, "stage": "rows",
	}}
}

type benchCluster struct {
	io      *socket.Server
	adapter *Adapter
	client  *redis.Client
}

// newBenchServer starts a server with n websocket clients in room "room" that
// read and discard everything.
func newBenchServer(b *testing.B, n int) *benchCluster {
	b.Helper()
	transport.Install()
	r := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: r.Addr})
	bl, err := New(Config{Client: client})
	if err != nil {
		b.Fatal(err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetAdapter(bl)
	io := socket.NewServer(nil, opts)
	io.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		s.Join("room")
		next(nil)
	})
	srv := httptest.NewServer(transport.Handler(io.ServeHandler(nil)))
	b.Cleanup(func() {
		io.Close(nil)
		srv.Close()
		_ = bl.Close()
		_ = client.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	for range n {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if _, _, err := c.ReadMessage(); err != nil { // open
			b.Fatal(err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil { // connect reply
			b.Fatal(err)
		}
		go func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if len(msg) == 1 && msg[0] == '2' {
					_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
				}
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for io.Sockets().Sockets().Len() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sockets connected", io.Sockets().Sockets().Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return &benchCluster{io: io, adapter: io.Sockets().Adapter().(*Adapter), client: client}
}

// BenchmarkReceive measures what a server does for one broadcast read from
// Redis: decode, checks, and hand-off to every local socket in the room (the
// engine writes to the network on its own goroutines, not measured here).
func BenchmarkReceive(b *testing.B) {
	for _, n := range []int{0, 1, 100} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			c := newBenchServer(b, n)
			if n == 0 {
				// A room with no socket: decoded and matched, nothing to write.
				c.adapter.AddAll("not-a-socket", types.NewSet[socket.Room]("room"))
			}
			payload, err := wire.EncodeBroadcast("emitter", &wire.Packet{Type: wire.PacketEvent, Data: progressArgs(), Nsp: "/"},
				&wire.Opts{Rooms: []string{"room"}})
			if err != nil {
				b.Fatal(err)
			}
			m := &redis.Message{Channel: "socket.io#/#room#", Pattern: "socket.io#/#*", Payload: string(payload)}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c.adapter.handle(m)
			}
			b.StopTimer()
			if s := c.adapter.b.Stats(); s.Malformed != 0 || s.Delivered == 0 {
				b.Fatalf("stats %+v", s)
			}
		})
	}
}

// BenchmarkDecode is the wire decode alone.
func BenchmarkDecode(b *testing.B) {
	payload, _ := wire.EncodeBroadcast("emitter", &wire.Packet{Type: wire.PacketEvent, Data: progressArgs(), Nsp: "/"},
		&wire.Opts{Rooms: []string{"room"}})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode.Broadcast(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode is what an outgoing broadcast costs before Redis.
func BenchmarkEncode(b *testing.B) {
	c := newBenchServer(b, 0)
	opts := &socket.BroadcastOptions{Rooms: types.NewSet[socket.Room]("room"), Except: types.NewSet[socket.Room](), Flags: &socket.BroadcastFlags{}}
	b.ReportAllocs()
	for b.Loop() {
		p := &parser.Packet{Type: parser.EVENT, Data: progressArgs()}
		if _, _, err := c.adapter.encodeBroadcast(p, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast is a whole outgoing broadcast to a room with no local
// socket: encode and PUBLISH (one Redis round trip on loopback).
func BenchmarkBroadcast(b *testing.B) {
	c := newBenchServer(b, 0)
	_ = context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.io.To("room").Emit("task:progress", progressArgs()[1]); err != nil {
			b.Fatal(err)
		}
	}
}
