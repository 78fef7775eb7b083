package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/taskwire/taskwire/server/internal/admin"
	"github.com/taskwire/taskwire/server/internal/paramschema"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// The answers of the API that are not a type of their own in the server: the
// handlers write them as gin.H. Their schemas are reflected from these, and the
// contract test checks the server's answers against them.
type (
	// Status is the answer of /healthz ("ok") and /readyz ("ready").
	Status struct {
		Status string `json:"status" jsonschema:"enum=ok,enum=ready"`
	}
	// Session is the answer of GET /api/v1/session: the caller's session token,
	// also set as the HttpOnly cookie taskwire_session.
	Session struct {
		Token string `json:"token"`
	}
	// KindList is the answer of GET /api/v1/kinds.
	KindList struct {
		// Kinds are every kind the workers registered, by name.
		Kinds []taskservice.Kind `json:"kinds"`
	}
	// TaskList is the answer of GET /api/v1/tasks.
	TaskList struct {
		// Tasks are the caller's recent tasks, newest first.
		Tasks []tasks.Record `json:"tasks"`
	}
	// CreatedTask is the answer of POST /api/v1/tasks.
	CreatedTask struct {
		// ID is the new task's id (also in the Location header).
		ID    string      `json:"id"`
		State tasks.State `json:"state"`
	}
	// ViewerRequest is the optional body of POST /api/v1/tasks/{id}/viewers.
	ViewerRequest struct {
		// TTLSeconds is how long the token is valid: 1 to 604800 (7 days), 3600 by default.
		TTLSeconds int64 `json:"ttlSeconds,omitempty" jsonschema:"minimum=1,maximum=604800"`
		// AllowResult lets the viewer download the result (false by default).
		AllowResult bool `json:"allowResult,omitempty"`
	}
	// ViewerToken is the answer of POST /api/v1/tasks/{id}/viewers.
	ViewerToken struct {
		// Token is the read-only token of one task, sent as Authorization: Bearer.
		Token string `json:"token"`
		// ExpiresAt is when the token expires (RFC 3339).
		ExpiresAt time.Time `json:"expiresAt"`
		TaskID    string    `json:"taskId"`
	}
	// TaskEvents is the answer of GET /api/v1/tasks/{id}/events: the task's
	// events after since, from its history.
	TaskEvents struct {
		TaskID string `json:"taskId"`
		// Seq is the task's seq when the history was read.
		Seq int64 `json:"seq"`
		// Events are the events after since, oldest first, at most limit.
		Events []events.HistoryEvent `json:"events"`
		// Recovered is true when Events are all the events after since (up to
		// limit); false when some are no longer kept (Reason says why), and then
		// the task record alone is authoritative.
		Recovered bool `json:"recovered"`
		// Reason says why Recovered is false.
		Reason events.Reason `json:"reason,omitempty"`
		// Next, when more events follow than limit allowed, is the since of the
		// next page.
		Next *int64 `json:"next,omitempty"`
	}
	// Inbox is the answer of GET /api/v1/inbox: the caller's finished tasks not
	// marked seen yet.
	Inbox struct {
		Items []events.InboxEntry `json:"items"`
	}
	// AdminWorkerList is the answer of GET /api/v1/admin/workers.
	AdminWorkerList struct {
		// Workers are the live workers (heartbeat not expired), by id.
		Workers []store.WorkerInfo `json:"workers"`
	}
	// AdminServerList is the answer of GET /api/v1/admin/servers.
	AdminServerList struct {
		// Servers are the live servers (heartbeat not expired), by id.
		Servers []store.ServerInfo `json:"servers"`
		// Self is the id of the server that answered.
		Self string `json:"self"`
	}
	// AdminTaskPage is the answer of GET /api/v1/admin/tasks: one page of the
	// tasks that match the filters, newest first.
	AdminTaskPage struct {
		Tasks []store.IndexedTask `json:"tasks"`
		// Next is the cursor of the next page (the cursor parameter); null at
		// the end.
		Next *string `json:"next" jsonschema:"oneof_type=string;null"`
		// Scanned counts the index entries looked at; Expired those whose
		// record is gone (POST /api/v1/admin/purge removes them).
		Scanned int `json:"scanned"`
		Expired int `json:"expired"`
	}
	// AdminFailures is the answer of GET /api/v1/admin/failures.
	AdminFailures struct {
		// Groups are the failed tasks by error code, most frequent first.
		Groups []store.FailureGroup `json:"groups"`
		// Scanned counts the index entries looked at; More says that older
		// ones were not.
		Scanned int  `json:"scanned"`
		More    bool `json:"more"`
	}
	// AdminPurge is the answer of POST /api/v1/admin/purge.
	AdminPurge struct {
		// Removed counts the index entries removed (their record expired),
		// Scanned those looked at; More says that some were left unread: call
		// again.
		Removed int  `json:"removed"`
		Scanned int  `json:"scanned"`
		More    bool `json:"more"`
	}
	// ErrorBody is every error answer of the API.
	ErrorBody struct {
		Error ErrorObject `json:"error"`
	}
	// ErrorObject says what went wrong.
	ErrorObject struct {
		Code ErrorCode `json:"code"`
		// Message says it for people.
		Message string `json:"message"`
		// Details name the offending values of a request (invalid_params,
		// unknown_kind and the other errors about a task request's content).
		Details []paramschema.FieldError `json:"details,omitempty"`
		// Known lists the kinds the server knows (unknown_kind).
		Known []string `json:"known,omitempty"`
	}
	// ErrorCode is the stable, machine-readable reason of an error.
	ErrorCode string
)

// schemaNames are the component names of the reflected Go types: those of
// the TypeScript contract (shared/events/tsgen: package tasks's types get
// "Task" before their name) and of the web client (api.ts), so one type has
// one name everywhere.
var schemaNames = map[reflect.Type]string{
	reflect.TypeFor[taskservice.Kind]():          "KindEntry",
	reflect.TypeFor[taskservice.KindSettings]():  "KindSettings",
	reflect.TypeFor[taskservice.KindVersion]():   "KindVersion",
	reflect.TypeFor[taskservice.StreamPage]():    "StreamPage",
	reflect.TypeFor[taskservice.CreateRequest](): "CreateTaskRequest",
	reflect.TypeFor[paramschema.FieldError]():    "ErrorDetail",
	reflect.TypeFor[ErrorBody]():                 "Error",
	reflect.TypeFor[admin.Overview]():            "AdminOverview",
	reflect.TypeFor[store.IndexedTask]():         "AdminTask",
	reflect.TypeFor[store.KindQueue]():           "KindQueue",
	reflect.TypeFor[store.WorkerInfo]():          "WorkerInfo",
	reflect.TypeFor[store.ServerInfo]():          "ServerInfo",
	reflect.TypeFor[store.FailureGroup]():        "FailureGroup",
}

// rootTypes are the types whose schemas the document has, with every type
// they refer to.
var rootTypes = []reflect.Type{
	reflect.TypeFor[Status](), reflect.TypeFor[Session](), reflect.TypeFor[KindList](),
	reflect.TypeFor[TaskList](), reflect.TypeFor[tasks.Record](), reflect.TypeFor[CreatedTask](),
	reflect.TypeFor[taskservice.CreateRequest](), reflect.TypeFor[ViewerRequest](), reflect.TypeFor[ViewerToken](),
	reflect.TypeFor[taskservice.StreamPage](), reflect.TypeFor[TaskEvents](), reflect.TypeFor[Inbox](),
	reflect.TypeFor[events.InboxAckRequest](), reflect.TypeFor[events.InboxAckReply](), reflect.TypeFor[ErrorBody](),
	reflect.TypeFor[tasks.KindInfo](),
	reflect.TypeFor[admin.Overview](), reflect.TypeFor[AdminWorkerList](), reflect.TypeFor[AdminServerList](),
	reflect.TypeFor[AdminTaskPage](), reflect.TypeFor[store.IndexedTask](), reflect.TypeFor[AdminFailures](),
	reflect.TypeFor[AdminPurge](),
}

// typeName names the component of t.
func typeName(t reflect.Type) string {
	if n, ok := schemaNames[t]; ok {
		return n
	}
	if strings.HasSuffix(t.PkgPath(), "/shared/tasks") && t.Name() != "" {
		return "Task" + t.Name()
	}
	return ""
}

// mapType gives the schemas of the string types whose values are a closed set.
func mapType(t reflect.Type) *jsonschema.Schema {
	enum := func(vs ...any) *jsonschema.Schema { return &jsonschema.Schema{Type: "string", Enum: vs} }
	switch t {
	case reflect.TypeFor[tasks.State]():
		return enum(tasks.StateQueued, tasks.StateRunning, tasks.StateCompleted, tasks.StateFailed, tasks.StateCancelled)
	case reflect.TypeFor[events.Reason]():
		return enum(events.ReasonTrimmed, events.ReasonExpired)
	case reflect.TypeFor[ErrorCode]():
		vs := make([]any, len(Codes))
		for i, c := range Codes {
			vs[i] = c.Code
		}
		return enum(vs...)
	}
	return nil
}

// schemas reflects rootTypes, with the doc comments of the Go sources under
// root (the repository) as descriptions, into the document's components: a
// schema of each named type, referred to as #/components/schemas/<name>.
func schemas(root string) (map[string]json.RawMessage, error) {
	r := &jsonschema.Reflector{Anonymous: true, Namer: typeName, Mapper: mapType}
	if err := comments(r, root, "shared", "server/internal"); err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for _, t := range rootTypes {
		s := r.ReflectFromType(t)
		for name, def := range s.Definitions {
			b, err := json.Marshal(def)
			if err != nil {
				return nil, err
			}
			b = bytes.ReplaceAll(b, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`))
			if prev, ok := out[name]; ok && !bytes.Equal(prev, b) {
				return nil, fmt.Errorf("two types are named %s", name)
			}
			out[name] = b
		}
	}
	return out, nil
}

// modulePrefix starts the import paths of the repository's packages.
const modulePrefix = "github.com/taskwire/taskwire/"

// comments adds the doc comments of the packages under the directories dirs
// of the repository at root to r.
func comments(r *jsonschema.Reflector, root string, dirs ...string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	// AddGoComments names a package base/<the directory it walked>: walk by
	// absolute path, then put the import path in place of the directory.
	const base = "x"
	for _, dir := range dirs {
		if err := r.AddGoComments(base, filepath.Join(abs, dir)); err != nil {
			return fmt.Errorf("doc comments of %s: %w", dir, err)
		}
	}
	from := path.Join(base, filepath.ToSlash(abs)) + "/"
	for k, v := range r.CommentMap {
		if rest, ok := strings.CutPrefix(k, from); ok {
			delete(r.CommentMap, k)
			r.CommentMap[modulePrefix+rest] = v
		}
	}
	return nil
}
