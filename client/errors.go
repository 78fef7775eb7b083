package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer of the taskwire API: the HTTP status and the
// stable code and message of its body {"error":{"code","message"}}.
//
// It matches, with errors.Is, the sentinel error of its code (ErrNotFound for
// "not_found"...). An answer that is not taskwire's JSON (a proxy's page) has
// an empty Code, its status text as Message, and matches no sentinel.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the stable, machine-readable reason ("not_found",
	// "invalid_params"...): one of the codes of the sentinel errors.
	Code string
	// Message says it for people.
	Message string
	// Details name the offending fields of a request: set for
	// "invalid_params" and "unknown_kind", and for the request's other
	// "bad_request" errors about its body.
	Details []FieldError
	// Known lists the kinds the server knows, for "unknown_kind".
	Known []string
	// RetryAfter is the answer's Retry-After ("rate_limited",
	// "unavailable"); 0 when it has none.
	RetryAfter time.Duration
}

// FieldError is one offending value of a request: its field ("params.rows",
// "kind", "subject") and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns "taskwire: <status> <code>: <message>".
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("taskwire: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("taskwire: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the sentinel error of e's code, nil for a code this package
// does not know.
func (e *Error) Unwrap() error {
	return sentinels[e.Code]
}

// codeError is the type of the sentinel errors: one API error code.
type codeError string

func (c codeError) Error() string { return "taskwire: " + string(c) }

// The sentinel errors, one per error code of the API. An *Error matches the
// one of its code: errors.Is(err, client.ErrNotFound).
var (
	// ErrBadRequest ("bad_request", 400): a malformed request, for example a
	// list without a subject or a viewer TTL out of bounds.
	ErrBadRequest error = codeError("bad_request")
	// ErrInvalidParams ("invalid_params", 400): the task's params do not
	// match its kind's schema; Error.Details names every offending field.
	ErrInvalidParams error = codeError("invalid_params")
	// ErrUnknownKind ("unknown_kind", 400): no worker ever registered the
	// kind; Error.Known lists the known kinds.
	ErrUnknownKind error = codeError("unknown_kind")
	// ErrUnauthorized ("unauthorized", 401): no token, or one the server
	// refuses (an unknown API key); the message says why.
	ErrUnauthorized error = codeError("unauthorized")
	// ErrForbidden ("forbidden", 403): the token may not do this (a viewer
	// token that tries to change something).
	ErrForbidden error = codeError("forbidden")
	// ErrOriginNotAllowed ("origin_not_allowed", 403): a browser request from
	// an origin the server does not allow.
	ErrOriginNotAllowed error = codeError("origin_not_allowed")
	// ErrNotFound ("not_found", 404): no such task (or endpoint).
	ErrNotFound error = codeError("not_found")
	// ErrMethodNotAllowed ("method_not_allowed", 405).
	ErrMethodNotAllowed error = codeError("method_not_allowed")
	// ErrBodyTimeout ("body_timeout", 408): the request body came too slowly.
	ErrBodyTimeout error = codeError("body_timeout")
	// ErrTaskFinished ("task_finished", 409): a cancel of a task that
	// completed or failed.
	ErrTaskFinished error = codeError("task_finished")
	// ErrBadFilter ("bad_filter", 400): an operator route's filter or paging
	// parameter that does not parse.
	ErrBadFilter error = codeError("bad_filter")
	// ErrTaskNotFailed ("task_not_failed", 409): an operator's retry of a
	// task that did not fail.
	ErrTaskNotFailed error = codeError("task_not_failed")
	// ErrConflict ("conflict", 409): an operator action on a task whose
	// record changed meanwhile; try again.
	ErrConflict error = codeError("conflict")
	// ErrNotFinished ("not_finished", 409): the result of a task that has
	// not finished yet, or an inbox ack naming one.
	ErrNotFinished error = codeError("not_finished")
	// ErrNoResult ("no_result", 409): the result of a task that did not
	// complete.
	ErrNoResult error = codeError("no_result")
	// ErrResultExpired ("result_expired", 410): the result is gone.
	ErrResultExpired error = codeError("result_expired")
	// ErrBodyTooLarge ("body_too_large", 413): the request body is over the
	// server's MAX_BODY_BYTES.
	ErrBodyTooLarge error = codeError("body_too_large")
	// ErrUnsupportedMediaType ("unsupported_media_type", 415): a body that is
	// not JSON.
	ErrUnsupportedMediaType error = codeError("unsupported_media_type")
	// ErrRateLimited ("rate_limited", 429): the subject starts tasks too fast;
	// Error.RetryAfter says when to try again.
	ErrRateLimited error = codeError("rate_limited")
	// ErrTooManyActiveTasks ("too_many_active_tasks", 429): the subject has
	// as many queued or running tasks as the server allows.
	ErrTooManyActiveTasks error = codeError("too_many_active_tasks")
	// ErrInternal ("internal", 500).
	ErrInternal error = codeError("internal")
	// ErrUnavailable ("unavailable", 503): the task store (Redis) does not
	// answer; try again.
	ErrUnavailable error = codeError("unavailable")
	// ErrKindUnavailable ("kind_unavailable", 503): the schema the kind's
	// workers published does not compile.
	ErrKindUnavailable error = codeError("kind_unavailable")
	// ErrNotReady ("not_ready", 503): the server's /readyz while it cannot
	// serve (Redis down, draining).
	ErrNotReady error = codeError("not_ready")
)

// sentinels maps every code to its sentinel error.
var sentinels = func() map[string]error {
	m := map[string]error{}
	for _, e := range []error{
		ErrBadRequest, ErrInvalidParams, ErrUnknownKind, ErrUnauthorized, ErrForbidden,
		ErrOriginNotAllowed, ErrNotFound, ErrMethodNotAllowed, ErrBodyTimeout, ErrTaskFinished,
		ErrNotFinished, ErrNoResult, ErrResultExpired, ErrBodyTooLarge, ErrUnsupportedMediaType,
		ErrRateLimited, ErrTooManyActiveTasks, ErrInternal, ErrUnavailable, ErrKindUnavailable,
		ErrNotReady, ErrBadFilter, ErrTaskNotFailed, ErrConflict,
	} {
		m[string(e.(codeError))] = e
	}
	return m
}()

// Codes returns every error code this package has a sentinel error for.
func Codes() []string {
	out := make([]string, 0, len(sentinels))
	for c := range sentinels {
		out = append(out, c)
	}
	return out
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error *struct {
		Code    string       `json:"code"`
		Message string       `json:"message"`
		Details []FieldError `json:"details"`
		Known   []string     `json:"known"`
	} `json:"error"`
}

// decodeError turns an error answer into an *Error.
func decodeError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	var b errorBody
	if err := json.Unmarshal(body, &b); err == nil && b.Error != nil && b.Error.Code != "" {
		e.Code, e.Message, e.Details, e.Known = b.Error.Code, b.Error.Message, b.Error.Details, b.Error.Known
		return e
	}
	e.Message = http.StatusText(resp.StatusCode)
	if snippet := strings.TrimSpace(string(body)); snippet != "" {
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		e.Message += ": " + snippet
	}
	return e
}

// ErrNoSubject is returned by Start, List, Inbox and AckInbox, without asking the server, when
// no subject is given: an API key always acts for a subject.
var ErrNoSubject = errors.New("taskwire: a subject is required (the identity of the app's user, for example \"u-42\")")
