package redisadapter

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io-go-parser/v2/parser"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
)

// bus is how an Adapter reaches the other servers of its namespace: the channels
// of one of Node's two formats and the Redis commands for them. classicBus
// (createAdapter) publishes with PUBLISH and reads with PSUBSCRIBE/SUBSCRIBE;
// shardedBus (createShardedAdapter) uses SPUBLISH and SSUBSCRIBE. The Adapter
// does everything else the same way in both: local delivery, requests waiting
// for answers, timeouts, counters.
type bus interface {
	// newUID returns an id for this server in the form the format's servers use.
	newUID() string
	// init sets up the channels of namespace nsp under key for the server uid.
	init(key, nsp, uid string)
	// subscribe opens the adapter's subscription connection on the namespace's
	// channels. The first of want is the channel that go-redis confirms first
	// again after a reconnection; the adapter is ready when every one of want
	// is confirmed.
	subscribe(ctx context.Context) (ps *redis.PubSub, want []string)
	// encode writes m in the bus's format and gives the channel to publish it on.
	encode(m *wire.ClusterMessage) (channel string, payload []byte, err error)
	// publish sends payload on channel.
	publish(ctx context.Context, channel string, payload []byte) error
	// countServers counts the servers subscribed to the namespace.
	countServers(ctx context.Context) (int64, error)
	// deliver handles one message read from the subscription (in place: it
	// must not keep payload).
	deliver(m *redis.Message, payload []byte)
	// stop ends what subscribe started besides the connection, before it closes.
	stop()
}

// subscribers reads the answer of PUBSUB NUMSUB or SHARDNUMSUB for channel.
func subscribers(cmd *redis.MapStringIntCmd, channel string) (int64, error) {
	res, err := cmd.Result()
	return res[channel], err
}

// start subscribes to the namespace's channels on a connection of its own and
// starts the goroutines that read them and run server-side emit handlers.
func (a *Adapter) start() {
	ctx, cancel := context.WithTimeout(context.Background(), a.b.cfg.RequestTimeout)
	defer cancel()
	ps, want := a.bus.subscribe(ctx)
	a.ps = ps
	go a.loop(want)
	go a.b.runServerSideEmits(a.sse, a.done)
}

// loop handles every message in the order Redis delivered it, on one goroutine:
// a join published before an event is applied before the event is delivered.
func (a *Adapter) loop(want []string) {
	defer close(a.loopDone)
	wanted := make(map[string]bool, len(want))
	for _, c := range want {
		wanted[c] = true
	}
	confirmed := map[string]bool{}
	receive(a.ps, a.done, func(m any) {
		switch m := m.(type) {
		case *redis.Subscription:
			// subscribe, psubscribe, ssubscribe; not their unsubscribe
			if !strings.HasSuffix(m.Kind, "subscribe") || strings.Contains(m.Kind, "unsubscribe") {
				return
			}
			a.b.stats.subscriptions.Add(1)
			if s, ok := a.bus.(*shardedBus); ok && m.Kind == "ssubscribe" {
				s.confirmed(m.Channel)
			}
			if wanted[m.Channel] && !confirmed[m.Channel] {
				confirmed[m.Channel] = true
				if len(confirmed) == len(wanted) {
					close(a.subscribed)
				}
			} else if m.Channel == want[0] {
				// go-redis subscribes again after a reconnection.
				a.resubscribed()
			}
		case *redis.Message:
			a.handle(m)
		}
	})
}

// resubscribed reports a subscription established again after a reconnection.
func (a *Adapter) resubscribed() {
	if fn := a.b.cfg.OnResubscribe; fn != nil {
		go fn(a.nspName)
	}
}

// handle checks the size of one message and hands it to the bus. Payloads are
// read in place: go-redis gives a string, and the decoders only read their input.
func (a *Adapter) handle(m *redis.Message) {
	a.b.stats.received.Add(1)
	if len(m.Payload) > a.b.cfg.MaxMessageBytes {
		a.b.stats.oversized.Add(1)
		a.b.log.emit(slog.LevelWarn, "oversized", "redisadapter: message too large, dropped",
			slog.String("channel", m.Channel), slog.Int("bytes", len(m.Payload)), slog.Int("limit", a.b.cfg.MaxMessageBytes))
		return
	}
	a.bus.deliver(m, unsafe.Slice(unsafe.StringData(m.Payload), len(m.Payload)))
}

// runServerSideEmits runs the server-side emit handlers queued on sse, one
// after the other, until done is closed.
func (b *Builder) runServerSideEmits(sse <-chan func(), done <-chan struct{}) {
	for {
		select {
		case fn := <-sse:
			b.safely("server-side emit", nil, fn)
		case <-done:
			return
		}
	}
}

// safely runs fn and turns a panic into a counted, logged error, so that one
// message cannot stop the ones after it.
func (b *Builder) safely(what string, payload []byte, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			b.stats.panics.Add(1)
			b.log.emit(slog.LevelError, "panic", "redisadapter: handler panicked",
				slog.String("what", what), slog.String("panic", fmt.Sprint(v)),
				slog.String("payload", prefixHex(payload)), slog.String("stack", string(debug.Stack())))
		}
	}()
	fn()
}

// malformed counts and logs a message that could not be decoded, read on
// channel (or of the kind channel names).
func (a *Adapter) malformed(channel string, err error, payload []byte) {
	a.b.stats.malformed.Add(1)
	a.b.log.emit(slog.LevelWarn, "malformed", "redisadapter: malformed message dropped",
		slog.String("namespace", a.nspName), slog.String("channel", channel),
		slog.String("error", err.Error()), slog.Int("bytes", len(payload)), slog.String("head", prefixHex(payload)))
}

func prefixHex(b []byte) string {
	if len(b) > 32 {
		return hex.EncodeToString(b[:32]) + "..."
	}
	return hex.EncodeToString(b)
}

// onServerSideEmit hands the arguments of another server's server-side emit to
// the namespace's listeners. Handlers run on a goroutine of their own, in order,
// so that a slow or blocking handler cannot hold up broadcasts.
func (a *Adapter) onServerSideEmit(args []any) {
	fn := func() { a.Nsp().OnServerSideEmit(args) }
	select {
	case a.sse <- fn:
	case <-a.done:
	}
}

// localSocketInfos describes the local sockets that opts selects, for an
// answer to a fetch.
func (a *Adapter) localSocketInfos(opts *wire.Opts) []wire.SocketInfo {
	var infos []wire.SocketInfo
	a.memory.FetchSockets(fromWireOpts(opts))(func(list []socket.SocketDetails, _ error) {
		infos = make([]wire.SocketInfo, 0, len(list))
		for _, s := range list {
			infos = append(infos, socketInfo(s))
		}
	})
	return infos
}

// onBroadcastWithAck delivers another server's broadcast with acknowledgements
// to the local sockets; count answers how many clients it reached, ack passes on
// each client's first value.
func (a *Adapter) onBroadcastWithAck(p *wire.Packet, opts *wire.Opts, count func(n int64), ack func(first any)) {
	a.memory.BroadcastWithAck(toParserPacket(p), fromWireOpts(opts),
		func(n uint64) { count(int64(n)) },
		func(answer []any, _ error) {
			var first any
			if len(answer) > 0 {
				first = answer[0]
			}
			ack(first)
		})
}

func toParserPacket(p *wire.Packet) *parser.Packet {
	var data any = p.Data
	if p.Data == nil {
		data = []any{} // the Socket.IO encoder and Socket.onevent expect an array
	}
	return &parser.Packet{Type: fromWireType(p.Type), Nsp: p.Nsp, Data: data, Id: p.ID}
}
