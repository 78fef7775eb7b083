package app

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// scrape reads the worker's /metrics: series (as written, labels included) to
// values.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: status %d", res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetrics scrapes until every series has its value: the runner reports an
// entry's end after the final event went out, so a scrape right after the event
// may come first.
func waitMetrics(t *testing.T, addr string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrape(t, addr)
		var diff []string
		for k, v := range want {
			if got[k] != v {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, got[k], v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after 10s:\n  %s", strings.Join(diff, "\n  "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsOfAnExport(t *testing.T) {
	e := testenv.New(t)
	w := start(t, e, nil, Options{})
	before := scrape(t, w.info.MetricsAddr)
	if v, ok := before[`taskwire_worker_tasks_completed_total{kind="export"}`]; !ok || v != 0 {
		t.Fatalf("completed before any task: %v (present %v)", v, ok)
	}
	for _, s := range []string{"go_goroutines", "process_resident_memory_bytes", "taskwire_queue_length", "taskwire_worker_broker_in_flight"} {
		if _, ok := before[s]; !ok {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	id := e.Submit(1000, nil)
	if rec := e.WaitFinal(id, 30*time.Second); rec.State != tasks.StateCompleted {
		t.Fatalf("record %+v", rec)
	}
	got := waitMetrics(t, w.info.MetricsAddr, map[string]float64{
		`taskwire_worker_tasks_received_total{kind="export"}`:                            1,
		`taskwire_worker_tasks_started_total{kind="export"}`:                             1,
		`taskwire_worker_tasks_completed_total{kind="export"}`:                           1,
		`taskwire_worker_tasks_running{kind="export"}`:                                   0,
		`taskwire_worker_task_duration_seconds_count{kind="export",outcome="completed"}`: 1,
		`taskwire_worker_broker_delivered_total`:                                         1,
	})
	if d := got[`taskwire_worker_task_duration_seconds_sum{kind="export",outcome="completed"}`]; d <= 0 || d > 30 {
		t.Errorf("task duration %v s", d)
	}
	for k, v := range got {
		if strings.HasPrefix(k, "taskwire_worker_tasks_failed_total") && v != 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
}

func TestMetricsOfRetriesAndFailures(t *testing.T) {
	e := testenv.New(t)
	w := start(t, e, nil, Options{
		Handlers: map[tasks.Kind]runner.Handler{tasks.KindExport: flaky(e.Store, 1, false)},
		Backoff:  func(int) time.Duration { return 50 * time.Millisecond },
	})
	id := e.Submit(100, nil)
	if rec := e.WaitFinal(id, 20*time.Second); rec.State != tasks.StateCompleted || rec.Attempts != 2 {
		t.Fatalf("record %+v", rec)
	}
	waitMetrics(t, w.info.MetricsAddr, map[string]float64{
		`taskwire_worker_tasks_received_total{kind="export"}`:                     2,
		`taskwire_worker_tasks_started_total{kind="export"}`:                      2,
		`taskwire_worker_tasks_retried_total{code="upstream_down",kind="export"}`: 1,
		`taskwire_worker_tasks_completed_total{kind="export"}`:                    1,
		`taskwire_worker_broker_delayed_total`:                                    1,
	})

	// Out of attempts on the first try: failed with its code, no retry.
	id = e.Submit(100, func(r *tasks.Record) { r.MaxAttempts = 1 })
	if rec := e.WaitFinal(id, 20*time.Second); rec.State != tasks.StateFailed {
		t.Fatalf("record %+v", rec)
	}
	waitMetrics(t, w.info.MetricsAddr, map[string]float64{
		`taskwire_worker_tasks_failed_total{code="upstream_down",kind="export"}`:  1,
		`taskwire_worker_tasks_retried_total{code="upstream_down",kind="export"}`: 1,
		`taskwire_worker_tasks_started_total{kind="export"}`:                      3,
		`taskwire_worker_tasks_running{kind="export"}`:                            0,
	})
}
