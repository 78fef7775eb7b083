package progress

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// The history holds every event that went out, with the payload clients got,
// and the end of the task reaches its owner's inbox.
func TestHistoryMatchesTheEventsPublished(t *testing.T) {
	ctx := context.Background()
	e, pub, clk, rec := setup(t, 100)
	id := rec.ID
	rep := pub.Begin(rec, 0)
	if err := rep.Started(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := rep.Stage(ctx, "render", "drawing"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		clk.advance(200 * time.Millisecond)
		if err := rep.Append(ctx, "log", map[string]any{"line": i}); err != nil {
			t.Fatal(err)
		}
		if err := rep.Metadata(ctx, map[string]any{"step": i}); err != nil {
			t.Fatal(err)
		}
		if err := rep.Progress(ctx, int64(i+1)*10, 100, "render"); err != nil {
			t.Fatal(err)
		}
	}
	if err := rep.Failed(ctx, tasks.ErrorInfo{Code: "boom", Message: "it broke"}); err != nil {
		t.Fatal(err)
	}
	e.Events.Wait(t, 5*time.Second, "the final event and the inbox item", func(r *testenv.Recorder) bool {
		return r.Final(id) != nil && len(r.Inbox(id)) == 1
	})
	published := e.Events.Of(id)
	h, err := e.Store.ReadHistory(ctx, id, 0, 0)
	if err != nil || !h.Recovered {
		t.Fatalf("history: %+v, %v", h, err)
	}
	if len(h.Events) != len(published) {
		t.Fatalf("%d events in the history, %d published:\n%s", len(h.Events), len(published), e.Events.Dump())
	}
	for i, ev := range h.Events {
		p := published[i]
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != p.Seq || ev.Event != p.Name || !sameJSON(t, data, p.Payload) {
			t.Fatalf("history event %d: %d %s %s; published %d %s %v", i, ev.Seq, ev.Event, ev.Data, p.Seq, p.Name, p.Payload)
		}
	}
	in := e.Events.Inbox(id)[0]
	if in.Room != events.UserRoom(rec.Owner) || in.Payload["state"] != "failed" || testenv.Int(in.Payload["seq"]) != h.Record.Seq {
		t.Fatalf("inbox item %+v", in)
	}
	if errInfo, _ := in.Payload["error"].(map[string]any); errInfo["code"] != "boom" {
		t.Fatalf("inbox item error %v", in.Payload["error"])
	}
	if e.Client.ZScore(ctx, e.Store.Keys().Inbox(rec.Owner), id).Err() != nil {
		t.Fatal("the task is not in its owner's inbox")
	}
}

func TestPublisherFailKeepsHistory(t *testing.T) {
	ctx := context.Background()
	e := testenv.New(t)
	pub := NewPublisher(e.Store, emitter.New(e.Client, nil), nil)
	id := e.Create(10, nil)
	if err := pub.Fail(ctx, id, tasks.ErrorInfo{Code: "malformed_message", Message: "bad"}); err != nil {
		t.Fatal(err)
	}
	h, err := e.Store.ReadHistory(ctx, id, 0, 0)
	if err != nil || !h.Recovered || len(h.Events) != 1 || h.Events[0].Event != events.TaskFailed || h.Events[0].Seq != 1 {
		t.Fatalf("history: %+v, %v", h, err)
	}
	e.Events.Wait(t, 5*time.Second, "the inbox item", func(r *testenv.Recorder) bool { return len(r.Inbox(id)) == 1 })
}

// sameJSON compares a JSON-decoded value with a msgpack-decoded one by their
// JSON forms.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}
