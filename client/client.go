// Package client is the Go client of the taskwire HTTP API for an app's
// backend: it starts tasks for the app's users, reads and lists them, cancels
// them and makes read-only viewer tokens, with an API key; and it signs the
// JWTs that the app's pages give to @taskwire/client (SignUserToken).
//
// The server knows the key by its SHA-256 in TASKWIRE_API_KEYS
// ("name:sha256hex", made by `taskwire-server apikey new NAME`). A task started
// with a key belongs to the subject it names (ForSubject): the user whose JWT
// has that "sub" follows it live in the browser, and sees it in its list.
//
//	c, err := client.New("http://localhost:8080", os.Getenv("TASKWIRE_API_KEY"))
//	task, err := c.Start(ctx, "export", map[string]any{"rows": 1000}, client.ForSubject("u-42"))
//	rec, err := c.Get(ctx, task.ID)
//
// Error answers are *Error values, which match the sentinel error of their
// code with errors.Is (ErrNotFound, ErrInvalidParams, ...).
//
// The package needs only the standard library and github.com/golang-jwt/jwt/v5.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds each request of a Client made without WithHTTPClient.
const DefaultTimeout = 30 * time.Second

// maxAnswerBytes bounds what is read of an answer (records are small; a list
// holds at most a few hundred of them).
const maxAnswerBytes = 16 << 20

// Client calls the taskwire API with an API key. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	apiKey string
	hc     *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc (its timeout,
// transport, proxy...). The default is a client with DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// New returns a Client of the taskwire server at baseURL
// ("https://tasks.example.com", possibly with a path prefix under which a
// proxy serves it) that authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("taskwire: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("taskwire: base URL %q must be http:// or https:// with a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("taskwire: base URL %q must have no query or fragment", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("taskwire: no API key (taskwire-server apikey new NAME makes one)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, apiKey: apiKey, hc: &http.Client{Timeout: DefaultTimeout}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// State is where a task is in its life.
type State string

// The task states. Completed, failed and cancelled are final.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Final reports whether s is a final state: the task never changes again.
func (s State) Final() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Task is the record of a task, as GET /api/v1/tasks/<id> answers it.
type Task struct {
	ID    string `json:"taskId"`
	Kind  string `json:"kind"`
	State State  `json:"state"`
	// Seq increases with every event published for the task.
	Seq     int64   `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	// Stage is the id of the current stage; StageMessage says it for people.
	Stage        string `json:"stage,omitempty"`
	StageMessage string `json:"stageMessage,omitempty"`
	// EtaSeconds is the estimated time left, when the worker can tell.
	EtaSeconds *float64 `json:"etaSeconds,omitempty"`
	// Attempts counts the runs started so far; MaxAttempts bounds it.
	Attempts    int `json:"attempts"`
	MaxAttempts int `json:"maxAttempts"`
	// NextAttemptAt is set while a retry is scheduled.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	// CancelRequested says a cancel of the running task was asked for; its
	// worker stops it and the state becomes cancelled.
	CancelRequested bool `json:"cancelRequested,omitempty"`
	// Params are the task's parameters as stored, defaults filled in.
	Params     json.RawMessage `json:"params,omitempty"`
	CreatedAt  time.Time       `json:"createdAt"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	Result     *Result         `json:"result,omitempty"`
	Error      *TaskError      `json:"error,omitempty"`
	// Metadata is the merged metadata of the current attempt (a JSON object).
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Streams counts the items of each stream of the current attempt.
	Streams map[string]int64 `json:"streams,omitempty"`
	// SchemaHash is the version of the kind the params were checked against.
	SchemaHash string `json:"schemaHash,omitempty"`
	// NoLiveWorker says no live worker served the kind when the task was
	// created: it waits until one starts.
	NoLiveWorker bool `json:"noLiveWorker,omitempty"`
	// QueuePosition is, for a waiting task, how many tasks of its kind are
	// ahead of it.
	QueuePosition *int `json:"queuePosition,omitempty"`
	// DeliveredAt is when a page of the owner first confirmed that it had
	// the task's final event (@taskwire/client does it on its own).
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	// SeenAt is when the owner first marked the task's inbox item seen.
	SeenAt *time.Time `json:"seenAt,omitempty"`
}

// Result describes the output of a completed task.
type Result struct {
	// URL is where the result is downloaded, relative to the server.
	URL         string `json:"url"`
	Rows        int64  `json:"rows"`
	Bytes       int64  `json:"bytes"`
	ContentType string `json:"contentType"`
	Filename    string `json:"filename"`
	// Value is a JSON result (a file result has none).
	Value json.RawMessage `json:"value,omitempty"`
}

// TaskError says why a task failed: a stable code ("worker_lost",
// "result_too_large"...) and a message.
type TaskError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Started is the answer to Start: the new task's id and state ("queued").
type Started struct {
	ID    string `json:"id"`
	State State  `json:"state"`
}

// StartOption configures Start.
type StartOption func(*startRequest)

// ForSubject names the identity the task is for: the "sub" of the JWTs of
// the user who follows it. It is required.
func ForSubject(subject string) StartOption {
	return func(r *startRequest) { r.Subject = subject }
}

// startRequest is the body of POST /api/v1/tasks.
type startRequest struct {
	Kind    string `json:"kind"`
	Params  any    `json:"params,omitempty"`
	Subject string `json:"subject"`
}

// Start starts a task of kind with params (any value that encodes to a JSON
// object; nil for the schema's defaults) for the subject named by
// ForSubject, which is required. Bad params answer an *Error matching
// ErrInvalidParams, an unknown kind one matching ErrUnknownKind.
func (c *Client) Start(ctx context.Context, kind string, params any, opts ...StartOption) (*Started, error) {
	req := startRequest{Kind: kind, Params: params}
	for _, o := range opts {
		o(&req)
	}
	if req.Subject == "" {
		return nil, ErrNoSubject
	}
	var out Started
	if err := c.do(ctx, http.MethodPost, "/api/v1/tasks", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns the record of task id. A task that does not exist answers an
// *Error matching ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*Task, error) {
	var out Task
	if err := c.do(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns the recent tasks of subject, newest first.
func (c *Client) List(ctx context.Context, subject string) ([]*Task, error) {
	if subject == "" {
		return nil, ErrNoSubject
	}
	var out struct {
		Tasks []*Task `json:"tasks"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/tasks", url.Values{"subject": {subject}}, nil, &out); err != nil {
		return nil, err
	}
	return out.Tasks, nil
}

// Cancel cancels task id and returns its record: cancelled when it was
// queued (it never starts) or already cancelled; still running with
// CancelRequested set when it runs (its worker stops it within one progress
// step). A task that completed or failed answers an *Error matching
// ErrTaskFinished.
func (c *Client) Cancel(ctx context.Context, id string) (*Task, error) {
	var out Task
	if err := c.do(ctx, http.MethodDelete, "/api/v1/tasks/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InboxItem is a finished task that its owner has not marked seen yet.
type InboxItem struct {
	TaskID     string    `json:"taskId"`
	Kind       string    `json:"kind"`
	State      State     `json:"state"`
	Seq        int64     `json:"seq"`
	FinishedAt time.Time `json:"finishedAt"`
	// Error says why a failed task failed.
	Error *TaskError `json:"error,omitempty"`
}

// MaxInboxAck is the most task ids one AckInbox may name.
const MaxInboxAck = 100

// Inbox returns the inbox of subject: its finished tasks (completed, failed
// or cancelled) that it has not marked seen, newest first. Items expire with
// their task. A backend reads it to notify its user another way (an e-mail
// for a task that finished while no page was open, say).
func (c *Client) Inbox(ctx context.Context, subject string) ([]*InboxItem, error) {
	if subject == "" {
		return nil, ErrNoSubject
	}
	var out struct {
		Items []*InboxItem `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/inbox", url.Values{"subject": {subject}}, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// AckInbox marks the inbox items of ids (1 to MaxInboxAck tasks of subject)
// seen, all or none: each task's SeenAt is set, the first time only, and it
// leaves the inbox. It returns the ids marked. An id that is not a task of
// subject answers an *Error matching ErrNotFound, one of a task not finished
// ErrNotFinished; then nothing was marked.
func (c *Client) AckInbox(ctx context.Context, subject string, ids ...string) ([]string, error) {
	if subject == "" {
		return nil, ErrNoSubject
	}
	var out struct {
		TaskIDs []string `json:"taskIds"`
	}
	body := map[string][]string{"taskIds": ids}
	if err := c.do(ctx, http.MethodPost, "/api/v1/inbox/ack", url.Values{"subject": {subject}}, body, &out); err != nil {
		return nil, err
	}
	return out.TaskIDs, nil
}

// ViewerToken is a read-only token for one task, for someone who is not its
// owner: a page given it (as @taskwire/client's token) follows the task live
// and reads its record, and its result when allowed.
type ViewerToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	TaskID    string    `json:"taskId"`
}

// Viewer makes a viewer token for task id that lives ttl (0: the server's
// default, an hour; whole seconds, rounded up; at most 7 days) and, with
// allowResult, lets its holder download the result.
func (c *Client) Viewer(ctx context.Context, id string, ttl time.Duration, allowResult bool) (*ViewerToken, error) {
	if ttl < 0 {
		return nil, errors.New("taskwire: a viewer token's ttl must not be negative")
	}
	body := map[string]any{"allowResult": allowResult}
	if ttl > 0 {
		body["ttlSeconds"] = int64((ttl + time.Second - 1) / time.Second)
	}
	var out ViewerToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/viewers", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// do sends one request, with in encoded as its JSON body when not nil, and
// decodes a 2xx answer into out or returns the *Error of another.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	target := c.base.String() + path // path has its parts escaped
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("taskwire: encode the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("taskwire: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("taskwire: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("taskwire: %s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("taskwire: %s %s: decode the answer: %w", method, path, err)
	}
	return nil
}
