package build

// Code is one error code of the API with the status it comes with.
type Code struct {
	Code   string
	Status int
	// Means says when the server answers it.
	Means string
}

// Codes are every error code of the API (the client's sentinel errors and the
// handlers' writeError calls are checked against them by tests).
var Codes = []Code{
	{"bad_request", 400, "a malformed request: a bad query parameter, a body that is not what the route takes, a list without a subject for an API key"},
	{"invalid_params", 400, "the task's params do not match its kind's schema, or the envelope of the task request is wrong; `details` names every offending field"},
	{"unknown_kind", 400, "no worker ever registered the kind; `known` lists the known kinds"},
	{"unauthorized", 401, "no token, or a token the server refuses; the message says why"},
	{"forbidden", 403, "the token may not do this (a viewer token that tries to change something)"},
	{"origin_not_allowed", 403, "a request that changes something, or a preflight, from a browser origin the server does not allow"},
	{"not_found", 404, "no such task (a task of another identity is answered the same), no such endpoint, or anonymous sessions turned off"},
	{"method_not_allowed", 405, "the path exists, not with this method"},
	{"body_timeout", 408, "the request body came too slowly (BODY_READ_TIMEOUT)"},
	{"task_finished", 409, "a cancel of a task that completed or failed"},
	{"not_finished", 409, "the result of a task that has not finished yet"},
	{"no_result", 409, "the result of a task that did not complete"},
	{"bad_filter", 400, "an operator route's filter or paging parameter that does not parse, or one it does not know"},
	{"task_not_failed", 409, "an operator's retry of a task that did not fail"},
	{"conflict", 409, "an operator action on a task whose record changed meanwhile; try again"},
	{"result_expired", 410, "the result is no longer kept"},
	{"body_too_large", 413, "the request body is over MAX_BODY_BYTES"},
	{"unsupported_media_type", 415, "a request body that is not JSON"},
	{"rate_limited", 429, "the identity starts tasks too fast; Retry-After says when to try again"},
	{"too_many_active_tasks", 429, "the identity has as many queued or running tasks as MAX_ACTIVE_TASKS allows"},
	{"internal", 500, "a bug; the server logged it"},
	{"unavailable", 503, "the task store (Redis) does not answer; Retry-After: 1"},
	{"kind_unavailable", 503, "the schema the kind's workers published does not compile"},
	{"not_ready", 503, "/readyz while the server cannot serve (Redis unreachable, shutting down)"},
}

// codeStatus returns the status of code; it panics on a code not in Codes.
func codeStatus(code string) int {
	for _, c := range Codes {
		if c.Code == code {
			return c.Status
		}
	}
	panic("openapi: no error code " + code)
}

// codeMeans returns what code means.
func codeMeans(code string) string {
	for _, c := range Codes {
		if c.Code == code {
			return c.Means
		}
	}
	return ""
}
