package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// start runs taskwire-echo with args on a free port and returns its base URL.
func start(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(args, "-addr", "127.0.0.1:0"), pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	return "http://127.0.0.1:" + port
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func handshake(t *testing.T, url string) (sid string, open map[string]any) {
	t.Helper()
	code, body := do(t, http.MethodGet, url+"?EIO=4&transport=polling", "")
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"pingInterval": 300, "pingTimeout": 200, "maxPayload": 1e6} {
		if open[k] != want {
			t.Errorf("%s = %v, want %v", k, open[k], want)
		}
	}
	return open["sid"].(string), open
}

func TestEngineIOEcho(t *testing.T) {
	base := start(t, "-protocol", "engineio") + "/engine.io/"
	sid, _ := handshake(t, base)
	url := base + "?EIO=4&transport=polling&sid=" + sid
	if code, body := do(t, http.MethodPost, url, "40\x1e4hello"); code != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", code, body)
	}
	// A plain engine: "0" is a message like any other, echoed as it came.
	if code, body := do(t, http.MethodGet, url, ""); code != 200 || body != "40\x1e4hello" {
		t.Fatalf("GET: %d %q", code, body)
	}
}

func TestSocketIOEcho(t *testing.T) {
	base := start(t, "-protocol", "socketio") + "/socket.io/"
	sid, _ := handshake(t, base)
	url := base + "?EIO=4&transport=polling&sid=" + sid
	if code, _ := do(t, http.MethodPost, url, "40"); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	var got []string
	for len(got) < 2 {
		code, body := do(t, http.MethodGet, url, "")
		if code != 200 {
			t.Fatalf("GET: %d %q", code, body)
		}
		got = append(got, strings.Split(body, "\x1e")...)
	}
	if !strings.HasPrefix(got[0], `40{"sid":`) || got[1] != `42["auth",{}]` {
		t.Fatalf("packets %q", got)
	}
	if code, _ := do(t, http.MethodPost, url, `421["message-with-ack","a",2]`); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	if code, body := do(t, http.MethodGet, url, ""); code != 200 || body != `431["a",2]` {
		t.Fatalf("ack: %d %q", code, body)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-protocol", "mqtt"},
		{"-protocol", "engineio", "-redis", "redis://127.0.0.1:6379/0"},
		{"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
