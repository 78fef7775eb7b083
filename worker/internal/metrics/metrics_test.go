package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redistest"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/metrics"
	"github.com/taskwire/taskwire/worker/internal/runner"
)

// samples returns the samples of family name (nil when the family is absent).
func samples(t *testing.T, m *metrics.Metrics, name string) []*dto.Metric {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

func sample(t *testing.T, m *metrics.Metrics, name string, labels ...string) *dto.Metric {
	t.Helper()
next:
	for _, s := range samples(t, m, name) {
		if len(s.GetLabel())*2 != len(labels) {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		return s
	}
	return nil
}

// value returns a counter's or gauge's value; -1 when the sample is absent.
func value(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	s := sample(t, m, name, labels...)
	switch {
	case s == nil:
		return -1
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

func TestOutcomesByKind(t *testing.T) {
	m := metrics.New([]tasks.Kind{"export", "report"}, &metrics.Options{NoRuntime: true})
	// Series of every kind exist from the start.
	for _, name := range []string{"taskwire_worker_tasks_received_total", "taskwire_worker_tasks_started_total",
		"taskwire_worker_tasks_completed_total", "taskwire_worker_tasks_cancelled_total", "taskwire_worker_tasks_running"} {
		if got := value(t, m, name, "kind", "report"); got != 0 {
			t.Errorf("%s{kind=report} = %v before any task, want 0", name, got)
		}
	}

	run := func(kind tasks.Kind, o runner.Outcome, code string, d time.Duration) {
		m.Received(kind)
		m.Started(kind)
		if got := value(t, m, "taskwire_worker_tasks_running", "kind", string(kind)); got < 1 {
			t.Errorf("running %s = %v while one runs", kind, got)
		}
		m.Ended(runner.Ending{Kind: kind, Outcome: o, Code: code, Started: true, Duration: d})
	}
	run("export", runner.OutcomeCompleted, "", 2*time.Second)
	run("export", runner.OutcomeCompleted, "", 0) // a clock that did not move still counts
	run("export", runner.OutcomeFailed, "result_too_large", time.Second)
	run("export", runner.OutcomeRetried, "upstream_down", time.Second)
	run("export", runner.OutcomeCancelled, "", time.Second)
	run("export", runner.OutcomeHandedBack, "", time.Second)
	run("export", runner.OutcomeAbandoned, "", time.Second)
	run("export", runner.Outcome("new-outcome"), "", time.Second)
	// Ends without an attempt: out of attempts, nothing to do.
	m.Received("export")
	m.Ended(runner.Ending{Kind: "export", Outcome: runner.OutcomeFailed, Code: runner.CodeWorkerLost})
	m.Received("export")
	m.Ended(runner.Ending{Kind: "export", Outcome: runner.OutcomeSkipped})
	m.Received("report")
	m.Ended(runner.Ending{Kind: "report", Outcome: runner.OutcomeFailed})

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"taskwire_worker_tasks_received_total", []string{"kind", "export"}, 10},
		{"taskwire_worker_tasks_started_total", []string{"kind", "export"}, 8},
		{"taskwire_worker_tasks_running", []string{"kind", "export"}, 0},
		{"taskwire_worker_tasks_completed_total", []string{"kind", "export"}, 2},
		{"taskwire_worker_tasks_failed_total", []string{"kind", "export", "code", "result_too_large"}, 1},
		{"taskwire_worker_tasks_failed_total", []string{"kind", "export", "code", "worker_lost"}, 1},
		{"taskwire_worker_tasks_failed_total", []string{"kind", "report", "code", "unknown"}, 1},
		{"taskwire_worker_tasks_retried_total", []string{"kind", "export", "code", "upstream_down"}, 1},
		{"taskwire_worker_tasks_cancelled_total", []string{"kind", "export"}, 1},
		{"taskwire_worker_tasks_handed_back_total", []string{"kind", "export"}, 1},
		{"taskwire_worker_tasks_abandoned_total", []string{"kind", "export"}, 2},
		{"taskwire_worker_tasks_skipped_total", []string{"kind", "export"}, 1},
		{"taskwire_worker_tasks_received_total", []string{"kind", "report"}, 1},
		{"taskwire_worker_tasks_started_total", []string{"kind", "report"}, 0},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := sample(t, m, "taskwire_worker_task_duration_seconds", "kind", "export", "outcome", "completed").GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 2 {
		t.Errorf("completed durations: count %d sum %v, want 2 and 2", h.GetSampleCount(), h.GetSampleSum())
	}
	if s := sample(t, m, "taskwire_worker_task_duration_seconds", "kind", "export", "outcome", "skipped"); s != nil {
		t.Errorf("an entry that never started has a duration: %v", s)
	}
	if probs, err := testutil.GatherAndLint(m.Registry()); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

func TestBrokerCountersAreReadAtEveryScrape(t *testing.T) {
	m := metrics.New(nil, &metrics.Options{NoRuntime: true})
	st := broker.Stats{Delivered: 1, Reclaimed: 2, Rejected: 3, HandedBack: 4, Delayed: 5, Promoted: 6,
		LeasesLost: 7, ReadFailures: 8, InFlight: 9}
	m.WatchBroker(func() broker.Stats { return st })
	want := map[string]float64{
		"taskwire_worker_broker_delivered_total":     1,
		"taskwire_worker_broker_reclaimed_total":     2,
		"taskwire_worker_broker_rejected_total":      3,
		"taskwire_worker_broker_handed_back_total":   4,
		"taskwire_worker_broker_delayed_total":       5,
		"taskwire_worker_broker_promoted_total":      6,
		"taskwire_worker_broker_leases_lost_total":   7,
		"taskwire_worker_broker_read_failures_total": 8,
		"taskwire_worker_broker_in_flight":           9,
	}
	for name, v := range want {
		if got := value(t, m, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	st.InFlight = 0
	if got := value(t, m, "taskwire_worker_broker_in_flight"); got != 0 {
		t.Errorf("in flight after a change = %v, want 0", got)
	}
}

func TestQueueDepth(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	keys := store.Keys{Prefix: "mt"}
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := metrics.New(nil, &metrics.Options{NoRuntime: true})
	m.WatchQueue(rdb, keys, []string{keys.Queue(tasks.KindExport)}, &metrics.QueueOptions{Interval: 5 * time.Second, Now: func() time.Time { return now }})

	// queue scrapes once and returns the queue's metrics (-1: absent).
	queue := func() map[string]float64 {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, n := range []string{"length", "lag", "pending", "delayed", "consumers", "read_errors_total"} {
			out[n] = -1
		}
		for _, f := range fams {
			if n, ok := strings.CutPrefix(f.GetName(), "taskwire_queue_"); ok {
				s := f.GetMetric()[0]
				out[n] = s.GetGauge().GetValue() + s.GetCounter().GetValue()
			}
		}
		return out
	}
	check := func(what string, want map[string]float64) {
		t.Helper()
		got := queue()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: taskwire_queue_%s = %v, want %v (all: %v)", what, k, got[k], v, got)
			}
		}
	}

	// Nothing exists yet: an empty queue, not an error.
	check("no stream", map[string]float64{"length": 0, "lag": 0, "pending": 0, "delayed": 0, "consumers": 0, "read_errors_total": 0})

	// Five entries, two delivered to a consumer (one of them acknowledged and
	// deleted, as the broker does), one retry waiting.
	for i := range 5 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Queue(tasks.KindExport), Values: []any{"task", i}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XGroupCreate(ctx, keys.Queue(tasks.KindExport), store.QueueGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: store.QueueGroup, Consumer: "c1", Streams: []string{keys.Queue(tasks.KindExport), ">"}, Count: 2}).Result()
	if err != nil {
		t.Fatal(err)
	}
	first := res[0].Messages[0].ID
	if err := rdb.XAck(ctx, keys.Queue(tasks.KindExport), store.QueueGroup, first).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XDel(ctx, keys.Queue(tasks.KindExport), first).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, keys.Delayed(), redis.Z{Score: 1, Member: "m"}).Err(); err != nil {
		t.Fatal(err)
	}

	// Within the interval the last reading is served, Redis is not asked.
	now = now.Add(4 * time.Second)
	check("cached", map[string]float64{"length": 0, "lag": 0})
	now = now.Add(time.Second)
	check("after the interval", map[string]float64{"length": 4, "lag": 3, "pending": 1, "delayed": 1, "consumers": 1, "read_errors_total": 0})

	// Redis away: the gauges are left out and the failure is counted, once per
	// interval however often Prometheus asks.
	rs.Stop()
	now = now.Add(time.Minute)
	for range 3 {
		got := queue()
		if got["read_errors_total"] != 1 || got["length"] != -1 || got["lag"] != -1 {
			t.Errorf("with Redis down: %v, want one read error and no gauges", got)
		}
	}
	if probs, err := testutil.GatherAndLint(m.Registry()); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

func TestHandlerServesRuntimeAndProcessMetrics(t *testing.T) {
	m := metrics.New([]tasks.Kind{"export"}, nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, s := range []string{"go_goroutines ", "process_resident_memory_bytes ", "go_build_info{",
		`taskwire_worker_tasks_started_total{kind="export"} 0`} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}
}
