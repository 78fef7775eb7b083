// Package metrics is taskwire-worker's Prometheus instrumentation: what became of
// the tasks it took from the queue (by kind), how long they ran, the broker's
// counters, the depth of the shared queue, and the Go runtime and process
// collectors.
//
// A Metrics is the runner.Observer of the worker; it reads the broker's counters
// at every scrape (WatchBroker) and the queue's state at most once per interval
// (WatchQueue). Labels have bounded values: task kinds are the registered ones,
// failure codes the runner's and the handlers' stable codes.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/runner"
)

// Namespace is the prefix of every metric of taskwire.
const Namespace = "taskwire"

// DurationBuckets are the bounds of taskwire_worker_task_duration_seconds: from
// a tiny export to an hour-long one.
var DurationBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Options configure New.
type Options struct {
	// NoRuntime leaves out the Go runtime, process and build collectors (tests).
	NoRuntime bool
}

// Metrics holds the worker's metrics. Create it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	received  *prometheus.CounterVec
	started   *prometheus.CounterVec
	running   *prometheus.GaugeVec
	ended     map[runner.Outcome]*prometheus.CounterVec
	withCode  map[runner.Outcome]bool
	durations *prometheus.HistogramVec
}

// New returns the worker's metrics, registered in a registry of their own
// together with the Go runtime, process and build-info collectors. kinds are the
// task kinds the worker runs: their series exist (at 0) from the start.
func New(kinds []tasks.Kind, opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "worker", Name: name, Help: help,
		}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: counter("tasks_received_total",
			"Queue entries this worker took, by kind (each ends in exactly one of the outcome counters).", "kind"),
		started: counter("tasks_started_total",
			"Attempts started (the record says running), by kind.", "kind"),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "worker", Name: "tasks_running",
			Help: "Attempts running now, by kind.",
		}, []string{"kind"}),
		ended: map[runner.Outcome]*prometheus.CounterVec{
			runner.OutcomeCompleted: counter("tasks_completed_total",
				"Tasks completed (task:completed written), by kind.", "kind"),
			runner.OutcomeFailed: counter("tasks_failed_total",
				"Tasks failed (task:failed written), by kind and error code.", "kind", "code"),
			runner.OutcomeCancelled: counter("tasks_cancelled_total",
				"Tasks cancelled by their owner (task:cancelled written), by kind.", "kind"),
			runner.OutcomeRetried: counter("tasks_retried_total",
				"Attempts that failed transiently; the task waits for a retry. By kind and error code.", "kind", "code"),
			runner.OutcomeHandedBack: counter("tasks_handed_back_total",
				"Tasks put back into the queue because the worker shut down, by kind.", "kind"),
			runner.OutcomeAbandoned: counter("tasks_abandoned_total",
				"Entries left to their lease (another attempt took the task over, or Redis could not be written), by kind.", "kind"),
			runner.OutcomeSkipped: counter("tasks_skipped_total",
				"Entries dropped without running (the task was already over, or had no record), by kind.", "kind"),
		},
		withCode: map[runner.Outcome]bool{runner.OutcomeFailed: true, runner.OutcomeRetried: true},
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "worker", Name: "task_duration_seconds",
			Help:    "How long attempts ran, from start to their last event, by kind and outcome.",
			Buckets: DurationBuckets,
		}, []string{"kind", "outcome"}),
	}
	m.reg.MustRegister(m.received, m.started, m.running, m.durations)
	for _, c := range m.ended {
		m.reg.MustRegister(c)
	}
	for _, k := range kinds {
		kind := string(k)
		m.received.WithLabelValues(kind)
		m.started.WithLabelValues(kind)
		m.running.WithLabelValues(kind)
		for o, c := range m.ended {
			if !m.withCode[o] {
				c.WithLabelValues(kind)
			}
		}
	}
	if !o.NoRuntime {
		m.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			collectors.NewBuildInfoCollector(),
		)
	}
	return m
}

// Registry returns the registry of m, to register more collectors or to gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	})
}

// Received counts an entry taken from the queue (runner.Observer).
func (m *Metrics) Received(kind tasks.Kind) {
	m.received.WithLabelValues(string(kind)).Inc()
}

// Started counts a started attempt (runner.Observer).
func (m *Metrics) Started(kind tasks.Kind) {
	m.started.WithLabelValues(string(kind)).Inc()
	m.running.WithLabelValues(string(kind)).Inc()
}

// Ended counts how an entry ended and, when an attempt ran, how long
// (runner.Observer).
func (m *Metrics) Ended(e runner.Ending) {
	kind, outcome := string(e.Kind), e.Outcome
	c, ok := m.ended[outcome]
	if !ok {
		c, outcome = m.ended[runner.OutcomeAbandoned], runner.OutcomeAbandoned
	}
	if m.withCode[outcome] {
		code := e.Code
		if code == "" {
			code = "unknown"
		}
		c.WithLabelValues(kind, code).Inc()
	} else {
		c.WithLabelValues(kind).Inc()
	}
	if e.Started {
		m.running.WithLabelValues(kind).Dec()
		m.durations.WithLabelValues(kind, string(outcome)).Observe(max(e.Duration, 0).Seconds())
	}
}

// WatchBroker makes every scrape read the broker's counters (broker.Stats).
func (m *Metrics) WatchBroker(stats func() broker.Stats) {
	m.reg.MustRegister(&brokerCollector{stats: stats})
}
