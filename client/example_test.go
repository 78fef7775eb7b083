package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taskwire/taskwire/client"
)

// fakeTaskwire stands in for a taskwire server in the examples: it knows one
// task, "t1", of subject "u-42".
func fakeTaskwire() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer twk_example" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"unknown API key"}}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/tasks" && strings.Contains(string(body), `"kind":"pdf"`):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"code":"unknown_kind","message":"kind: unknown kind \"pdf\"; known kinds: \"export\"","known":["export"]}}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/tasks":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"t1","state":"queued"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/tasks/t1":
			_, _ = io.WriteString(w, `{"taskId":"t1","kind":"export","state":"running","percent":42.5,"done":425,"total":1000}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/tasks/t0":
			_, _ = io.WriteString(w, `{"taskId":"t0","kind":"export","state":"completed","percent":100,"done":1000,"total":1000,`+
				`"finishedAt":"2026-01-02T03:00:00Z","deliveredAt":"2026-01-02T03:00:00.25Z","seenAt":"2026-01-02T03:10:00Z"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/inbox" && r.URL.Query().Get("subject") == "u-42":
			_, _ = io.WriteString(w, `{"items":[{"taskId":"t9","kind":"export","state":"failed","seq":7,"finishedAt":"2026-01-02T03:00:00Z",`+
				`"error":{"code":"worker_lost","message":"the worker stopped"}}]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/inbox/ack" && strings.Contains(string(body), `"t9"`):
			_, _ = io.WriteString(w, `{"taskIds":["t9"]}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/tasks" && r.URL.Query().Get("subject") == "u-42":
			_, _ = io.WriteString(w, `{"tasks":[{"taskId":"t1","kind":"export","state":"running"}]}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/tasks":
			_, _ = io.WriteString(w, `{"tasks":[]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/tasks/t1/viewers":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"token":"eyJhbGciOi...","expiresAt":"2026-01-02T04:00:00Z","taskId":"t1"}`)
		case r.Method == http.MethodDelete && r.URL.Path == "/api/v1/tasks/t1":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"taskId":"t1","kind":"export","state":"running","cancelRequested":true}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no such task"}}`)
		}
	}))
}

// A backend starts a task for one of its users; the user's page follows it
// live with @taskwire/client and the JWT of that user.
func Example() {
	srv := fakeTaskwire() // a taskwire server
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL, "twk_example")
	if err != nil {
		log.Fatal(err)
	}
	started, err := c.Start(ctx, "export", map[string]any{"rows": 1000}, client.ForSubject("u-42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("started", started.ID, started.State)

	task, err := c.Get(ctx, started.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s, %.1f%% (%d of %d)\n", task.ID, task.State, task.Percent, task.Done, task.Total)
	// Output:
	// started t1 queued
	// t1: running, 42.5% (425 of 1000)
}

func ExampleNew() {
	c, err := client.New("https://tasks.example.com", "twk_...",
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	_ = c
	_, err = client.New("tasks.example.com", "twk_...")
	fmt.Println(err)
	// Output:
	// taskwire: base URL "tasks.example.com" must be http:// or https:// with a host
}

func ExampleClient_Start() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	_, err := c.Start(context.Background(), "pdf", nil, client.ForSubject("u-42"))
	var e *client.Error
	if errors.Is(err, client.ErrUnknownKind) && errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Known)
	}
	// Output:
	// 400 unknown_kind [export]
}

func ExampleClient_Get() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	if _, err := c.Get(context.Background(), "nope"); errors.Is(err, client.ErrNotFound) {
		fmt.Println("no such task:", err)
	}
	// Output:
	// no such task: taskwire: 404 not_found: no such task
}

func ExampleClient_List() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	for _, subject := range []string{"u-42", "u-7"} {
		list, err := c.List(context.Background(), subject)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(subject, "has", len(list), "tasks")
	}
	// Output:
	// u-42 has 1 tasks
	// u-7 has 0 tasks
}

// Whether the user saw a task's outcome: DeliveredAt is when a page of theirs
// got the final event, SeenAt when they marked it seen.
func ExampleClient_Get_delivery() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	task, err := c.Get(context.Background(), "t0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("delivered", task.DeliveredAt.Sub(*task.FinishedAt), "after the finish")
	fmt.Println("seen at", task.SeenAt.Format(time.Kitchen))
	// Output:
	// delivered 250ms after the finish
	// seen at 3:10AM
}

// A backend tells its user by e-mail about the tasks that finished while
// no page of theirs was open, then marks them seen.
func ExampleClient_Inbox() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")
	ctx := context.Background()

	items, err := c.Inbox(ctx, "u-42")
	if err != nil {
		log.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		fmt.Println(it.TaskID, it.Kind, it.State, it.Error.Code) // ... the e-mail ...
		ids = append(ids, it.TaskID)
	}
	seen, err := c.AckInbox(ctx, "u-42", ids...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("marked seen:", seen)
	// Output:
	// t9 export failed worker_lost
	// marked seen: [t9]
}

func ExampleClient_Cancel() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	task, err := c.Cancel(context.Background(), "t1")
	switch {
	case errors.Is(err, client.ErrTaskFinished):
		fmt.Println("too late: it finished")
	case err != nil:
		log.Fatal(err)
	case task.State == client.StateCancelled:
		fmt.Println("cancelled before it started")
	case task.CancelRequested:
		fmt.Println("its worker stops it")
	}
	// Output:
	// its worker stops it
}

func ExampleClient_Viewer() {
	srv := fakeTaskwire()
	defer srv.Close()
	c, _ := client.New(srv.URL, "twk_example")

	v, err := c.Viewer(context.Background(), "t1", time.Hour, false)
	if err != nil {
		log.Fatal(err)
	}
	// Give v.Token to the page of someone who may watch this one task.
	fmt.Println(v.TaskID, v.ExpiresAt.Format(time.RFC3339))
	// Output:
	// t1 2026-01-02T04:00:00Z
}

func ExampleSignUserToken() {
	secret := []byte("a secret of at least 32 bytes, shared with the server") // TASKWIRE_JWT_SECRET
	token, err := client.SignUserToken(secret, "u-42", 5*time.Minute, client.WithIssuer("my-app"))
	if err != nil {
		log.Fatal(err)
	}
	// What the server reads of it:
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("my-app"), jwt.WithExpirationRequired())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject, claims.ExpiresAt.Sub(claims.IssuedAt.Time))
	// Output:
	// u-42 5m0s
}
