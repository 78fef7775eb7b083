// Package build writes taskwire's OpenAPI 3.1 document: the operations of the
// HTTP API (this file) and the schemas of their bodies, reflected from the Go
// types the server encodes and decodes (schemas.go), so that the document
// cannot drift from the contract the Go server and the TypeScript client
// share. The server embeds the document it writes (package openapi); go
// generate ./internal/openapi writes it again.
package build

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// obj is a JSON object of the document.
type obj = map[string]any

// ref refers to the schema component name.
func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// operation is one route of the API.
type operation struct {
	method, path string
	id           string
	tag          string
	summary      string
	description  string
	// auth: the route needs a token (bearer or the session cookie).
	auth bool
	// operator: the route is of the operator API, opened by the operator
	// credential (ADMIN_TOKEN) only.
	operator bool
	params   []obj
	// body is the request body's schema; bodyOptional when it may be empty.
	body         obj
	bodyOptional bool
	// ok are the success answers by status.
	ok map[int]obj
	// errs are the error codes the route answers, beyond those every route
	// of its kind answers (see responses).
	errs []string
	// pending marks routes written on other branches, documented ahead of
	// them; see Pending.
	pending bool
}

// jsonAnswer is a JSON success answer with schema s.
func jsonAnswer(description string, s obj, headers ...obj) obj {
	a := obj{"description": description, "content": obj{"application/json": obj{"schema": s}}}
	if len(headers) > 0 {
		a["headers"] = headers[0]
	}
	return a
}

func header(description string, s obj) obj {
	return obj{"description": description, "schema": s}
}

var str = obj{"type": "string"}

func query(name, description string, s obj) obj {
	return obj{"name": name, "in": "query", "required": false, "description": description, "schema": s}
}

func pathParam(name, description string) obj {
	return obj{"name": name, "in": "path", "required": true, "description": description, "schema": str}
}

var taskID = pathParam("id", "The task's id (22 characters, URL-safe base64). A task of another identity is answered as one that does not exist (404).")

// operatorTaskID is the task of an operator route: any identity's.
var operatorTaskID = pathParam("id", "The task's id (22 characters, URL-safe base64), of any identity.")

// operatorAccess says who may call the operator routes, in each one's description.
const operatorAccess = " Only the operator credential opens it (the operator security scheme): 404 not_found when the " +
	"dashboard is off (ADMIN_TOKEN unset), 401 unauthorized without it or with a wrong one, 403 forbidden for a user token, API key, " +
	"session (bearer or cookie) or viewer token. Answers are Cache-Control: no-store."

// operatorAnswer is a success answer of an operator route, never cached.
func operatorAnswer(description string, s obj) obj {
	return jsonAnswer(description, s, obj{"Cache-Control": header("no-store", str)})
}

// operatorAge is a query parameter of GET /api/v1/admin/tasks that bounds the
// tasks' age.
func operatorAge(name, description string) obj {
	return query(name, description+" A Go duration, not negative: 90s, 15m, 2h, 1h30m.", str)
}

// operations are every route the server serves.
var operations = []operation{
	{
		method: "GET", path: "/healthz", id: "healthz", tag: "health",
		summary:     "Liveness",
		description: "Answers as long as the process serves HTTP; never depends on Redis.",
		ok:          map[int]obj{200: jsonAnswer("alive", ref("Status"))},
	},
	{
		method: "GET", path: "/readyz", id: "readyz", tag: "health",
		summary:     "Readiness",
		description: "Ready: Redis reachable and not shutting down. 503 not_ready otherwise, with the reason in the message.",
		ok:          map[int]obj{200: jsonAnswer("ready", ref("Status"))},
		errs:        []string{"not_ready"},
	},
	{
		method: "GET", path: "/metrics", id: "metrics", tag: "health",
		summary: "Prometheus metrics",
		ok: map[int]obj{200: {"description": "The metrics in the Prometheus text format.",
			"content": obj{"text/plain": obj{"schema": str}}}},
	},
	{
		method: "GET", path: "/api/v1/openapi.json", id: "getOpenAPI", tag: "meta",
		summary:     "This document",
		description: "Public and cacheable: Cache-Control public, an ETag, and 304 for If-None-Match with it.",
		ok: map[int]obj{
			200: jsonAnswer("The OpenAPI 3.1 document of the API.", obj{"type": "object", "required": []string{"openapi", "paths"}},
				obj{"ETag": header("The document's version.", str), "Cache-Control": header("public, max-age=3600", str)}),
			304: {"description": "The document has the ETag of If-None-Match.",
				"headers": obj{"ETag": header("The document's version.", str)}},
		},
	},
	{
		method: "GET", path: "/api/v1/session", id: "getSession", tag: "session",
		summary: "Anonymous session",
		description: "The caller's session token, a new identity when the request has no valid one; also set as the " +
			"HttpOnly cookie taskwire_session. A valid token sent back keeps its identity. 404 when anonymous sessions are turned off " +
			"(ANONYMOUS_SESSIONS=false): use the app's tokens then.",
		ok: map[int]obj{200: jsonAnswer("The session token.", ref("Session"),
			obj{"Set-Cookie": header("taskwire_session=<token>; Path=/; HttpOnly; SameSite=Lax (Secure over HTTPS)", str)})},
		errs: []string{"not_found"},
	},
	{
		method: "GET", path: "/api/v1/kinds", id: "listKinds", tag: "kinds",
		summary:     "The kinds of task",
		description: "Every kind the workers registered, by name, read from Redis for this request. Needs no token.",
		ok:          map[int]obj{200: jsonAnswer("The kinds.", ref("KindList"))},
		errs:        []string{"unavailable"},
	},
	{
		method: "POST", path: "/api/v1/tasks", id: "createTask", tag: "tasks", auth: true,
		summary: "Start a task",
		description: "Queues a task of a kind of GET /api/v1/kinds; params must match the kind's schema (defaults filled in). " +
			"With an API key, subject names the identity the task is for (required). A viewer token cannot start tasks (403).",
		body: ref("CreateTaskRequest"),
		ok: map[int]obj{202: jsonAnswer("Accepted and queued.", ref("CreatedTask"),
			obj{"Location": header("/api/v1/tasks/<id>", str)})},
		errs: []string{"bad_request", "invalid_params", "unknown_kind", "forbidden", "body_timeout", "body_too_large",
			"rate_limited", "too_many_active_tasks", "unavailable", "kind_unavailable"},
	},
	{
		method: "GET", path: "/api/v1/tasks", id: "listTasks", tag: "tasks", auth: true,
		summary:     "The caller's tasks",
		description: "The caller's recent tasks, newest first. With an API key, subject names the identity (required); a viewer gets its one task.",
		params:      []obj{query("subject", "With an API key: the identity whose tasks to list.", str)},
		ok:          map[int]obj{200: jsonAnswer("The tasks.", ref("TaskList"))},
		errs:        []string{"bad_request", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/tasks/{id}", id: "getTask", tag: "tasks", auth: true,
		summary: "A task's record",
		params:  []obj{taskID},
		ok:      map[int]obj{200: jsonAnswer("The task's record.", ref("TaskRecord"))},
		errs:    []string{"not_found", "unavailable"},
	},
	{
		method: "DELETE", path: "/api/v1/tasks/{id}", id: "cancelTask", tag: "tasks", auth: true,
		summary: "Cancel a task",
		description: "The owner or an API key (a viewer gets 403). A queued task never starts; a running one is stopped by its worker " +
			"within one progress step.",
		params: []obj{taskID},
		ok: map[int]obj{
			200: jsonAnswer("Cancelled: the task was queued, or already cancelled.", ref("TaskRecord")),
			202: jsonAnswer("The task is running: its worker was asked to stop it (cancelRequested).", ref("TaskRecord")),
		},
		errs: []string{"forbidden", "not_found", "task_finished", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/tasks/{id}/result", id: "getResult", tag: "tasks", auth: true,
		summary: "Download a task's result",
		description: "A file with the content type and name the worker gave it (export: text/csv), or a JSON result as application/json. " +
			"A viewer token needs allowResult.",
		params: []obj{taskID},
		ok: map[int]obj{200: {"description": "The result.",
			"headers": obj{"Content-Disposition": header("attachment; filename=...", str)},
			"content": obj{"*/*": obj{"schema": obj{}}}}},
		errs: []string{"forbidden", "not_found", "not_finished", "no_result", "result_expired", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/tasks/{id}/streams/{name}", id: "getStream", tag: "tasks", auth: true,
		summary: "Items of a task's stream",
		description: "The items of a stream of the task's current attempt from index from on. The last 10,000 items of a stream are kept: " +
			"when older ones were asked for, from says where the kept ones start. A stream nothing was appended to is empty.",
		params: []obj{taskID, pathParam("name", "The stream's name: 1 to 64 letters, digits, '.', '_' or '-'."),
			query("from", "The index of the first item wanted (default 0).", obj{"type": "integer", "minimum": 0}),
			query("limit", "The most items returned (1 to 10000).", obj{"type": "integer", "minimum": 1, "maximum": 10000})},
		ok:   map[int]obj{200: jsonAnswer("The items.", ref("StreamPage"))},
		errs: []string{"bad_request", "not_found", "unavailable"},
	},
	{
		method: "POST", path: "/api/v1/tasks/{id}/viewers", id: "createViewer", tag: "tasks", auth: true,
		summary: "A read-only token for one task",
		description: "For the task's owner or an API key. The viewer token subscribes to the task, reads its record and streams, and downloads " +
			"the result only with allowResult; it never cancels nor starts tasks, and any other task is 404 to it.",
		params:       []obj{taskID},
		body:         ref("ViewerRequest"),
		bodyOptional: true,
		ok:           map[int]obj{201: jsonAnswer("The viewer token.", ref("ViewerToken"))},
		errs:         []string{"bad_request", "forbidden", "not_found", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/tasks/{id}/events", id: "getTaskEvents", tag: "tasks", auth: true, pending: true,
		summary: "A task's events after a seq",
		description: "The events of the task's history after since (the seq of the last event the client has), oldest first. " +
			"recovered is false when some are no longer kept (reason): the record alone is authoritative then.",
		params: []obj{taskID,
			query("since", "The seq of the last event the client has (default 0).", obj{"type": "integer", "minimum": 0}),
			query("limit", "The most events returned.", obj{"type": "integer", "minimum": 1})},
		ok:   map[int]obj{200: jsonAnswer("The events.", ref("TaskEvents"))},
		errs: []string{"bad_request", "not_found", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/inbox", id: "getInbox", tag: "inbox", auth: true, pending: true,
		summary:     "Finished tasks not seen yet",
		description: "The caller's tasks that finished and that it has not marked seen (POST /api/v1/inbox/ack).",
		ok:          map[int]obj{200: jsonAnswer("The inbox.", ref("Inbox"))},
		errs:        []string{"forbidden", "unavailable"},
	},
	{
		method: "POST", path: "/api/v1/inbox/ack", id: "ackInbox", tag: "inbox", auth: true, pending: true,
		summary: "Mark inbox items seen",
		body:    ref("InboxAckRequest"),
		ok:      map[int]obj{200: jsonAnswer("The ids marked seen, now or before.", ref("InboxAckReply"))},
		errs:    []string{"bad_request", "forbidden", "body_too_large", "unavailable"},
	},
	{
		method: "GET", path: "/api/v1/admin/queue", id: "adminQueue", tag: "operator", operator: true,
		summary:     "The queues",
		description: "The queue of every registered kind (waiting, running, delayed for a retry, workers) and their totals." + operatorAccess,
		ok:          map[int]obj{200: operatorAnswer("The queues.", ref("AdminOverview"))},
	},
	{
		method: "GET", path: "/api/v1/admin/workers", id: "adminWorkers", tag: "operator", operator: true,
		summary:     "The live workers",
		description: "The workers whose heartbeat has not expired, by id." + operatorAccess,
		ok:          map[int]obj{200: operatorAnswer("The workers.", ref("AdminWorkerList"))},
	},
	{
		method: "GET", path: "/api/v1/admin/servers", id: "adminServers", tag: "operator", operator: true,
		summary:     "The live servers",
		description: "The servers whose heartbeat has not expired, by id, and the id of the one that answered." + operatorAccess,
		ok:          map[int]obj{200: operatorAnswer("The servers.", ref("AdminServerList"))},
	},
	{
		method: "GET", path: "/api/v1/admin/tasks", id: "adminTasks", tag: "operator", operator: true,
		summary: "Every identity's tasks, filtered",
		description: "A page of the tasks of the index of all tasks that match every filter given, newest first. One call looks at " +
			"20,000 index entries at most: a filter that matches few gets a short page with next set; pass next as cursor for the next " +
			"page (null at the end). An unknown parameter, one given twice, or a value that does not parse is 400 bad_filter." + operatorAccess,
		params: []obj{
			query("kind", "Only tasks of this kind.", obj{"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9._-]*$"}),
			query("state", "Only tasks in this state.", obj{"type": "string", "enum": []string{"queued", "running", "completed", "failed", "cancelled"}}),
			query("owner", "Only tasks of this identity (the owner of AdminTask).", obj{"type": "string", "minLength": 1, "maxLength": 256}),
			operatorAge("olderThan", "Only tasks created more than this long ago."),
			operatorAge("newerThan", "Only tasks created less than this long ago; with olderThan, it must be the longer of the two."),
			query("limit", "The most tasks of the page.", obj{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
			query("cursor", "Where the page starts: the next of the previous page.", str),
		},
		ok:   map[int]obj{200: operatorAnswer("The page.", ref("AdminTaskPage"))},
		errs: []string{"bad_filter"},
	},
	{
		method: "GET", path: "/api/v1/admin/tasks/{id}", id: "adminTask", tag: "operator", operator: true,
		summary:     "A task as the operator sees it",
		description: "The task's whole record with its owner, queue entry and retries; 404 not_found when it has none (or it expired)." + operatorAccess,
		params:      []obj{operatorTaskID},
		ok:          map[int]obj{200: operatorAnswer("The task.", ref("AdminTask"))},
	},
	{
		method: "GET", path: "/api/v1/admin/failures", id: "adminFailures", tag: "operator", operator: true,
		summary:     "The failed tasks, by error code",
		description: "The failed tasks among the newest 20,000 of the index, grouped by error code, most frequent first." + operatorAccess,
		ok:          map[int]obj{200: operatorAnswer("The groups.", ref("AdminFailures"))},
	},
	{
		method: "POST", path: "/api/v1/admin/tasks/{id}/cancel", id: "adminCancel", tag: "operator", operator: true,
		summary: "Cancel any task",
		description: "Cancels the task as its owner would: a queued task never starts (200), a running one is stopped by its worker " +
			"within one progress step (202, cancelRequested). No body (a body that is not JSON is 415)." + operatorAccess,
		params: []obj{operatorTaskID},
		ok: map[int]obj{
			200: operatorAnswer("Cancelled: the task was queued, or already cancelled.", ref("AdminTask")),
			202: operatorAnswer("The task is running: its worker was asked to stop it (cancelRequested).", ref("AdminTask")),
		},
		errs: []string{"task_finished", "unsupported_media_type"},
	},
	{
		method: "POST", path: "/api/v1/admin/tasks/{id}/retry", id: "adminRetry", tag: "operator", operator: true,
		summary: "Run a failed task again",
		description: "Puts a failed task back to queued for another series of attempts (maxAttempts grows by the task's first " +
			"maxAttempts, retries + 1) and queues it again; any other state is 409 task_not_failed. No body (a body that is not " +
			"JSON is 415)." + operatorAccess,
		params: []obj{operatorTaskID},
		ok:     map[int]obj{200: operatorAnswer("Queued again.", ref("AdminTask"))},
		errs:   []string{"task_not_failed", "unsupported_media_type"},
	},
	{
		method: "POST", path: "/api/v1/admin/purge", id: "adminPurge", tag: "operator", operator: true,
		summary: "Forget expired tasks",
		description: "Removes from the index of all tasks the entries whose record expired, looking at 100,000 at most from the oldest " +
			"(more: call again). No body (a body that is not JSON is 415)." + operatorAccess,
		ok:   map[int]obj{200: operatorAnswer("What was removed.", ref("AdminPurge"))},
		errs: []string{"unsupported_media_type"},
	},
}

// Pending are the routes the document has ahead of the branches that add them
// to the server: a test tolerates them not being served.
func Pending() []string {
	var out []string
	for _, op := range operations {
		if op.pending {
			out = append(out, op.method+" "+op.path)
		}
	}
	return out
}

// codesOf returns the error codes op answers: its own, and those every route of
// its kind answers.
func codesOf(op operation) []string {
	codes := slices.Clone(op.errs)
	if op.auth {
		codes = append(codes, "unauthorized")
	}
	if op.operator {
		// The dashboard off, no or a wrong credential, a user's token; Redis down.
		codes = append(codes, "not_found", "unauthorized", "forbidden", "unavailable")
	}
	if strings.HasPrefix(op.path, "/api/") && op.method != http.MethodGet {
		codes = append(codes, "origin_not_allowed")
	}
	if op.body != nil {
		codes = append(codes, "unsupported_media_type")
	}
	codes = append(codes, "internal")
	slices.Sort(codes)
	return slices.Compact(codes)
}

// responses returns the answers of op: its successes and one answer per error
// status, whose code is one of the codes op answers with that status.
func responses(op operation) obj {
	out := obj{}
	for status, a := range op.ok {
		out[strconv.Itoa(status)] = a
	}
	byStatus := map[int][]string{}
	for _, c := range codesOf(op) {
		byStatus[codeStatus(c)] = append(byStatus[codeStatus(c)], c)
	}
	for status, codes := range byStatus {
		var lines []string
		for _, c := range codes {
			lines = append(lines, "- `"+c+"`: "+codeMeans(c))
		}
		enum := make([]any, len(codes))
		for i, c := range codes {
			enum[i] = c
		}
		a := obj{
			"description": http.StatusText(status) + ":\n\n" + strings.Join(lines, "\n"),
			"content": obj{"application/json": obj{"schema": obj{"allOf": []any{
				ref("Error"),
				obj{"properties": obj{"error": obj{"properties": obj{"code": obj{"enum": enum}}}}},
			}}}},
		}
		if status == http.StatusUnauthorized && op.operator {
			a["headers"] = obj{"WWW-Authenticate": header(`Bearer realm="taskwire-operator"`, str)}
		}
		if status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && slices.Contains(codes, "unavailable")) {
			a["headers"] = obj{"Retry-After": header("Seconds to wait before trying again (rate_limited, unavailable).", obj{"type": "integer"})}
		}
		out[strconv.Itoa(status)] = a
	}
	return out
}

// Document returns the OpenAPI document, indented, with the schemas reflected
// from the Go types and the doc comments of the sources of the repository at
// root.
func Document(root string) ([]byte, error) {
	comps, err := schemas(root)
	if err != nil {
		return nil, err
	}
	paths := obj{}
	for _, op := range operations {
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			paths[op.path] = item
		}
		o := obj{
			"operationId": op.id,
			"tags":        []string{op.tag},
			"summary":     op.summary,
			"responses":   responses(op),
		}
		if op.description != "" {
			o["description"] = op.description
		}
		if op.pending {
			o["x-taskwire-pending"] = true
		}
		switch {
		case op.operator:
			o["security"] = []obj{{"operator": []string{}}}
		case op.auth:
			o["security"] = []obj{{"bearer": []string{}}, {"sessionCookie": []string{}}}
		default:
			o["security"] = []obj{}
		}
		if len(op.params) > 0 {
			o["parameters"] = op.params
		}
		if op.body != nil {
			o["requestBody"] = obj{"required": !op.bodyOptional, "content": obj{"application/json": obj{"schema": op.body}}}
		}
		method := strings.ToLower(op.method)
		if _, dup := item[method]; dup {
			return nil, fmt.Errorf("%s %s is twice in the operations", op.method, op.path)
		}
		item[method] = o
	}
	doc := obj{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": obj{
			"title":   "taskwire HTTP API",
			"version": "1",
			"description": "Start tasks, read their records and results; the live progress goes over Socket.IO (/socket.io/, see the README). " +
				"Every error is JSON, {\"error\":{\"code\",\"message\"}} with a stable code (the Error schema lists them all); " +
				"an unknown path under /api is 404 not_found, a known path with another method 405 method_not_allowed. " +
				"Tokens go in Authorization: Bearer (an anonymous session token, an app's JWT, a backend's API key, a viewer token); " +
				"the web app uses the session cookie instead. Browser requests from other origins need ALLOWED_ORIGINS.",
			"license": obj{"name": "MIT", "identifier": "MIT"},
		},
		"servers": []obj{{"url": "/"}},
		"tags": []obj{
			{"name": "tasks", "description": "Tasks and their results."},
			{"name": "kinds", "description": "The kinds of task the workers serve."},
			{"name": "inbox", "description": "Finished tasks the owner has not seen."},
			{"name": "session", "description": "Anonymous identities."},
			{"name": "health", "description": "Probes and metrics."},
			{"name": "meta", "description": "This document."},
			{"name": "operator", "description": "The operator dashboard's API, for the operator credential (ADMIN_TOKEN) only."},
		},
		"paths": paths,
		"components": obj{
			"schemas": comps,
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer",
					"description": "An anonymous session token (GET /api/v1/session), a JWT of the app, an API key or a viewer token."},
				"sessionCookie": obj{"type": "apiKey", "in": "cookie", "name": "taskwire_session",
					"description": "The web app's session cookie, set by GET /api/v1/session."},
				"operator": obj{"type": "http", "scheme": "bearer",
					"description": "The operator credential, the server's ADMIN_TOKEN, as Authorization: Bearer <ADMIN_TOKEN>; it opens " +
						"the operator routes (/api/v1/admin/) and nothing else. Without ADMIN_TOKEN the dashboard is off: every operator " +
						"route answers 404 not_found. No credential, or a wrong one: 401 unauthorized (WWW-Authenticate: Bearer " +
						"realm=\"taskwire-operator\"). A user token, API key, session (bearer or cookie) or viewer token: 403 forbidden, " +
						"they never open it."},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
