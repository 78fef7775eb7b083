package socketapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// historyReadHook runs functions around the next history read of one task: the
// script call whose keys are that task's record and history.
type historyReadHook struct {
	mu            sync.Mutex
	keys          []string // record, history
	before, after func()
}

func (h *historyReadHook) arm(keys []string, before, after func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys, h.before, h.after = keys, before, after
}

// take returns the functions if cmd is the armed read, and disarms.
func (h *historyReadHook) take(cmd redis.Cmder) (before, after func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	args := cmd.Args()
	if h.keys == nil || len(args) < 5 || !strings.HasPrefix(cmd.Name(), "eval") ||
		args[3] != h.keys[0] || args[4] != h.keys[1] {
		return nil, nil
	}
	before, after = h.before, h.after
	h.keys, h.before, h.after = nil, nil, nil
	return before, after
}

func (h *historyReadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *historyReadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *historyReadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		before, after := h.take(cmd)
		if before == nil {
			return next(ctx, cmd)
		}
		before()
		err := next(ctx, cmd)
		after()
		return err
	}
}

// TestSubscribeSinceRace runs the race between a task:subscribe with since and
// live events on purpose, with both adapters: a worker writes events while the
// server reads the history (they are in the ack and also come live, since the
// socket joined the room first) and right after the read (they come live only).
// Every event comes live exactly once, in order, and the ack holds exactly
// those written before its read: the client's merge by seq has each once.
func TestSubscribeSinceRace(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "sharded"}[sharded], func(t *testing.T) {
			hook := &historyReadHook{}
			e := newEnv(t, envOptions{sharded: sharded, hook: hook})
			em := emitter.New(e.rdb, &emitter.Options{Sharded: sharded, SubscriptionMode: emitter.SubscriptionDynamic})
			ctx := context.Background()
			r := &tasks.Record{ID: tasks.NewID(), Kind: tasks.KindExport, State: tasks.StateQueued, Owner: "alice",
				Total: 100, MaxAttempts: 1, Params: []byte(`{"rows":100}`), CreatedAt: time.Now()}
			if err := e.store.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			emit := func(from, to int64) {
				for seq := from; seq <= to; seq++ {
					data, _ := json.Marshal(events.Progress{TaskID: r.ID, Seq: seq, Done: seq, Total: 100, Percent: float64(seq)})
					msg, err := em.To(events.TaskRoom(r.ID)).Encode(events.TaskProgress, json.RawMessage(data))
					if err != nil {
						t.Error(err)
						return
					}
					if err := e.store.Apply(ctx, &store.Update{TaskID: r.ID, Seq: seq,
						Fields:  map[string]any{tasks.FieldState: string(tasks.StateRunning), tasks.FieldDone: seq},
						Publish: &store.Publish{Channel: msg.Channel, Payload: msg.Payload, Sharded: msg.Sharded},
						Event:   &store.Event{Name: events.TaskProgress, Data: data}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
			emit(1, 10)
			alice := e.connect(t, "tok-alice")
			since := func(n int) string { return fmt.Sprintf(`{"taskId":%q,"since":%d}`, r.ID, n) }
			// The first read loads the script (a retry after NOSCRIPT would
			// run it twice); leaving the room makes the next join a new one.
			if ack := alice.call(events.TaskSubscribe, since(10)); ack["recovered"] != true {
				t.Fatalf("first subscribe: %v", ack)
			}
			alice.call(events.TaskUnsubscribe, fmt.Sprintf(`{"taskId":%q}`, r.ID))

			keys := []string{e.store.Keys().Task(r.ID), e.store.Keys().Events(r.ID)}
			hook.arm(keys, func() { emit(11, 15) }, func() { emit(16, 20) })
			ackData, live := alice.subscribeRecording(t, since(10), 20)

			var ack events.SubscribeAck
			if err := json.Unmarshal(ackData, &ack); err != nil {
				t.Fatalf("ack %s: %v", ackData, err)
			}
			if ack.Recovered == nil || !*ack.Recovered || ack.Seq != 15 {
				t.Fatalf("ack: recovered %v, seq %d, want true and 15 (the events written before the read)", ack.Recovered, ack.Seq)
			}
			var inAck []int64
			for _, ev := range ack.Events {
				inAck = append(inAck, ev.Seq)
			}
			if want := seqs(11, 15); !slices.Equal(inAck, want) {
				t.Fatalf("ack events %v, want %v", inAck, want)
			}
			if want := seqs(11, 20); !slices.Equal(live, want) {
				t.Fatalf("live events %v, want %v: each once, in order, from the join on", live, want)
			}
		})
	}
}

func seqs(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// subscribeRecording sends task:subscribe with args and returns its ack's first
// argument and the seqs of the task:progress events that came from the request
// on, until one with seq last arrived.
func (c *client) subscribeRecording(t *testing.T, args string, last int64) (json.RawMessage, []int64) {
	t.Helper()
	c.next++
	id := c.next
	if err := c.conn.SendRaw(fmt.Sprintf(`42%d[%q,%s]`, id, events.TaskSubscribe, args)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack json.RawMessage
	var live []int64
	for ack == nil || len(live) == 0 || live[len(live)-1] < last {
		p, err := c.conn.Next(ctx)
		if err != nil {
			t.Fatalf("ack %s, live events %v: %v", ack, live, err)
		}
		switch {
		case p.Type == eiotest.TypeAck && p.ID != nil && *p.ID == id:
			var out []json.RawMessage
			if err := json.Unmarshal(p.Data, &out); err != nil || len(out) != 1 {
				t.Fatalf("acknowledgement %s", p.Data)
			}
			ack = out[0]
		case p.EventName() == events.TaskProgress:
			var ev events.Progress
			if args := p.Args(); len(args) != 1 || json.Unmarshal(args[0], &ev) != nil {
				t.Fatalf("event %s", p.Data)
			}
			live = append(live, ev.Seq)
		}
	}
	return ack, live
}
