package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/redistest"
)

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunBadConfiguration(t *testing.T) {
	var out strings.Builder
	err := Run(context.Background(), env(map[string]string{"TASK_TTL": "3600", "HTTP_ADDR": "nope"}), &out)
	cerr, ok := errors.AsType[*ConfigError](err)
	if !ok {
		t.Fatalf("Run: %v, want a *ConfigError", err)
	}
	for _, want := range []string{"TASK_TTL", "HTTP_ADDR"} {
		if !strings.Contains(cerr.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, cerr)
		}
	}
	if !strings.HasPrefix(err.Error(), "configuration: ") {
		t.Errorf("the error does not say it is the configuration: %v", err)
	}
}

// logLines returns stdout for Run and a channel of its JSON lines, decoded.
func logLines(t *testing.T) (io.WriteCloser, <-chan map[string]any) {
	t.Helper()
	r, w := io.Pipe()
	lines := make(chan map[string]any, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("log line is not JSON: %q", sc.Text())
				continue
			}
			lines <- m
		}
	}()
	t.Cleanup(func() { r.Close() })
	return w, lines
}

// waitMsg returns the first line with msg, failing after d.
func waitMsg(t *testing.T, lines <-chan map[string]any, msg string, d time.Duration) map[string]any {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the log ended before %q", msg)
			}
			if l["msg"] == msg {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q logged within %s", msg, d)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	rs := redistest.Start(t)
	stdout, lines := logLines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, env(map[string]string{
			"HTTP_ADDR": "127.0.0.1:0", "REDIS_URL": rs.URL, "TASKWIRE_PREFIX": "apptest",
			"SHUTDOWN_TIMEOUT": "2s",
		}), stdout)
		stdout.Close()
	}()
	listening := waitMsg(t, lines, "listening", 15*time.Second)
	url, _ := listening["url"].(string)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("listening at %q", url)
	}
	for _, path := range []string{"/readyz", "/healthz", "/api/v1/session"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the cancel")
	}
	waitMsg(t, lines, "stopped", time.Second)
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("the listener is still open after Run returned")
	}
}

func TestRunListenError(t *testing.T) {
	rs := redistest.Start(t)
	err := Run(context.Background(), env(map[string]string{"HTTP_ADDR": "256.0.0.1:1", "REDIS_URL": rs.URL}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run: %v, want a listen error", err)
	}
	if _, ok := errors.AsType[*ConfigError](err); ok {
		t.Fatalf("a listen error is not a configuration error: %v", err)
	}
}
