package emitter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/emitter/internal/msgpacktest"
	"github.com/taskwire/taskwire/emitter/internal/spec"
)

// Every go-redis client type is a Publisher.
var (
	_ emitter.Publisher = (*redis.Client)(nil)
	_ emitter.Publisher = (*redis.ClusterClient)(nil)
	_ emitter.Publisher = (*redis.Ring)(nil)
	_ emitter.Publisher = redis.UniversalClient(nil)
	_ emitter.Publisher = redis.Pipeliner(nil)
	_ emitter.Publisher = (*redis.Tx)(nil)
)

// target is what a decoded classic broadcast selects.
type target struct {
	rooms, except      []string
	volatile, compress bool
}

func decodeTarget(t *testing.T, m spec.Published) (string, target) {
	t.Helper()
	b, err := msgpacktest.ReadBroadcast(m.Payload)
	if err != nil {
		t.Fatalf("read %x: %v", m.Payload, err)
	}
	return b.Data[0].(string), target{b.Rooms, b.Except, b.Volatile(), b.Compress()}
}

// TestOperatorsDoNotChangeTheirParent derives operators from a shared parent in
// many goroutines at once, each emitting with its own chain, while the parent
// emits too: every message must carry exactly its own chain's target, and the
// parent's must stay Node's bytes for emit/room. Run with -race, it also shows
// that operators share nothing mutable.
func TestOperatorsDoNotChangeTheirParent(t *testing.T) {
	var want spec.Golden
	for _, g := range loadGolden(t) {
		if g.Name == "emit/room" {
			want = g
		}
	}
	var rec spec.Recorder
	em := emitter.New(&rec, nil)
	parent := em.To("room1")
	volatileParent := parent.Volatile()
	ctx := context.Background()

	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				own := fmt.Sprintf("w%d-%d", w, i)
				var op emitter.BroadcastOperator
				switch i % 4 {
				case 0:
					op = parent.To(own)
				case 1:
					op = parent.Except(own).Compress(false)
				case 2:
					op = volatileParent.In(own, "room1").Except("x")
				default:
					op = em.Of("/admin").To(own)
				}
				if err := op.Emit(ctx, "child", own, i%4); err != nil {
					t.Error(err)
					return
				}
				if err := parent.Emit(ctx, "hello", "x"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	msgs := rec.Messages()
	if len(msgs) != 2*workers*rounds {
		t.Fatalf("%d messages, want %d", len(msgs), 2*workers*rounds)
	}
	for _, m := range msgs {
		b, err := msgpacktest.ReadBroadcast(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if b.Data[0] == "hello" {
			checkSame(t, m, want)
			continue
		}
		own := b.Data[1].(string)
		_, got := decodeTarget(t, m)
		var exp target
		switch b.Data[2].(int64) {
		case 0:
			exp = target{rooms: []string{"room1", own}, except: []string{}, compress: true}
		case 1:
			exp = target{rooms: []string{"room1"}, except: []string{own}, compress: false}
		case 2:
			exp = target{rooms: []string{"room1", own}, except: []string{"x"}, volatile: true, compress: true}
		case 3:
			exp = target{rooms: []string{own}, except: []string{}, compress: true}
			if b.Nsp != "/admin" {
				t.Errorf("nsp %q", b.Nsp)
			}
		}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("message of %s: target %+v, want %+v", own, got, exp)
		}
	}
	// The parents still build their own messages.
	rec.Reset()
	if err := parent.Emit(ctx, "hello", "x"); err != nil {
		t.Fatal(err)
	}
	checkSame(t, rec.Messages()[0], want)
	if _, tg := decodeTarget(t, mustEncode(t, volatileParent)); !tg.volatile || len(tg.rooms) != 1 {
		t.Errorf("volatile parent changed: %+v", tg)
	}
}

func mustEncode(t *testing.T, op emitter.BroadcastOperator) spec.Published {
	t.Helper()
	m, err := op.Encode("ev")
	if err != nil {
		t.Fatal(err)
	}
	return spec.Published{Channel: m.Channel, Payload: m.Payload, Sharded: m.Sharded}
}

// TestAppendDoesNotAlias covers the classic aliasing bug of slices: two children
// appended to one parent with spare capacity must not share their rooms.
func TestAppendDoesNotAlias(t *testing.T) {
	em := emitter.New(nil, nil)
	parent := em.To("a", "b", "c").Except("x", "y")
	c1, c2 := parent.To("one"), parent.To("two")
	e1, e2 := parent.Except("p"), parent.Except("q")
	for _, tc := range []struct {
		op            emitter.BroadcastOperator
		rooms, except []string
	}{
		{c1, []string{"a", "b", "c", "one"}, []string{"x", "y"}},
		{c2, []string{"a", "b", "c", "two"}, []string{"x", "y"}},
		{e1, []string{"a", "b", "c"}, []string{"x", "y", "p"}},
		{e2, []string{"a", "b", "c"}, []string{"x", "y", "q"}},
		{parent, []string{"a", "b", "c"}, []string{"x", "y"}},
	} {
		_, got := decodeTarget(t, mustEncode(t, tc.op))
		if !slices.Equal(got.rooms, tc.rooms) || !slices.Equal(got.except, tc.except) {
			t.Errorf("rooms %q except %q, want %q %q", got.rooms, got.except, tc.rooms, tc.except)
		}
	}
}

// TestRefusals: reserved event names, empty names, acknowledgement callbacks, bad
// namespaces and bad options are errors, and nothing is published for them.
func TestRefusals(t *testing.T) {
	var rec spec.Recorder
	ctx := context.Background()
	em := emitter.New(&rec, nil)
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if err := em.To("r").Emit(ctx, name, 1); !errors.Is(err, emitter.ErrReservedEvent) {
			t.Errorf("Emit(%q) = %v", name, err)
		}
		if err := em.ServerSideEmit(ctx, name); !errors.Is(err, emitter.ErrReservedEvent) {
			t.Errorf("ServerSideEmit(%q) = %v", name, err)
		}
	}
	if err := em.Emit(ctx, ""); !errors.Is(err, emitter.ErrNoEvent) {
		t.Errorf("empty event: %v", err)
	}
	ack := func(args ...any) {}
	if err := em.Emit(ctx, "ev", 1, ack); !errors.Is(err, emitter.ErrAckNotSupported) {
		t.Errorf("Emit with ack: %v", err)
	}
	if err := em.ServerSideEmit(ctx, "ev", ack); !errors.Is(err, emitter.ErrAckNotSupported) {
		t.Errorf("ServerSideEmit with ack: %v", err)
	}
	if err := em.Emit(ctx, "ev", func() {}, 1); err == nil || !strings.Contains(err.Error(), "argument 1") {
		t.Errorf("a function that is not the last argument: %v", err)
	}
	if err := em.Emit(ctx, "ev", make(chan int)); err == nil {
		t.Error("a channel argument was accepted")
	}
	for _, nsp := range []string{"/a#b", "a*", "/x?", "/[r]", "/a,b", "/nl\n"} {
		bad := em.Of(nsp)
		for what, err := range map[string]error{
			"Emit":              bad.Emit(ctx, "ev"),
			"To.Emit":           bad.To("r").Emit(ctx, "ev"),
			"SocketsJoin":       bad.SocketsJoin(ctx, "r"),
			"SocketsLeave":      bad.In("r").SocketsLeave(ctx, "r"),
			"DisconnectSockets": bad.DisconnectSockets(ctx, true),
			"ServerSideEmit":    bad.ServerSideEmit(ctx, "ev"),
			"Batch":             bad.Batch(ctx, func(*emitter.Emitter) error { return nil }),
		} {
			if !errors.Is(err, emitter.ErrInvalidNamespace) {
				t.Errorf("Of(%q).%s = %v", nsp, what, err)
			}
		}
		if _, err := bad.To("r").Encode("ev"); !errors.Is(err, emitter.ErrInvalidNamespace) {
			t.Errorf("Of(%q).Encode = %v", nsp, err)
		}
		// A valid namespace after an invalid one works again.
		if err := bad.Of("/ok").Emit(ctx, "ev"); err != nil {
			t.Errorf("Of(%q).Of(/ok): %v", nsp, err)
		}
		rec.Reset()
	}
	badMode := emitter.New(&rec, &emitter.Options{Sharded: true, SubscriptionMode: "sometimes"})
	if err := badMode.Emit(ctx, "ev"); err == nil || !strings.Contains(err.Error(), "subscription mode") {
		t.Errorf("bad subscription mode: %v", err)
	}
	if err := badMode.Of("/admin").Emit(ctx, "ev"); err == nil {
		t.Error("Of cleared an option error")
	}
	if n := len(rec.Messages()); n != 0 {
		t.Errorf("%d messages published for refused calls", n)
	}
	if err := emitter.New(nil, nil).Emit(ctx, "ev"); !errors.Is(err, emitter.ErrNoPublisher) {
		t.Errorf("nil publisher: %v", err)
	}
}

// blocking is a Publisher that does not return until released, like a client
// whose Redis accepts the connection and never answers.
type blocking struct {
	release chan struct{}
	calls   chan struct{}
}

func (b *blocking) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	b.calls <- struct{}{}
	<-b.release
	cmd := redis.NewIntCmd(ctx)
	cmd.SetErr(errors.New("too late"))
	return cmd
}

func (b *blocking) SPublish(ctx context.Context, channel string, message any) *redis.IntCmd {
	return b.Publish(ctx, channel, message)
}

// TestEmitReturnsByTheDeadline: with a publisher that hangs, Emit (and Batch)
// return the context's error when it expires, and the goroutine left waiting on
// the publisher ends once the publisher returns.
func TestEmitReturnsByTheDeadline(t *testing.T) {
	before := runtime.NumGoroutine()
	pub := &blocking{release: make(chan struct{}), calls: make(chan struct{}, 10)}
	em := emitter.New(pub, nil)
	for _, call := range []func(context.Context) error{
		func(ctx context.Context) error { return em.To("r").Emit(ctx, "ev", 1) },
		func(ctx context.Context) error { return em.ServerSideEmit(ctx, "ev") },
		func(ctx context.Context) error {
			return em.Batch(ctx, func(b *emitter.Emitter) error { return b.Emit(ctx, "ev") })
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the deadline", err)
		}
		select {
		case <-pub.calls: // the publisher was reached, and still blocks
		default:
			t.Fatal("the publisher was never called")
		}
	}
	// A context already done does not reach the publisher.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := em.Emit(ctx, "ev"); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	close(pub.release)
	waitGoroutines(t, before)
}

// waitGoroutines waits (bounded) until the number of goroutines is back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failing records like spec.Recorder but fails the messages for some channels.
type failing struct {
	spec.Recorder
	bad map[string]bool
}

func (f *failing) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	if f.bad[channel] {
		cmd := redis.NewIntCmd(ctx)
		cmd.SetErr(fmt.Errorf("refused %s", channel))
		return cmd
	}
	return f.Recorder.Publish(ctx, channel, message)
}

func TestBatch(t *testing.T) {
	ctx := context.Background()
	var rec spec.Recorder
	em := emitter.New(&rec, nil)

	var inside int
	err := em.Batch(ctx, func(b *emitter.Emitter) error {
		for i := range 3 {
			if err := b.To(fmt.Sprint("task:", i)).Emit(ctx, "task:progress", map[string]any{"i": i}); err != nil {
				return err
			}
		}
		if err := b.In("user:1").SocketsJoin(ctx, "task:9"); err != nil {
			return err
		}
		if err := b.Of("/admin").ServerSideEmit(ctx, "stats"); err != nil {
			return err
		}
		if err := b.Emit(ctx, "disconnect"); !errors.Is(err, emitter.ErrReservedEvent) {
			return fmt.Errorf("a bad call inside a batch: %v", err)
		}
		inside = len(rec.Messages())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != 0 {
		t.Fatalf("%d messages published before the batch ended", inside)
	}
	var got []string
	for _, m := range rec.Messages() {
		got = append(got, m.Channel)
	}
	want := []string{"socket.io#/#task:0#", "socket.io#/#task:1#", "socket.io#/#task:2#", "socket.io-request#/#", "socket.io-request#/admin#"}
	if !slices.Equal(got, want) {
		t.Fatalf("published on %q, want %q", got, want)
	}

	// fn fails: nothing is published, its error is returned.
	rec.Reset()
	boom := errors.New("boom")
	var escaped *emitter.Emitter
	if err := em.Batch(ctx, func(b *emitter.Emitter) error {
		escaped = b
		_ = b.Emit(ctx, "ev")
		return boom
	}); err != boom {
		t.Fatalf("Batch = %v, want boom", err)
	}
	if n := len(rec.Messages()); n != 0 {
		t.Fatalf("%d messages published after fn failed", n)
	}
	if err := escaped.Emit(ctx, "ev"); !errors.Is(err, emitter.ErrBatchDone) {
		t.Fatalf("using a batch after it ended: %v", err)
	}

	// Concurrent use inside fn.
	rec.Reset()
	err = em.Batch(ctx, func(b *emitter.Emitter) error {
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = b.To(fmt.Sprint("r", i)).Emit(ctx, "ev", i)
			}()
		}
		wg.Wait()
		return nil
	})
	if err != nil || len(rec.Messages()) != 20 {
		t.Fatalf("concurrent batch: %v, %d messages", err, len(rec.Messages()))
	}

	// An empty batch publishes nothing; a nested batch joins the outer one.
	rec.Reset()
	err = em.Batch(ctx, func(b *emitter.Emitter) error {
		_ = b.Emit(ctx, "outer")
		return b.Batch(ctx, func(inner *emitter.Emitter) error { return inner.Emit(ctx, "inner") })
	})
	if err != nil || len(rec.Messages()) != 2 {
		t.Fatalf("nested batch: %v, %d messages", err, len(rec.Messages()))
	}
}

// TestBatchReportsEachFailure: the messages that could not be published are
// listed with their position; the others are published.
func TestBatchReportsEachFailure(t *testing.T) {
	ctx := context.Background()
	pub := &failing{bad: map[string]bool{"socket.io#/#r1#": true, "socket.io#/#r3#": true}}
	em := emitter.New(pub, nil)
	err := em.Batch(ctx, func(b *emitter.Emitter) error {
		for i := range 5 {
			_ = b.To(fmt.Sprint("r", i)).Emit(ctx, "ev", i)
		}
		return nil
	})
	var be *emitter.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BatchError", err)
	}
	if be.Total != 5 || len(be.Failed) != 2 || be.Failed[0].Index != 1 || be.Failed[1].Index != 3 ||
		be.Failed[0].Channel != "socket.io#/#r1#" {
		t.Fatalf("failures %+v", be)
	}
	if !strings.Contains(err.Error(), "2 of 5 messages not published") || !strings.Contains(err.Error(), "refused socket.io#/#r1#") {
		t.Errorf("message %q", err)
	}
	if n := len(pub.Messages()); n != 3 {
		t.Errorf("%d messages published, want 3", n)
	}
}

// closedAddr returns an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestClientsWithoutRedis uses real go-redis clients whose Redis is down: Emit
// and Batch (a pipeline: one error per message) fail with the client's error
// well before their deadline, and the emitter leaves the client open.
func TestClientsWithoutRedis(t *testing.T) {
	addr := closedAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clients := map[string]redis.UniversalClient{
		"Client":    redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 1, DialerRetries: 1}),
		"Ring":      redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": addr}, MaxRetries: 1}),
		"Universal": redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}, MaxRetries: 1, DialerRetries: 1}),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			defer c.Close()
			em := emitter.New(c, nil)
			if err := em.To("r").Emit(ctx, "ev", 1); err == nil || !strings.Contains(err.Error(), "publish to socket.io#/#r#") {
				t.Fatalf("Emit = %v", err)
			}
			err := em.Batch(ctx, func(b *emitter.Emitter) error {
				_ = b.To("a").Emit(ctx, "ev")
				return b.To("b").Emit(ctx, "ev")
			})
			var be *emitter.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 2 {
				t.Fatalf("Batch = %v", err)
			}
			if err := c.Ping(ctx).Err(); err == nil || strings.Contains(err.Error(), "closed") {
				t.Fatalf("the client was closed by the emitter: %v", err)
			}
		})
	}
}

// TestPipelinePublisher: through a redis.Pipeliner, Emit and Batch only queue;
// the caller executes the pipeline.
func TestPipelinePublisher(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	defer rdb.Close()
	ctx := context.Background()
	pipe := rdb.TxPipeline()
	em := emitter.New(rdb, &emitter.Options{Sharded: true}).WithPublisher(pipe)
	if err := em.To("r").Emit(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	if err := em.Batch(ctx, func(b *emitter.Emitter) error {
		_ = b.SocketsJoin(ctx, "x")
		return b.ServerSideEmit(ctx, "y")
	}); err != nil {
		t.Fatal(err)
	}
	if pipe.Len() != 3 {
		t.Fatalf("pipeline holds %d commands, want 3", pipe.Len())
	}
	for _, c := range pipe.(interface{ Cmds() []redis.Cmder }).Cmds() {
		if c.Name() != "spublish" {
			t.Errorf("queued %s, want spublish", c.Name())
		}
	}
}

// TestShardedEncode: a sharded emitter marks its messages for SPUBLISH and picks
// the channel by subscription mode.
func TestShardedEncode(t *testing.T) {
	for mode, want := range map[emitter.SubscriptionMode]string{
		"":                                 "socket.io#/#",
		emitter.SubscriptionStatic:         "socket.io#/#",
		emitter.SubscriptionDynamic:        "socket.io#/#task:1#",
		emitter.SubscriptionDynamicPrivate: "socket.io#/#task:1#",
	} {
		em := emitter.New(nil, &emitter.Options{Sharded: true, SubscriptionMode: mode})
		m, err := em.To("task:1").Encode("ev", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Sharded || m.Channel != want || m.Payload[0] != '{' {
			t.Errorf("mode %q: %+v", mode, m)
		}
		if !em.Sharded() {
			t.Error("Sharded() = false")
		}
		// Several rooms, or a socket id in dynamic mode: the main channel.
		m, _ = em.To("a", "b").Encode("ev")
		if m.Channel != "socket.io#/#" {
			t.Errorf("mode %q, two rooms: %s", mode, m.Channel)
		}
	}
}

// TestManyRooms: long room lists keep their order and lose their duplicates, as
// short ones do.
func TestManyRooms(t *testing.T) {
	var list, want []string
	for i := range 40 {
		list = append(list, fmt.Sprint("r", i%25))
		if i < 25 {
			want = append(want, fmt.Sprint("r", i))
		}
	}
	em := emitter.New(nil, nil)
	op := em.To(list[:10]...).In(list[10:]...).Except(list...).Except("r3")
	_, got := decodeTarget(t, mustEncode(t, op))
	if !slices.Equal(got.rooms, want) || !slices.Equal(got.except, want) {
		t.Fatalf("rooms %q\nexcept %q\nwant %q", got.rooms, got.except, want)
	}
}
