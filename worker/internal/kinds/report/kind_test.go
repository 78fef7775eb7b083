package report

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/kinds/kindtest"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

func register(opts Options) func(*worker.Worker) {
	return func(w *worker.Worker) { Register(w, opts) }
}

// keywords returns the keywords of property name of schema s that the
// contract pins.
func keywords(s map[string]any, name string) string {
	p, _ := s["properties"].(map[string]any)[name].(map[string]any)
	var out []string
	for _, k := range []string{"type", "minimum", "maximum", "maxLength", "default"} {
		if v, ok := p[k]; ok {
			out = append(out, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(out, " ")
}

func TestKindThroughTheSDK(t *testing.T) {
	e := testenv.New(t)
	kindtest.Start(t, e, register(Options{Now: func() time.Time { return created }}))
	id := kindtest.Submit(t, e, Kind, `{"countries":4,"rowsPerCountry":500}`)

	s := kindtest.Schema(t, e, Kind)
	for name, want := range map[string]string{
		"countries":      "type=integer minimum=1 maximum=50 default=12",
		"rowsPerCountry": "type=integer minimum=10 maximum=100000 default=2000",
		"title":          "type=string maxLength=80 default=Orders by country",
	} {
		if got := keywords(s, name); got != want {
			t.Errorf("schema of %s: %s, want %s", name, got, want)
		}
	}
	if s["additionalProperties"] != false {
		t.Errorf("schema accepts unknown parameters: %v", s["additionalProperties"])
	}

	rec := e.WaitFinal(id, kindtest.Timeout)
	if rec.State != tasks.StateCompleted {
		t.Fatalf("state %s, error %+v; events:\n%s", rec.State, rec.Error, e.Events.Dump())
	}
	if got := kindtest.Stages(e, id); !slices.Equal(got, []string{StageQuery, StageRender, StageStore}) {
		t.Fatalf("stages %v", got)
	}
	p := Params{Countries: 4, RowsPerCountry: 500}
	md := kindtest.Metadata(t, rec)
	if md["pages"] != float64(p.Pages()) || md["rows"] != float64(2000) {
		t.Fatalf("metadata %v, want pages %d and rows 2000", md, p.Pages())
	}
	r := rec.Result
	if r == nil || r.ContentType != ContentType || r.Filename != "report-"+id+".pdf" || r.URL != worker.ResultURL(id) {
		t.Fatalf("result %+v", r)
	}
	pdf := kindtest.Result(t, e, id)
	if int64(len(pdf)) != r.Bytes {
		t.Fatalf("stored %d bytes, record says %d", len(pdf), r.Bytes)
	}
	checkPDF(t, pdf, p.Pages())
	// The default title was filled in.
	if !strings.Contains(string(pdf), "/Title (") {
		t.Fatal("no title in the PDF")
	}
	if rec.Percent != 100 || rec.Done != rec.Total {
		t.Fatalf("final progress %v%% %d/%d", rec.Percent, rec.Done, rec.Total)
	}
	// Progress never went back.
	last := -1.0
	for _, ev := range e.Events.Of(id) {
		if ev.Name == "task:progress" {
			pc := testenv.Float(ev.Payload["percent"])
			if pc < last {
				t.Fatalf("percent went from %v to %v", last, pc)
			}
			last = pc
		}
	}
}

func TestKindRefusesBadParams(t *testing.T) {
	e := testenv.New(t)
	kindtest.Start(t, e, register(Options{}))
	id := kindtest.Submit(t, e, Kind, `{"countries":51,"rowsPerCountry":5}`)
	rec := e.WaitFinal(id, kindtest.Timeout)
	if rec.State != tasks.StateFailed || rec.Error == nil || rec.Error.Code != "invalid_params" {
		t.Fatalf("state %s, error %+v", rec.State, rec.Error)
	}
	if !strings.Contains(rec.Error.Message, "countries") || !strings.Contains(rec.Error.Message, "rowsPerCountry") {
		t.Fatalf("the error does not name both fields: %s", rec.Error.Message)
	}
}

func TestKindCancel(t *testing.T) {
	e := testenv.New(t)
	// Paced far beyond the test's deadline: only the cancel can end it.
	kindtest.Start(t, e, register(Options{Pace: time.Hour}))
	id := kindtest.Submit(t, e, Kind, `{}`)
	kindtest.WaitEvent(t, e, id, "stage query", func(ev testenv.Event) bool {
		return ev.Name == "task:stage" && ev.Payload["stage"] == StageQuery
	})
	kindtest.Cancel(t, e, id)
	rec := e.WaitFinal(id, kindtest.Timeout)
	if rec.State != tasks.StateCancelled {
		t.Fatalf("state %s, error %+v", rec.State, rec.Error)
	}
	if md := kindtest.Metadata(t, rec); md["pages"] != float64(6) || md["rows"] != float64(24000) {
		t.Fatalf("metadata of the defaults: %v", md)
	}
}
