package adminui

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/v2/socket"
)

func TestHandshakeSummaryKeepsNoSecret(t *testing.T) {
	h := &socket.Handshake{
		Headers: map[string][]string{
			"Cookie":        {"taskwire_session=v1.secret-cookie"},
			"Authorization": {"Bearer secret-bearer"},
			"User-Agent":    {"Mozilla/5.0 test"},
			"Origin":        {"https://app.example.com"},
			"X-Api-Key":     {"secret-key"},
		},
		Query:   map[string][]string{"token": {"secret-query"}, "EIO": {"4"}},
		Auth:    map[string]any{"token": "secret-auth"},
		Address: "192.0.2.7",
		Time:    "Mon Dec 07 2026",
		Issued:  1_800_000_000_000,
		Url:     "/socket.io/?EIO=4&transport=polling&t=abc&token=secret-url",
	}
	got := handshakeSummary(h)
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "secret") {
		t.Fatalf("summary shows a secret: %s", b)
	}
	headers := got["headers"].(map[string]any)
	if headers["user-agent"] != "Mozilla/5.0 test" || headers["origin"] != "https://app.example.com" || len(headers) != 2 {
		t.Errorf("headers = %v", headers)
	}
	if got["url"] != "/socket.io/?EIO=4&transport=polling" {
		t.Errorf("url = %v", got["url"])
	}
	if q := got["query"].(map[string]any); q["EIO"] != "4" || q["transport"] != "polling" || len(q) != 2 {
		t.Errorf("query = %v", q)
	}
	if got["address"] != "192.0.2.7" || got["issued"] != int64(1_800_000_000_000) {
		t.Errorf("summary = %v", got)
	}
}

func TestSocketData(t *testing.T) {
	type data struct {
		Identity string `json:"identity"`
		Token    string `json:"token"`
		Nested   any    `json:"nested"`
	}
	got := socketData(data{Identity: "alice", Token: "secret", Nested: map[string]any{"refreshToken": "secret", "n": 1}})
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "secret\"") || got["identity"] != "alice" {
		t.Fatalf("data = %s", b)
	}
	if len(socketData(strings.Repeat("x", 10))) != 0 || len(socketData(nil)) != 0 {
		t.Error("data that is not an object shows")
	}
	if got := socketData(map[string]any{"big": strings.Repeat("x", maxDataBytes)}); got["big"] != nil {
		t.Error("large data is shown")
	}
	// Unexported fields (the Admin UI's own session) never show.
	if got := socketData(adminData{issued: "s1.secret"}); len(got) != 0 {
		t.Errorf("admin data = %v", got)
	}
}

func TestEventArgs(t *testing.T) {
	ack := socket.Ack(func([]any, error) {})
	got := eventArgs([]any{"auth:refresh", map[string]any{"token": "secret"}, ack}, 1024)
	b, _ := json.Marshal(got)
	if string(b) != `["auth:refresh",{"token":"[redacted]"}]` {
		t.Errorf("auth:refresh shown as %s", b)
	}
	got = eventArgs([]any{"task:subscribe", map[string]any{"taskId": "t1"}}, 1024)
	if b, _ := json.Marshal(got); string(b) != `["task:subscribe",{"taskId":"t1"}]` {
		t.Errorf("task:subscribe shown as %s", b)
	}
	got = eventArgs([]any{"task:stream", strings.Repeat("x", 2000)}, 1024)
	if len(got) != 2 || got[0] != "task:stream" || !strings.Contains(got[1].(string), "bytes, not shown") {
		t.Errorf("large event shown as %v", got)
	}
	if eventArgs(nil, 10) != nil || eventArgs([]any{42}, 10) != nil {
		t.Error("an event without a name is shown")
	}
}

func TestLimiter(t *testing.T) {
	l := limiter{max: 3}
	now := testTime(0)
	n := 0
	for range 10 {
		if l.allow(now) {
			n++
		}
	}
	if n != 3 || l.droppedCount() != 7 {
		t.Fatalf("allowed %d, dropped %d", n, l.droppedCount())
	}
	if !l.allow(testTime(1)) {
		t.Fatal("the next second is refused")
	}
}

func TestAggregated(t *testing.T) {
	var a aggregated
	a.add(testTime(0), "rawConnection", "")
	a.add(testTime(0), "rawConnection", "")
	a.add(testTime(1), "rawDisconnection", "transport close")
	got := a.take()
	if len(got) != 2 {
		t.Fatalf("take = %v", got)
	}
	for _, e := range got {
		m := e.(map[string]any)
		switch m["type"] {
		case "rawConnection":
			if m["count"] != 2 || m["timestamp"] != int64(1_800_000_000_000) {
				t.Errorf("connections %v", m)
			}
		case "rawDisconnection":
			if m["count"] != 1 || m["subType"] != "transport close" {
				t.Errorf("disconnections %v", m)
			}
		}
	}
	if len(a.take()) != 0 {
		t.Error("take does not clear")
	}
}
