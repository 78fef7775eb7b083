package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/httpapi"
	"github.com/taskwire/taskwire/server/internal/kindtest"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// reportSchema has bounds, defaults, an enum, a nested object and an array.
const reportSchema = `{
  "type": "object",
  "properties": {
    "countries": {"type": "integer", "minimum": 1, "maximum": 50, "default": 12},
    "rowsPerCountry": {"type": "integer", "minimum": 10, "maximum": 100000, "default": 2000},
    "title": {"type": "string", "maxLength": 20, "default": "Orders by country"},
    "format": {"type": "string", "enum": ["a4", "letter"]},
    "page": {"type": "object", "properties": {"margin": {"type": "integer", "minimum": 0}}, "required": ["margin"], "additionalProperties": false},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 2}}
  },
  "additionalProperties": false
}`

func reportKind(hash string) tasks.KindInfo {
	return tasks.KindInfo{
		Name: "report", Title: "PDF report", Description: "Orders by country.",
		ParamsSchema: json.RawMessage(reportSchema), SchemaHash: hash,
		MaxAttempts: 5, TimeoutSeconds: 120, ResultMaxBytes: 1 << 20, ProgressRate: 4, TotalParam: "countries",
	}
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details"`
	Known []string `json:"known"`
}

func (r response) apiError(t *testing.T) apiError {
	t.Helper()
	var body struct{ Error apiError }
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("no error object in %s (%v)", r.body, err)
	}
	return body.Error
}

func TestInvalidParamsNamesEveryField(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	tok := e.token()
	r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{"countries":0,"rowsPerCountry":"many","title":"a title longer than twenty","format":"A5",
		"page":{"color":"red"},"tags":["ok","x","yy","z"],"extra":1}}`)
	if r.status != 400 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ae := r.apiError(t)
	got := map[string]string{}
	for _, d := range ae.Details {
		got[d.Field] = d.Message
	}
	want := map[string]string{
		"params.countries":      "must be between 1 and 50, got 0",
		"params.rowsPerCountry": "must be an integer, got string",
		"params.title":          "must have at most 20 characters, got 26",
		"params.format":         `must be one of "a4", "letter", got "A5"`,
		"params.page.color":     `unknown field "color" (the fields are: margin)`,
		"params.page.margin":    "is required",
		"params.tags[1]":        "must have at least 2 characters, got 1",
		"params.tags[3]":        "must have at least 2 characters, got 1",
		"params.extra":          `unknown field "extra" (the fields are: countries, format, page, rowsPerCountry, tags, title)`,
	}
	if ae.Code != "invalid_params" || !reflect.DeepEqual(got, want) || len(ae.Details) != len(want) {
		t.Fatalf("code %q, details:\n%v\nwant:\n%v", ae.Code, got, want)
	}
	for f, m := range want {
		if !strings.Contains(ae.Message, f+": "+m) {
			t.Errorf("message %q does not name %s", ae.Message, f)
		}
	}
	if n := e.rdb.XLen(context.Background(), e.store.Keys().Queue("report")).Val(); n != 0 {
		t.Fatalf("%d tasks queued", n)
	}
}

func TestUnknownKindListsKnown(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	tok := e.token()
	for body, mention := range map[string]string{
		`{"kind":"mine","params":{}}`:       `kind: unknown kind "mine"; known kinds: "export", "report"`,
		`{"params":{}}`:                     `kind: is required; known kinds: "export", "report"`,
		`{"kind":"Not A Kind","params":{}}`: `kind: unknown kind "Not A Kind"; known kinds: "export", "report"`,
	} {
		r := e.do("POST", "/api/v1/tasks", tok, body)
		ae := r.apiError(t)
		if r.status != 400 || ae.Code != "unknown_kind" || ae.Message != mention ||
			!reflect.DeepEqual(ae.Known, []string{"export", "report"}) || len(ae.Details) != 1 || ae.Details[0].Field != "kind" {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	// With no kind registered at all, the message says so.
	empty := replicas(t, 1, taskservice.Config{}, httpapi.Deps{})[0]
	if err := empty.rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r := empty.do("POST", "/api/v1/tasks", empty.token(), `{"kind":"export","params":{"rows":1}}`)
	if ae := r.apiError(t); r.status != 400 || ae.Code != "unknown_kind" || !strings.Contains(ae.Message, "no kind is known yet") || ae.Known == nil {
		t.Fatalf("no kinds: %d %s", r.status, r.body)
	}
}

func TestKindRegisteredAMomentAgo(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	// The first creation fills the registry cache; report is not in it.
	if r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{}}`); r.status != 400 || r.errorCode(t) != "unknown_kind" {
		t.Fatalf("before registration: %d %s", r.status, r.body)
	}
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	if r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{}}`); r.status != 202 {
		t.Fatalf("right after registration: %d %s", r.status, r.body)
	}
}

func TestDefaultsAndKindSettings(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	tok := e.token()
	r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{"countries":3, "tags":["ab"]}}`)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	g := e.do("GET", "/api/v1/tasks/"+id, tok, "")
	var rec struct {
		Params        map[string]any `json:"params"`
		MaxAttempts   int            `json:"maxAttempts"`
		Total         int64          `json:"total"`
		SchemaHash    string         `json:"schemaHash"`
		NoLiveWorker  *bool          `json:"noLiveWorker"`
		QueuePosition *int           `json:"queuePosition"`
	}
	if err := json.Unmarshal(g.body, &rec); err != nil {
		t.Fatal(err)
	}
	wantParams := map[string]any{"countries": 3.0, "rowsPerCountry": 2000.0, "title": "Orders by country", "tags": []any{"ab"}}
	if !reflect.DeepEqual(rec.Params, wantParams) || rec.MaxAttempts != 5 || rec.Total != 3 || rec.SchemaHash != "r1" ||
		(rec.NoLiveWorker != nil && *rec.NoLiveWorker) || rec.QueuePosition == nil || *rec.QueuePosition != 0 {
		t.Fatalf("record %s", g.body)
	}
	// The queue message carries the same params.
	msgs, err := e.rdb.XRange(context.Background(), e.store.Keys().Queue("report"), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queue %v %v", msgs, err)
	}
	var m tasks.Message
	if err := json.Unmarshal([]byte(msgs[0].Values[store.QueueField].(string)), &m); err != nil ||
		string(m.Params) != `{"countries":3,"rowsPerCountry":2000,"tags":["ab"],"title":"Orders by country"}` {
		t.Fatalf("message %s, %v", msgs[0].Values[store.QueueField], err)
	}
	// Export: no max attempts of its own (the server's), total from rows.
	r = e.do("POST", "/api/v1/tasks", tok, `{"kind":"export","params":{"rows":42}}`)
	id, _ = r.json(t)["id"].(string)
	if rec, err := e.store.Get(context.Background(), id); err != nil || rec.MaxAttempts != 3 || rec.Total != 42 || rec.SchemaHash != kindtest.ExportHash {
		t.Fatalf("export record %+v %v", rec, err)
	}
}

func TestNoLiveWorkerAccepted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.store.UnregisterKinds(ctx, "test-worker", []tasks.KindInfo{kindtest.Export()}); err != nil {
		t.Fatal(err)
	}
	tok := e.token()
	r := e.do("POST", "/api/v1/tasks", tok, exportBody)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	if g := e.do("GET", "/api/v1/tasks/"+id, tok, ""); g.json(t)["noLiveWorker"] != true {
		t.Fatalf("record %s", g.body)
	}
	k := e.do("GET", "/api/v1/kinds", "", "")
	if !strings.Contains(string(k.body), `"name":"export"`) || !strings.Contains(string(k.body), `"workers":0`) {
		t.Fatalf("kinds %s", k.body)
	}
}

func TestKindsEndpoint(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	kindtest.Register(t, e.store, "w2", reportKind("r1"))
	r := e.do("GET", "/api/v1/kinds", "", "")
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var body struct {
		Kinds []struct {
			Name         string          `json:"name"`
			Title        string          `json:"title"`
			Description  string          `json:"description"`
			ParamsSchema json.RawMessage `json:"paramsSchema"`
			SchemaHash   string          `json:"schemaHash"`
			Workers      int             `json:"workers"`
			Settings     map[string]any  `json:"settings"`
			Versions     []struct {
				SchemaHash string    `json:"schemaHash"`
				Workers    int       `json:"workers"`
				LastSeen   time.Time `json:"lastSeen"`
			} `json:"versions"`
			Conflict *bool `json:"conflict"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Kinds) != 2 || body.Kinds[0].Name != "export" || body.Kinds[1].Name != "report" {
		t.Fatalf("kinds %s", r.body)
	}
	rep := body.Kinds[1]
	var schema map[string]any
	if err := json.Unmarshal(rep.ParamsSchema, &schema); err != nil || schema["type"] != "object" {
		t.Fatalf("schema %s", rep.ParamsSchema)
	}
	wantSettings := map[string]any{"maxAttempts": 5.0, "timeoutSeconds": 120.0, "resultMaxBytes": float64(1 << 20), "progressRate": 4.0, "totalParam": "countries"}
	if rep.Title != "PDF report" || rep.Description != "Orders by country." || rep.SchemaHash != "r1" || rep.Workers != 2 ||
		!reflect.DeepEqual(rep.Settings, wantSettings) || rep.Conflict == nil || *rep.Conflict ||
		len(rep.Versions) != 1 || rep.Versions[0].SchemaHash != "r1" || rep.Versions[0].Workers != 2 || rep.Versions[0].LastSeen.IsZero() {
		t.Fatalf("report %s", r.body)
	}
	if exp := body.Kinds[0]; exp.Settings["maxAttempts"] != 3.0 || exp.Workers != 1 {
		t.Fatalf("export %+v", exp)
	}
}

func TestTwoVersionsConflict(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	kindtest.Register(t, e.store, "w2", reportKind("r1"))
	v2 := reportKind("r2")
	v2.ParamsSchema = json.RawMessage(`{"type":"object","properties":{"countries":{"type":"integer","minimum":1,"maximum":5}},"additionalProperties":false}`)
	kindtest.Register(t, e.store, "w3", v2)
	r := e.do("GET", "/api/v1/kinds", "", "")
	var body struct {
		Kinds []struct {
			Name, SchemaHash string
			Workers          int
			Conflict         bool
			Versions         []struct {
				SchemaHash string
				Workers    int
			}
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	rep := body.Kinds[1]
	if rep.Name != "report" || !rep.Conflict || rep.SchemaHash != "r1" || rep.Workers != 2 || len(rep.Versions) != 2 ||
		rep.Versions[0].SchemaHash != "r1" || rep.Versions[0].Workers != 2 || rep.Versions[1].SchemaHash != "r2" || rep.Versions[1].Workers != 1 {
		t.Fatalf("kinds %s", r.body)
	}
	if body.Kinds[0].Conflict {
		t.Fatalf("export in conflict: %s", r.body)
	}
	// Params are checked against the current version (most live workers).
	tok := e.token()
	if r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{"countries":40}}`); r.status != 202 {
		t.Fatalf("current version: %d %s", r.status, r.body)
	}
}

func TestBadParamsInput(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	for body, want := range map[string]string{
		`{"kind":"export","params":[1]}`:              "params: must be a JSON object",
		`{"kind":"export","params":"rows"}`:           "params: must be a JSON object",
		`{"kind":"export","params":5}`:                "params: must be a JSON object",
		`{"kind":"export","params":null}`:             "params: is required and must be a JSON object",
		`{"kind":"export"}`:                           "params: is required and must be a JSON object",
		`{"kind":"export","params":{"rows":1},"x":1}`: `body: unknown field "x"`,
	} {
		r := e.do("POST", "/api/v1/tasks", tok, body)
		ae := r.apiError(t)
		if r.status != 400 || ae.Code != "invalid_params" || ae.Message != want || len(ae.Details) != 1 {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	// Huge params are cut by the body bound.
	huge := `{"kind":"export","params":{"rows":1,"pad":"` + strings.Repeat("x", 8000) + `"}}`
	if r := e.do("POST", "/api/v1/tasks", tok, huge); r.status != 413 || r.errorCode(t) != "body_too_large" {
		t.Fatalf("huge: %d %s", r.status, r.body)
	}
	// Many bad fields within the bound: the details are bounded.
	var b strings.Builder
	b.WriteString(`{"kind":"export","params":{"rows":1`)
	for i := range 300 {
		fmt.Fprintf(&b, `,"f%d":0`, i)
	}
	b.WriteString("}}")
	r := e.do("POST", "/api/v1/tasks", tok, b.String())
	if ae := r.apiError(t); r.status != 400 || len(ae.Details) != 50 || !strings.Contains(ae.Details[49].Message, "more errors") {
		t.Fatalf("many fields: %d, %d details", r.status, len(ae.Details))
	}
}

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSchemaThatDoesNotCompile(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, nil)
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	signer, _ := session.NewSigner(bytes.Repeat([]byte("s"), 32))
	srv := httptest.NewServer(httpapi.NewRouter(httpapi.Deps{Signer: signer, Logger: log,
		Tasks: taskservice.New(taskservice.Config{Store: st, Logger: log, KindsCacheTTL: -1})}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, rdb: rdb, store: st}

	bad := reportKind("bad1")
	bad.ParamsSchema = json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","minimum":"one"}}}`)
	kindtest.Register(t, st, "w1", bad)
	tok := e.token()
	for range 3 {
		r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{"n":1}}`)
		if r.status != 503 || r.errorCode(t) != "kind_unavailable" || !strings.Contains(string(r.body), "does not compile") {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"the params schema of a kind does not compile`); n != 1 {
		t.Fatalf("%d error logs:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"kind":"report"`) || !strings.Contains(logs.String(), `"schemaHash":"bad1"`) {
		t.Fatalf("log does not say which kind:\n%s", logs.String())
	}
	// The server still serves, and GET /api/v1/kinds still lists the kind.
	if r := e.do("GET", "/api/v1/kinds", "", ""); r.status != 200 || !strings.Contains(string(r.body), `"name":"report"`) {
		t.Fatalf("kinds: %d %s", r.status, r.body)
	}
	// Once its workers publish a schema that compiles, the kind works.
	kindtest.Register(t, st, "w1", reportKind("good1"))
	kindtest.Register(t, st, "w2", reportKind("good1"))
	if r := e.do("POST", "/api/v1/tasks", tok, `{"kind":"report","params":{}}`); r.status != 202 {
		t.Fatalf("fixed schema not used: %d %s", r.status, r.body)
	}
}

func TestQueuePosition(t *testing.T) {
	e := newEnv(t)
	kindtest.Register(t, e.store, "w1", reportKind("r1"))
	tok := e.token()
	ctx := context.Background()
	var ids []string
	for i := range 4 {
		body := exportBody
		if i == 2 {
			body = `{"kind":"report","params":{}}`
		}
		r := e.do("POST", "/api/v1/tasks", tok, body)
		id, _ := r.json(t)["id"].(string)
		ids = append(ids, id)
	}
	positions := func() map[string]any {
		l := e.do("GET", "/api/v1/tasks", tok, "")
		var body struct{ Tasks []map[string]any }
		if err := json.Unmarshal(l.body, &body); err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for _, r := range body.Tasks {
			out[r["taskId"].(string)] = r["queuePosition"]
		}
		return out
	}
	// Per kind: export tasks 0, 1, 3 and report task 2.
	want := map[string]any{ids[0]: 0.0, ids[1]: 1.0, ids[2]: 0.0, ids[3]: 2.0}
	if got := positions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
	if g := e.do("GET", "/api/v1/tasks/"+ids[3], tok, ""); g.json(t)["queuePosition"] != 2.0 {
		t.Fatalf("get: %s", g.body)
	}
	// A worker takes the first export task: the others move up, and the one it
	// runs has no position.
	q := e.store.Keys().Queue(tasks.KindExport)
	if err := e.rdb.XGroupCreateMkStream(ctx, q, store.QueueGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: store.QueueGroup, Consumer: "c", Streams: []string{q, ">"}, Count: 1}).Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StartAttempt(ctx, ids[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	want = map[string]any{ids[0]: nil, ids[1]: 0.0, ids[2]: 0.0, ids[3]: 1.0}
	if got := positions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
	// A cancelled task has no position; while its entry is in the stream, the
	// tasks behind it still count it (a worker drops it as soon as it gets it).
	e.do("DELETE", "/api/v1/tasks/"+ids[1], tok, "")
	if got := positions(); got[ids[1]] != nil || got[ids[3]] != 1.0 {
		t.Fatalf("after cancel: %v", got)
	}
}

func TestJSONResultDownload(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	r := e.do("POST", "/api/v1/tasks", tok, exportBody)
	id, _ := r.json(t)["id"].(string)
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	value := `{"weights":[0.5,-1.25],"accuracy":0.93}`
	err := e.store.Apply(ctx, &store.Update{TaskID: id, Attempt: 1, Seq: 1, Fields: map[string]any{
		tasks.FieldState: "completed", tasks.FieldResultURL: "/api/v1/tasks/" + id + "/result",
		tasks.FieldResultType: "application/json", tasks.FieldResultValue: value,
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.do("GET", "/api/v1/tasks/"+id+"/result", tok, "")
	if d.status != 200 || string(d.body) != value || d.header.Get("Content-Type") != "application/json" ||
		d.header.Get("Content-Disposition") != `attachment; filename=export-`+id+`.json` {
		t.Fatalf("download: %d %q %v", d.status, d.body, d.header)
	}
	if g := e.do("GET", "/api/v1/tasks/"+id, tok, ""); !strings.Contains(string(g.body), `"value":`+value) {
		t.Fatalf("record %s", g.body)
	}
	// Another identity gets 404.
	if r := e.do("GET", "/api/v1/tasks/"+id+"/result", e.token(), ""); r.status != 404 {
		t.Fatalf("other identity: %d %s", r.status, r.body)
	}
}

func TestFileResultOfAnyType(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	r := e.do("POST", "/api/v1/tasks", tok, exportBody)
	id, _ := r.json(t)["id"].(string)
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	w, err := e.store.NewResultWriter(ctx, id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pdf := "%PDF-1.4 not really\n"
	_, _ = io.WriteString(w, pdf)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err = e.store.Apply(ctx, &store.Update{TaskID: id, Attempt: 1, Seq: 1, CommitResult: true, Fields: map[string]any{
		tasks.FieldState: "completed", tasks.FieldResultURL: "/api/v1/tasks/" + id + "/result",
		tasks.FieldResultBytes: len(pdf), tasks.FieldResultType: "application/pdf", tasks.FieldResultName: "Orders by country.pdf",
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.do("GET", "/api/v1/tasks/"+id+"/result", tok, "")
	if d.status != 200 || string(d.body) != pdf || d.header.Get("Content-Type") != "application/pdf" ||
		d.header.Get("Content-Disposition") != `attachment; filename="Orders by country.pdf"` || d.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d %q %v", d.status, d.body, d.header)
	}
}

func TestStreamsEndpoint(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	r := e.do("POST", "/api/v1/tasks", tok, exportBody)
	id, _ := r.json(t)["id"].(string)
	// Appended as a worker does: the list keeps the last items, the record
	// counts every item appended.
	appendItems := func(items ...string) {
		t.Helper()
		list := e.store.Keys().Task(id) + ":stream:metrics"
		args := make([]any, len(items))
		for i, it := range items {
			args[i] = it
		}
		p := e.rdb.TxPipeline()
		p.RPush(ctx, list, args...)
		p.LTrim(ctx, list, -tasks.MaxStreamItems, -1)
		p.HIncrBy(ctx, e.store.Keys().Task(id), tasks.FieldStreamPrefix+"metrics", int64(len(items)))
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Stream string            `json:"stream"`
		From   int64             `json:"from"`
		Count  int64             `json:"count"`
		Items  []json.RawMessage `json:"items"`
	}
	get := func(query string) (response, page) {
		t.Helper()
		r := e.do("GET", "/api/v1/tasks/"+id+"/streams/metrics"+query, tok, "")
		var p page
		if r.status == 200 {
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
		}
		return r, p
	}
	// Nothing appended yet: an empty stream.
	if r, p := get(""); r.status != 200 || p.Stream != "metrics" || p.From != 0 || p.Count != 0 || p.Items == nil || len(p.Items) != 0 {
		t.Fatalf("empty: %d %s", r.status, r.body)
	}
	appendItems(`{"epoch":1,"loss":0.9}`, `{"epoch":2,"loss":0.5}`, `{"epoch":3,"loss":0.25}`)
	if r, p := get(""); p.Count != 3 || len(p.Items) != 3 || string(p.Items[2]) != `{"epoch":3,"loss":0.25}` {
		t.Fatalf("all: %s", r.body)
	}
	if r, p := get("?from=2"); p.From != 2 || p.Count != 3 || len(p.Items) != 1 || string(p.Items[0]) != `{"epoch":3,"loss":0.25}` {
		t.Fatalf("from 2: %s", r.body)
	}
	if r, p := get("?from=9"); p.From != 3 || p.Count != 3 || len(p.Items) != 0 {
		t.Fatalf("from past the end: %s", r.body)
	}
	if r, p := get("?from=0&limit=2"); p.From != 0 || len(p.Items) != 2 {
		t.Fatalf("limit: %s", r.body)
	}
	// Past the kept window, the answer says where the kept items start.
	batch := make([]string, tasks.MaxStreamItems)
	for i := range batch {
		batch[i] = fmt.Sprintf(`{"epoch":%d}`, i+4)
	}
	appendItems(batch...)
	if r, p := get("?from=1"); p.From != 3 || p.Count != tasks.MaxStreamItems+3 || len(p.Items) != tasks.MaxStreamItems || string(p.Items[0]) != `{"epoch":4}` {
		t.Fatalf("window: from %d count %d items %d (%d)", p.From, p.Count, len(p.Items), r.status)
	}
	// Bad queries, bad names, other identities.
	for _, q := range []string{"?from=-1", "?from=x", "?limit=0", "?limit=10001"} {
		if r, _ := get(q); r.status != 400 || r.errorCode(t) != "bad_request" {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.do("GET", "/api/v1/tasks/"+id+"/streams/"+strings.Repeat("a", 65), tok, ""); r.status != 400 {
		t.Errorf("long name: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/api/v1/tasks/" + id + "/streams/metrics", "/api/v1/tasks/" + tasks.NewID() + "/streams/metrics"} {
		if r := e.do("GET", path, e.token(), ""); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/api/v1/tasks/"+id+"/streams/metrics", "", ""); r.status != 401 {
		t.Errorf("no session: %d", r.status)
	}
}
