package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/taskwire/taskwire/server/internal/metrics"
	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/transport"
)

// family returns the gathered family name of m's registry, failing when absent.
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric family %s", name)
	return nil
}

// sample returns the metric of family name whose labels are exactly labels
// (name, value pairs); nil when there is none.
func sample(t *testing.T, m *metrics.Metrics, name string, labels ...string) *dto.Metric {
	t.Helper()
	for _, s := range family(t, m, name).GetMetric() {
		if hasLabels(s, labels) {
			return s
		}
	}
	return nil
}

func hasLabels(s *dto.Metric, labels []string) bool {
	if len(s.GetLabel())*2 != len(labels) {
		return false
	}
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value returns the value of a counter or gauge sample (0 when absent).
func value(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	s := sample(t, m, name, labels...)
	switch {
	case s == nil:
		return 0
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// histogram returns the count and sum of a histogram sample.
func histogram(t *testing.T, m *metrics.Metrics, name string, labels ...string) (uint64, float64) {
	t.Helper()
	s := sample(t, m, name, labels...)
	if s == nil {
		return 0, 0
	}
	return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
}

func TestHTTPRequestsAndTasks(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	m.Request("POST", "/api/v1/tasks", 202, 3*time.Millisecond)
	m.Request("POST", "/api/v1/tasks", 202, 5*time.Millisecond)
	m.Request("POST", "/api/v1/tasks", 400, time.Millisecond)
	m.Request("GET", "/socket.io/*any", 200, 25*time.Second)
	m.TaskEnqueued("export")
	m.TaskEnqueued("export")

	if got := value(t, m, "taskwire_http_requests_total", "method", "POST", "route", "/api/v1/tasks", "status", "202"); got != 2 {
		t.Errorf("POST /api/v1/tasks 202 = %v, want 2", got)
	}
	if got := value(t, m, "taskwire_http_requests_total", "method", "POST", "route", "/api/v1/tasks", "status", "400"); got != 1 {
		t.Errorf("POST /api/v1/tasks 400 = %v, want 1", got)
	}
	if got := value(t, m, "taskwire_http_requests_total", "method", "GET", "route", "/socket.io/*any", "status", "200"); got != 1 {
		t.Errorf("socket.io requests = %v, want 1", got)
	}
	n, sum := histogram(t, m, "taskwire_http_request_duration_seconds", "method", "POST", "route", "/api/v1/tasks")
	if n != 3 || sum < 0.0089 || sum > 0.0091 {
		t.Errorf("duration of POST /api/v1/tasks: count %d sum %v, want 3 and 0.009", n, sum)
	}
	if s := sample(t, m, "taskwire_http_request_duration_seconds", "method", "GET", "route", "/socket.io/*any"); s != nil {
		t.Errorf("socket.io requests have a duration: %v", s)
	}
	if got := value(t, m, "taskwire_tasks_enqueued_total", "kind", "export"); got != 2 {
		t.Errorf("tasks enqueued = %v, want 2", got)
	}
}

func TestSentCountsEventsAndObservesTheirDelay(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	m := metrics.New(&metrics.Options{NoRuntime: true, Now: func() time.Time { return now }})
	ms := now.UnixMilli()

	// As the msgpack decoder delivers the worker's payloads (positive integers
	// come as unsigned), and as other decoders might.
	m.Sent("task:progress", []any{map[string]any{"taskId": "t", "emittedAt": uint64(ms - 7)}})
	m.Sent("task:progress", []any{map[string]any{"taskId": "t", "emittedAt": int64(ms - 3)}})
	m.Sent("task:completed", []any{map[string]any{"taskId": "t", "emittedAt": float64(ms - 1500)}})
	// A clock ahead of ours counts as no delay.
	m.Sent("task:failed", []any{map[string]any{"taskId": "t", "emittedAt": int64(ms + 50)}})
	// Counted, no delay: no emittedAt, a bad one, not a map, no arguments.
	m.Sent("task:state", []any{map[string]any{"taskId": "t"}})
	m.Sent("task:progress", []any{map[string]any{"emittedAt": "yesterday"}})
	m.Sent("task:progress", []any{"text"})
	m.Sent("task:progress", nil)
	// Somebody else's events share one label.
	m.Sent("chat:message", []any{map[string]any{"emittedAt": int64(ms - 2)}})
	m.Sent("another", nil)

	for _, c := range []struct {
		event string
		sent  float64
		n     uint64
		sum   float64
	}{
		{"task:progress", 5, 2, 0.010},
		{"task:completed", 1, 1, 1.5},
		{"task:failed", 1, 1, 0},
		{"task:state", 1, 0, 0},
		{"task:cancelled", 0, 0, 0},
		{metrics.OtherEvent, 2, 1, 0.002},
	} {
		if got := value(t, m, "taskwire_socketio_events_sent_total", "event", c.event); got != c.sent {
			t.Errorf("events sent %s = %v, want %v", c.event, got, c.sent)
		}
		n, sum := histogram(t, m, "taskwire_event_delay_seconds", "event", c.event)
		if n != c.n || sum < c.sum-1e-9 || sum > c.sum+1e-9 {
			t.Errorf("delay of %s: count %d sum %v, want %d and %v", c.event, n, sum, c.n, c.sum)
		}
	}
	// Every taskwire event has its series from the start, at 0.
	if s := sample(t, m, "taskwire_socketio_events_sent_total", "event", "task:cancelled"); s == nil {
		t.Error("no task:cancelled series before the first one")
	}
}

func TestSessionsAndConnects(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	m.SessionOpened("polling")
	m.SessionOpened("polling")
	m.SessionOpened("websocket")
	m.SessionOpened("carrier-pigeon")
	m.SessionUpgraded("websocket")
	m.Connected()
	m.Refused(realtime.RefusedUnauthorized)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"taskwire_socketio_sessions_opened_total", []string{"transport", "polling"}, 2},
		{"taskwire_socketio_sessions_opened_total", []string{"transport", "websocket"}, 1},
		{"taskwire_socketio_sessions_opened_total", []string{"transport", "other"}, 1},
		{"taskwire_socketio_upgrades_total", []string{"transport", "websocket"}, 1},
		{"taskwire_socketio_connects_total", nil, 1},
		{"taskwire_socketio_connect_errors_total", []string{"reason", "unauthorized"}, 1},
		{"taskwire_socketio_connect_errors_total", []string{"reason", "shutting_down"}, 0},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestWatchReadsRealtimeStatsAtEveryScrape(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	st := realtime.Stats{
		Sockets:    3,
		Transports: map[string]int{"websocket": 3, "x": 1, "y": 2},
		Adapter: redisadapter.Stats{Published: 1, PublishErrors: 2, Received: 3, Delivered: 4, Requests: 5,
			Responses: 6, Ignored: 7, Malformed: 8, Oversized: 9, Panics: 10, Subscriptions: 11},
		Transport: transport.Stats{GateTimeouts: 12, ReadPanics: 13},
	}
	calls := 0
	m.Watch(func() realtime.Stats { calls++; return st })
	m.Watch(func() realtime.Stats { t.Error("a second Watch replaced the first"); return st })

	want := map[string]float64{
		"taskwire_socketio_sockets":                 3,
		"taskwire_adapter_messages_published_total": 1,
		"taskwire_adapter_publish_errors_total":     2,
		"taskwire_adapter_messages_received_total":  3,
		"taskwire_adapter_broadcasts_relayed_total": 4,
		"taskwire_adapter_requests_handled_total":   5,
		"taskwire_adapter_responses_matched_total":  6,
		"taskwire_adapter_messages_ignored_total":   7,
		"taskwire_adapter_decode_errors_total":      8,
		"taskwire_adapter_messages_oversized_total": 9,
		"taskwire_adapter_handler_panics_total":     10,
		"taskwire_adapter_subscriptions_total":      11,
		"taskwire_transport_gate_timeouts_total":    12,
		"taskwire_transport_read_panics_total":      13,
	}
	for name, v := range want {
		if got := value(t, m, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	for tr, v := range map[string]float64{"websocket": 3, "polling": 0, "other": 3} {
		if got := value(t, m, "taskwire_socketio_connections", "transport", tr); got != v {
			t.Errorf("connections %s = %v, want %v", tr, got, v)
		}
	}
	before := calls
	st.Adapter.Malformed = 20
	if got := value(t, m, "taskwire_adapter_decode_errors_total"); got != 20 || calls != before+1 {
		t.Errorf("decode errors after a change = %v (stats read %d times), want 20 read once more", got, calls-before)
	}
	if probs, err := testutil.GatherAndLint(m.Registry()); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

func TestHandlerServesRuntimeAndProcessMetrics(t *testing.T) {
	m := metrics.New(nil)
	m.Watch(func() realtime.Stats { return realtime.Stats{} })
	m.TaskEnqueued("export")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, s := range []string{
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "go_build_info{",
		`taskwire_tasks_enqueued_total{kind="export"} 1`, "taskwire_socketio_sockets 0",
		`taskwire_socketio_connections{transport="polling"} 0`, "taskwire_adapter_decode_errors_total 0",
		`taskwire_event_delay_seconds_bucket{event="task:progress",le="0.001"} 0`,
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}
	if probs, err := testutil.GatherAndLint(m.Registry()); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}
