package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// emit applies one running-state event of seq to task id, with its history entry.
func emit(t *testing.T, s *store.Store, id string, seq int64) {
	t.Helper()
	err := s.Apply(context.Background(), &store.Update{TaskID: id, Seq: seq,
		Fields:  map[string]any{tasks.FieldState: string(tasks.StateRunning), tasks.FieldDone: seq},
		Publish: &store.Publish{Channel: "events", Payload: []byte(strconv.FormatInt(seq, 10))},
		Event:   &store.Event{Name: events.TaskProgress, Data: fmt.Appendf(nil, `{"seq":%d}`, seq)},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func createWithLimit(t *testing.T, s *store.Store, limit int) *tasks.Record {
	t.Helper()
	r := newRecord("alice")
	r.HistoryLimit = limit
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func seqs(evs []events.HistoryEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func TestHistoryKeepsEveryEventInOrder(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 0) // the default: 2000
	for seq := int64(1); seq <= 300; seq++ {
		emit(t, s, r.ID, seq)
	}
	h, err := s.ReadHistory(ctx, r.ID, 120, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Recovered || h.Reason != "" || h.Next != 0 || h.Record.Seq != 300 || len(h.Events) != 180 {
		t.Fatalf("history: recovered %v %q next %d seq %d, %d events", h.Recovered, h.Reason, h.Next, h.Record.Seq, len(h.Events))
	}
	for i, e := range h.Events {
		want := int64(121 + i)
		if e.Seq != want || e.Event != events.TaskProgress || string(e.Data) != fmt.Sprintf(`{"seq":%d}`, want) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	// Up to date: nothing to send, and complete.
	if h, err := s.ReadHistory(ctx, r.ID, 300, 0); err != nil || !h.Recovered || len(h.Events) != 0 {
		t.Fatalf("since = seq: %+v, %v", h, err)
	}
	// The history lives as long as the record.
	if ttl := rdb.PTTL(ctx, s.Keys().Events(r.ID)).Val(); ttl <= 0 || ttl > store.DefaultTTL {
		t.Fatalf("history ttl %v", ttl)
	}
	// Paging: limit events at a time, Next says where to go on.
	var got []int64
	since := int64(0)
	for pages := 0; ; pages++ {
		h, err := s.ReadHistory(ctx, r.ID, since, 64)
		if err != nil || !h.Recovered {
			t.Fatalf("page from %d: %+v, %v", since, h, err)
		}
		got = append(got, seqs(h.Events)...)
		if h.Next == 0 {
			if pages != 4 {
				t.Fatalf("%d pages of 64 for 300 events", pages+1)
			}
			break
		}
		since = h.Next
	}
	if len(got) != 300 || got[0] != 1 || got[299] != 300 {
		t.Fatalf("paged %d events %v...", len(got), got[:3])
	}
}

func TestHistoryTrimmed(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 50)
	for seq := int64(1); seq <= 128; seq++ {
		emit(t, s, r.ID, seq)
	}
	// Trimmed with the 128th event, the 32nd since the last trim.
	if n := rdb.XLen(ctx, s.Keys().Events(r.ID)).Val(); n != 50 {
		t.Fatalf("history holds %d events, want 50", n)
	}
	for seq := int64(129); seq <= 140; seq++ {
		emit(t, s, r.ID, seq)
	}
	if n := rdb.XLen(ctx, s.Keys().Events(r.ID)).Val(); n != 62 {
		t.Fatalf("history holds %d events between trims, want 62", n)
	}
	rec, _ := s.Get(ctx, r.ID)
	if rec.HistoryCount != 140 {
		t.Fatalf("historyCount %d, want 140", rec.HistoryCount)
	}
	for _, since := range []int64{0, 77} {
		h, err := s.ReadHistory(ctx, r.ID, since, 0)
		if err != nil || h.Recovered || h.Reason != events.ReasonTrimmed || len(h.Events) != 0 || h.Record.Seq != 140 {
			t.Fatalf("since %d: %+v, %v; want trimmed with the record", since, h, err)
		}
	}
	h, err := s.ReadHistory(ctx, r.ID, 78, 0)
	if err != nil || !h.Recovered || len(h.Events) != 62 || h.Events[0].Seq != 79 {
		t.Fatalf("since 78: %+v, %v", h, err)
	}
}

// TestHistorySeqGaps: updates without an event move the seq without a history
// entry; a history that dropped nothing recovers from any since, and one that
// did reports the events before its first entry as trimmed.
func TestHistorySeqGaps(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := createWithLimit(t, s, 3)
	if err := s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 5, Fields: map[string]any{tasks.FieldState: string(tasks.StateRunning)}}); err != nil {
		t.Fatal(err)
	}
	emit(t, s, r.ID, 7)
	emit(t, s, r.ID, 9)
	h, err := s.ReadHistory(ctx, r.ID, 0, 0)
	if err != nil || !h.Recovered || fmt.Sprint(seqs(h.Events)) != "[7 9]" {
		t.Fatalf("nothing dropped: %+v, %v", h, err)
	}
	for seq := int64(11); seq <= 69; seq += 2 {
		emit(t, s, r.ID, seq) // the 32nd event (69) trims to the last 3: 65, 67, 69
	}
	for since, want := range map[int64]bool{0: false, 7: false, 63: false, 64: true, 66: true} {
		h, err := s.ReadHistory(ctx, r.ID, since, 0)
		if err != nil || h.Recovered != want {
			t.Errorf("since %d: recovered %v (%v), want %v", since, h.Recovered, err, want)
		}
	}
}

// TestHistoryOutOfStep: a history with an entry at or above the next seq (a
// restored or edited Redis) starts over from that event and says so.
func TestHistoryOutOfStep(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 50)
	emit(t, s, r.ID, 1)
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.Keys().Events(r.ID), ID: "100-0", Values: []string{"e", "x", "d", "{}"}}).Err(); err != nil {
		t.Fatal(err)
	}
	emit(t, s, r.ID, 2)
	emit(t, s, r.ID, 3)
	if n := rdb.XLen(ctx, s.Keys().Events(r.ID)).Val(); n != 2 {
		t.Fatalf("history holds %d events, want 2", n)
	}
	h, err := s.ReadHistory(ctx, r.ID, 0, 0)
	if err != nil || h.Recovered || h.Reason != events.ReasonTrimmed {
		t.Fatalf("since 0: %+v, %v; want trimmed", h, err)
	}
	h, err = s.ReadHistory(ctx, r.ID, 1, 0)
	if err != nil || !h.Recovered || fmt.Sprint(seqs(h.Events)) != "[2 3]" {
		t.Fatalf("since 1: %+v, %v", h, err)
	}
}

func TestHistoryNone(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, -1)
	emit(t, s, r.ID, 1)
	emit(t, s, r.ID, 2)
	if n := rdb.Exists(ctx, s.Keys().Events(r.ID)).Val(); n != 0 {
		t.Fatal("a task that keeps no history has one")
	}
	h, err := s.ReadHistory(ctx, r.ID, 1, 0)
	if err != nil || h.Recovered || h.Reason != events.ReasonTrimmed {
		t.Fatalf("%+v, %v", h, err)
	}
	if h, err := s.ReadHistory(ctx, r.ID, 2, 0); err != nil || !h.Recovered {
		t.Fatalf("up to date: %+v, %v", h, err)
	}
}

func TestHistoryExpiredAndBadSince(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 0)
	for seq := int64(1); seq <= 5; seq++ {
		emit(t, s, r.ID, seq)
	}
	if _, err := s.ReadHistory(ctx, r.ID, 6, 0); !errors.Is(err, store.ErrSinceAhead) {
		t.Fatalf("since ahead: %v", err)
	}
	if _, err := s.ReadHistory(ctx, tasks.NewID(), 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	// The history is gone (evicted, or the record is older than histories).
	rdb.Del(ctx, s.Keys().Events(r.ID))
	h, err := s.ReadHistory(ctx, r.ID, 2, 0)
	if err != nil || h.Recovered || h.Reason != events.ReasonExpired || h.Record.Seq != 5 {
		t.Fatalf("expired: %+v, %v", h, err)
	}
	// A history out of step with the record (a restored Redis) starts over.
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.Keys().Events(r.ID), ID: "99-0", Values: []string{"e", "x", "d", "{}"}})
	emit(t, s, r.ID, 6)
	h, err = s.ReadHistory(ctx, r.ID, 4, 0)
	if err != nil || h.Recovered || h.Reason != events.ReasonTrimmed {
		t.Fatalf("out of step: %+v, %v", h, err)
	}
	if h, err = s.ReadHistory(ctx, r.ID, 5, 0); err != nil || !h.Recovered || len(h.Events) != 1 || h.Events[0].Seq != 6 {
		t.Fatalf("after starting over: %+v, %v", h, err)
	}
}

func TestHistoryByteBound(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := createWithLimit(t, s, 0)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = 'x'
	}
	for seq := int64(1); seq <= 4; seq++ {
		err := s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: seq, Fields: map[string]any{tasks.FieldDone: seq},
			Event: &store.Event{Name: events.TaskStream, Data: fmt.Appendf(nil, `"%s"`, big)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.ReadHistory(ctx, r.ID, 0, 0)
	if err != nil || !h.Recovered || len(h.Events) != 2 || h.Next != 2 {
		t.Fatalf("8 MiB bound: %d events, next %d, %v", len(h.Events), h.Next, err)
	}
}

func TestFinalStateFillsInbox(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	sub := rdb.Subscribe(ctx, "events", "inbox")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	r := createWithLimit(t, s, 0)
	inbox := &store.Publish{Channel: "inbox", Payload: []byte("item")}
	err := s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 1, Fields: map[string]any{tasks.FieldState: string(tasks.StateRunning)},
		Publish: &store.Publish{Channel: "events", Payload: []byte("1")}, Inbox: inbox})
	if err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, s.Keys().Inbox("alice")).Val(); n != 0 {
		t.Fatal("a running task is in the inbox")
	}
	done := time.Now().UnixMilli()
	err = s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 2,
		Fields:  map[string]any{tasks.FieldState: string(tasks.StateCompleted), tasks.FieldFinishedAt: done},
		Publish: &store.Publish{Channel: "events", Payload: []byte("2")}, Inbox: inbox,
		Event: &store.Event{Name: events.TaskCompleted, Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1", "2", "item"} {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Payload != want {
			t.Fatalf("got %v %v, want %q", m, err, want)
		}
	}
	for _, key := range []string{s.Keys().Inbox("alice"), s.Keys().Undelivered()} {
		z := rdb.ZRangeWithScores(ctx, key, 0, -1).Val()
		if len(z) != 1 || z[0].Member != r.ID || int64(z[0].Score) != done {
			t.Fatalf("%s: %v, want %s at %d", key, z, r.ID, done)
		}
	}
	if ttl := rdb.PTTL(ctx, s.Keys().Inbox("alice")).Val(); ttl <= 0 {
		t.Fatalf("inbox ttl %v", ttl)
	}
}

func TestCancelQueuedKeepsHistory(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 0)
	_, err := s.CancelQueued(ctx, r.ID, time.Now(), func(rec *tasks.Record, u *store.Update) error {
		if rec.ID != r.ID || rec.Owner != "alice" {
			t.Errorf("event got the record %+v", rec)
		}
		u.Event = &store.Event{Name: events.TaskCancelled, Data: fmt.Appendf(nil, `{"seq":%d}`, u.Seq)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.ReadHistory(ctx, r.ID, 0, 0)
	if err != nil || !h.Recovered || len(h.Events) != 1 || h.Events[0].Event != events.TaskCancelled || string(h.Events[0].Data) != `{"seq":1}` {
		t.Fatalf("%+v, %v", h, err)
	}
	if rdb.ZScore(ctx, s.Keys().Inbox("alice"), r.ID).Err() != nil {
		t.Fatal("the cancelled task is not in the inbox")
	}
}

// TestTTLRenewedTogether: the record and the history get their TTL back
// together, with the first event, an event a 16th of the TTL or more after the
// last renewal (or whose writer's clock is behind it), and the final event, and
// not with every event.
func TestTTLRenewedTogether(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	r := createWithLimit(t, s, 0)
	rec, hist := s.Keys().Task(r.ID), s.Keys().Events(r.ID)
	ttl := s.TTL()
	// Both keys as if most of their TTL had passed.
	shorten := func() {
		t.Helper()
		for _, k := range []string{rec, hist} {
			if err := rdb.PExpire(ctx, k, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(step string, renewed bool) {
		t.Helper()
		for _, k := range []string{rec, hist} {
			left := rdb.PTTL(ctx, k).Val()
			if got := left > time.Minute; got != renewed || left <= 0 || left > ttl {
				t.Fatalf("%s: %s has %v left, renewed %v, want renewed %v", step, k, left, got, renewed)
			}
		}
	}
	setTouched := func(at time.Time) {
		t.Helper()
		if err := rdb.HSet(ctx, rec, "touchedAt", at.UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
	}

	emit(t, s, r.ID, 1)
	check("first event", true)
	shorten()
	emit(t, s, r.ID, 2)
	check("an event right after", false)
	setTouched(time.Now().Add(-ttl / 15))
	emit(t, s, r.ID, 3)
	check("an event a 15th of the TTL later", true)
	shorten()
	setTouched(time.Now().Add(time.Hour))
	emit(t, s, r.ID, 4)
	check("a writer's clock behind the last renewal", true)
	shorten()
	err := s.Apply(ctx, &store.Update{TaskID: r.ID, Seq: 5,
		Fields: map[string]any{tasks.FieldState: string(tasks.StateCompleted)},
		Event:  &store.Event{Name: events.TaskCompleted, Data: []byte(`{"seq":5}`)}})
	if err != nil {
		t.Fatal(err)
	}
	check("the final event", true)
}
