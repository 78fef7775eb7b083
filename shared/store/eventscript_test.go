package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// TestEventScriptMatchesUpdateScript runs the same updates, the common events
// and their edge cases, once with the event path's script and once with the
// general one (as before the event script existed), each on a Redis of its own:
// the answers, the records, the histories and what was published are the same.
func TestEventScriptMatchesUpdateScript(t *testing.T) {
	base := []*tasks.Record{newRecord("alice"), newRecord("alice"), newRecord("alice")}
	base[1].HistoryLimit = 5
	base[2].HistoryLimit = -1
	lean := eventScriptRun(t, base, false)
	full := eventScriptRun(t, base, true)
	for _, part := range []string{"answers", "records", "histories", "published"} {
		if lean[part] != full[part] {
			t.Errorf("%s differ:\nevent script:   %s\nupdate script: %s", part, lean[part], full[part])
		}
	}
	if t.Failed() {
		return
	}
	if !strings.Contains(lean["answers"], "cancel") || !strings.Contains(lean["answers"], "stale") ||
		!strings.Contains(lean["answers"], "final") || !strings.Contains(lean["answers"], "not found") {
		t.Fatalf("the run missed a case: %s", lean["answers"])
	}
}

// eventScriptRun applies the updates of TestEventScriptMatchesUpdateScript to
// copies of records and describes what came of them.
func eventScriptRun(t *testing.T, records []*tasks.Record, full bool) map[string]string {
	ctx := context.Background()
	s, rdb := newStore(t)
	if full {
		store.UseFullScript(t)
	}
	sub := rdb.Subscribe(ctx, "events")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var answers []string
	apply := func(id string, attempt int, seq int64, state tasks.State) {
		t.Helper()
		cancel, err := s.ApplyChecked(ctx, &store.Update{TaskID: id, Attempt: attempt, Seq: seq,
			Fields:  map[string]any{tasks.FieldState: string(state), tasks.FieldDone: seq, tasks.FieldStage: "s"},
			Publish: &store.Publish{Channel: "events", Payload: fmt.Appendf(nil, "%s %d", id, seq)},
			Event:   &store.Event{Name: events.TaskProgress, Data: fmt.Appendf(nil, `{"seq":%d}`, seq)},
		})
		a := "ok"
		switch {
		case errors.Is(err, store.ErrStale):
			a = "stale"
		case errors.Is(err, store.ErrFinal):
			a = "final"
		case errors.Is(err, store.ErrNotFound):
			a = "not found"
		case err != nil:
			t.Fatal(err)
		case cancel:
			a = "cancel"
		}
		answers = append(answers, fmt.Sprintf("%d:%s", seq, a))
	}
	var ids []string
	for _, r := range records {
		c := *r
		if err := s.Create(ctx, &c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		rec, err := s.StartAttempt(ctx, c.ID, c.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
		for seq := rec.Seq + 1; seq <= rec.Seq+40; seq++ {
			apply(c.ID, rec.Attempts, seq, tasks.StateRunning)
		}
	}
	a := ids[0]
	apply(a, 1, 40, tasks.StateRunning) // a seq already used
	apply(a, 7, 41, tasks.StateRunning) // an attempt that is not the current one
	apply(a, 0, 41, tasks.StateRunning) // no attempt check
	rdb.HSet(ctx, s.Keys().Task(a), "cancelRequested", "1")
	apply(a, 1, 42, tasks.StateRunning) // cancellation asked for
	rdb.HDel(ctx, s.Keys().Task(a), "cancelRequested")
	// A history out of step with its record starts over.
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.Keys().Events(a), ID: "100-0", Values: []string{"e", "x", "d", "{}"}})
	apply(a, 1, 43, tasks.StateRunning)
	apply(a, 1, 44, tasks.StateCompleted) // the final event takes the general script
	apply(a, 1, 45, tasks.StateRunning)
	apply(tasks.NewID(), 1, 1, tasks.StateRunning)

	out := map[string]string{"answers": strings.Join(answers, " ")}
	var recs, hists []string
	for _, id := range ids {
		h := rdb.HGetAll(ctx, s.Keys().Task(id)).Val()
		if h["touchedAt"] == "" {
			t.Fatalf("record %s has no touchedAt", id)
		}
		delete(h, "touchedAt") // the writer's clock
		delete(h, "finishedAt")
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(h)) {
			kv = append(kv, k+"="+h[k])
		}
		recs = append(recs, strings.Join(kv, ","))
		ttl := rdb.PTTL(ctx, s.Keys().Events(id)).Val()
		var entries []string
		for _, e := range rdb.XRange(ctx, s.Keys().Events(id), "-", "+").Val() {
			entries = append(entries, fmt.Sprintf("%s:%v:%v", e.ID, e.Values["e"], e.Values["d"]))
		}
		hists = append(hists, fmt.Sprintf("ttl set %v: %s", ttl > 0, strings.Join(entries, " ")))
	}
	out["records"] = strings.Join(recs, "\n")
	out["histories"] = strings.Join(hists, "\n")
	var pub []string
	for range strings.Count(out["answers"], ":ok") + strings.Count(out["answers"], ":cancel") {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := sub.ReceiveMessage(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		pub = append(pub, m.Payload)
	}
	out["published"] = strings.Join(pub, ",")
	used, err := rdb.ScriptExists(ctx, store.EventScriptHash()).Result()
	if err != nil || used[0] == full {
		t.Fatalf("event script loaded %v (%v), want %v", used, err, !full)
	}
	return out
}
