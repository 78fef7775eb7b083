// Package metrics is taskwire-server's Prometheus instrumentation: HTTP requests,
// accepted tasks, Socket.IO sessions and sockets, the events handed to sockets and
// how old they were when they left, the Redis adapter's and the transports'
// counters, and the Go runtime and process collectors.
//
// A Metrics is the httpapi.Observer and the realtime.Observer of the server, and
// reads realtime.Stats at every scrape (Watch). Every label has a bounded set of
// values: unknown event names, methods and routes are folded into one value.
package metrics

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/shared/events"
)

// Namespace is the prefix of every metric of taskwire.
const Namespace = "taskwire"

// OtherEvent is the event label of events that are not taskwire's.
const OtherEvent = "other"

// EmittedAtField is the payload field that carries when a task event was
// published (events.Progress.EmittedAt and its siblings), in Unix milliseconds.
const EmittedAtField = "emittedAt"

// Buckets of the histograms.
var (
	// HTTPBuckets are the bounds of taskwire_http_request_duration_seconds.
	HTTPBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// DelayBuckets are the bounds of taskwire_event_delay_seconds.
	DelayBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// DeliveryBuckets are the bounds of taskwire_tasks_delivery_seconds: from
	// an owner who watched the task finish to one who came back the next day.
	DeliveryBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600}
)

// Options configure New.
type Options struct {
	// Now is the clock of the event delays. Default time.Now.
	Now func() time.Time
	// NoRuntime leaves out the Go runtime, process and build collectors (tests).
	NoRuntime bool
}

// Metrics holds the server's metrics. Create it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	tasksEnqueued *prometheus.CounterVec
	sessions      *prometheus.CounterVec
	upgrades      *prometheus.CounterVec
	connects      prometheus.Counter
	refused       *prometheus.CounterVec
	floods        prometheus.Counter
	delivery      prometheus.Histogram
	undelivered   prometheus.Counter

	// Per event name, resolved once: Sent runs once per event and socket.
	sent  map[string]prometheus.Counter
	delay map[string]prometheus.Observer

	watchMu sync.Mutex
	watched bool
}

// New returns the server's metrics, registered in a registry of their own
// together with the Go runtime, process and build-info collectors.
func New(opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: o.Now,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by method, route (\"other\": no route matched) and status.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route. Socket.IO requests are left out: a long-poll or a WebSocket lasts as long as the client waits.",
			Buckets: HTTPBuckets,
		}, []string{"method", "route"}),
		tasksEnqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "tasks", Name: "enqueued_total",
			Help: "Tasks accepted and queued by this server, by kind.",
		}, []string{"kind"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "socketio", Name: "sessions_opened_total",
			Help: "Engine.IO sessions opened (client handshakes), by the transport they started on.",
		}, []string{"transport"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "socketio", Name: "upgrades_total",
			Help: "Engine.IO sessions that moved to another transport, by the transport they moved to.",
		}, []string{"transport"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "socketio", Name: "connects_total",
			Help: "Sockets that connected (passed authentication).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "socketio", Name: "connect_errors_total",
			Help: "Handshakes and sockets refused, by reason: unauthorized, shutting_down, origin, server_full, unauthenticated_full, per_ip, per_identity.",
		}, []string{"reason"}),
		floods: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "socketio", Name: "flood_disconnects_total",
			Help: "Sockets whose connection was closed for sending more events than they may have unanswered (SOCKETIO_EVENTS_IN_FLIGHT + SOCKETIO_EVENTS_QUEUED).",
		}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "tasks", Name: "delivery_seconds",
			Help: "Time from a task's finish to the first confirmation (task:received) by a socket of its owner that it has the final event, " +
				"observed by the server that got the confirmation.",
			Buckets: DeliveryBuckets,
		}),
		undelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "tasks", Name: "undelivered_total",
			Help: "Finished tasks whose final event no socket of their owner confirmed within TASK_TTL; each is counted by the one replica whose sweep found it.",
		}),
		sent:  map[string]prometheus.Counter{},
		delay: map[string]prometheus.Observer{},
	}
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "socketio", Name: "events_sent_total",
		Help: "Events handed to sockets (a broadcast counts once per receiving socket), by event (\"other\": not a taskwire event).",
	}, []string{"event"})
	delay := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "event", Name: "delay_seconds",
		Help: "Time from a worker publishing a task event (its emittedAt, in milliseconds) to this server handing it to a socket, by event. " +
			"Across machines it includes their clock difference; negative values count as 0.",
		Buckets: DelayBuckets,
	}, []string{"event"})
	for _, name := range append(append([]string(nil), events.Names...), OtherEvent) {
		m.sent[name] = sent.WithLabelValues(name)
		m.delay[name] = delay.WithLabelValues(name)
	}
	for _, r := range []string{realtime.RefusedUnauthorized, realtime.RefusedShuttingDown, realtime.RefusedOrigin,
		realtime.RefusedFull, realtime.RefusedUnauthenticatedFull, realtime.RefusedPerIP, realtime.RefusedPerIdentity} {
		m.refused.WithLabelValues(r)
	}
	for _, t := range []string{"polling", "websocket"} {
		m.sessions.WithLabelValues(t)
	}
	m.upgrades.WithLabelValues("websocket")
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.tasksEnqueued, m.sessions, m.upgrades,
		m.connects, m.refused, m.floods, m.delivery, m.undelivered, sent, delay)
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
		Registry:          m.reg, // counts its own errors as promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	})
}

// Request counts an HTTP request (httpapi.Observer).
func (m *Metrics) Request(method, route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	if route != socketIORoute {
		m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
	}
}

// socketIORoute is the route of the Socket.IO endpoint in the HTTP API.
const socketIORoute = "/socket.io/*any"

// TaskEnqueued counts an accepted task (httpapi.Observer).
func (m *Metrics) TaskEnqueued(kind string) {
	m.tasksEnqueued.WithLabelValues(kind).Inc()
}

// SessionOpened counts an engine.io handshake (realtime.Observer).
func (m *Metrics) SessionOpened(transport string) {
	m.sessions.WithLabelValues(transportLabel(transport)).Inc()
}

// SessionUpgraded counts a transport upgrade (realtime.Observer).
func (m *Metrics) SessionUpgraded(transport string) {
	m.upgrades.WithLabelValues(transportLabel(transport)).Inc()
}

func transportLabel(t string) string {
	switch t {
	case "polling", "websocket", "webtransport":
		return t
	}
	return "other"
}

// Connected counts a connected socket (realtime.Observer).
func (m *Metrics) Connected() { m.connects.Inc() }

// Flooded counts a socket closed for flooding (socketapi.Handlers.OnFlood).
func (m *Metrics) Flooded() { m.floods.Inc() }

// Delivered observes the time from a task's finish to its first delivery
// confirmation (taskservice.Config.OnDelivered).
func (m *Metrics) Delivered(d time.Duration) { m.delivery.Observe(max(d.Seconds(), 0)) }

// Undelivered counts n finished tasks never delivered within their TTL
// (taskservice.Service.SweepUndelivered).
func (m *Metrics) Undelivered(n int) { m.undelivered.Add(float64(n)) }

// Refused counts a refused handshake or socket (realtime.Observer).
func (m *Metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Sent counts an event handed to a socket and, when its payload carries an
// emittedAt time, observes how long ago that was (realtime.Observer).
func (m *Metrics) Sent(event string, args []any) {
	c, ok := m.sent[event]
	if !ok {
		event = OtherEvent
		c = m.sent[event]
	}
	c.Inc()
	if len(args) == 0 {
		return
	}
	p, ok := args[0].(map[string]any)
	if !ok {
		return
	}
	at, ok := millis(p[EmittedAtField])
	if !ok {
		return
	}
	d := float64(m.now().UnixMicro()-at*1000) / 1e6
	m.delay[event].Observe(max(d, 0))
}

// millis reads a positive whole number of milliseconds as the msgpack and JSON
// decoders deliver it.
func millis(v any) (int64, bool) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		n = int64(v)
	case int:
		n = int64(v)
	case int32:
		n = int64(v)
	case uint32:
		n = int64(v)
	case float64:
		if v != v || v > math.MaxInt64/2 {
			return 0, false
		}
		n = int64(v)
	default:
		return 0, false
	}
	return n, n > 0
}

// Watch makes every scrape read stats (realtime.Server.Stats): sockets and
// connections by transport, the Redis adapter's counters and the transports'
// counters. Only the first call has an effect.
func (m *Metrics) Watch(stats func() realtime.Stats) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	if m.watched {
		return
	}
	m.watched = true
	m.reg.MustRegister(&realtimeCollector{stats: stats})
}
