package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskwire/taskwire/server/internal/realtime"
)

// realtimeCollector turns realtime.Stats into metrics at every scrape. The
// counters it reads are kept by the adapter and the transports themselves, so
// their hot paths pay for nothing but their own atomic adds.
type realtimeCollector struct {
	stats func() realtime.Stats
}

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
}

var (
	descSockets = desc("socketio", "sockets",
		"Sockets connected to the main namespace.")
	descConnections = desc("socketio", "connections",
		"Client connections (engine.io sessions) by their current transport.", "transport")
	descUnauthenticated = desc("socketio", "unauthenticated_connections",
		"Client connections (engine.io sessions) without an authenticated socket yet; each is closed after SOCKETIO_CONNECT_TIMEOUT.")
	descOrphaned = desc("socketio", "sockets_without_connection",
		"Sockets of the main namespace whose connection is closed: stays 0 unless sockets leak.")

	descPublished = desc("adapter", "messages_published_total",
		"Messages the Redis adapter published (broadcasts, room changes, requests, responses).")
	descPublishErrors = desc("adapter", "publish_errors_total",
		"Publishes of the Redis adapter that failed (Redis unreachable, timeout).")
	descReceived = desc("adapter", "messages_received_total",
		"Messages the Redis adapter read from Redis.")
	descRelayed = desc("adapter", "broadcasts_relayed_total",
		"Broadcasts of other servers and of emitters (workers) read from Redis and handed to this server's sockets.")
	descRequests = desc("adapter", "requests_handled_total",
		"Cluster requests of other servers acted on (joins, leaves, fetches, server-side emits...).")
	descResponses = desc("adapter", "responses_matched_total",
		"Answers of other servers matched to a request of this server.")
	descIgnored = desc("adapter", "messages_ignored_total",
		"Well-formed messages not meant for this server (its own, other namespaces, rooms it does not have).")
	descMalformed = desc("adapter", "decode_errors_total",
		"Messages that could not be decoded or had the wrong shape; dropped.")
	descOversized = desc("adapter", "messages_oversized_total",
		"Messages larger than the adapter's limit; dropped unread.")
	descPanics = desc("adapter", "handler_panics_total",
		"Messages whose handling panicked (recovered; the messages after it are handled).")
	descSubscriptions = desc("adapter", "subscriptions_total",
		"Subscription confirmations from Redis: one per channel at start and after every reconnection.")

	descGateTimeouts = desc("transport", "gate_timeouts_total",
		"Waits of a transport for the engine's listeners that gave up (stays 0 unless a request handler hangs).")
	descReadPanics = desc("transport", "read_panics_total",
		"Panics of the engine while handling a WebSocket message; each closed its connection.")
	descProtocolFixes = desc("transport", "protocol_fixes_total",
		"Protocol corrections of the transports that took effect, by correction (see the transport package).", "fix")
)

// Describe sends the descriptors of every metric of the collector.
func (c *realtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSockets, descConnections, descUnauthenticated, descOrphaned, descPublished, descPublishErrors,
		descReceived, descRelayed, descRequests, descResponses, descIgnored, descMalformed, descOversized,
		descPanics, descSubscriptions, descGateTimeouts, descReadPanics, descProtocolFixes} {
		ch <- d
	}
}

// Collect reads the stats once and sends every metric.
func (c *realtimeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descSockets, float64(st.Sockets))
	gauge(descUnauthenticated, float64(st.Unauthenticated))
	gauge(descOrphaned, float64(st.Orphaned))
	// The usual transports are always there, so that dashboards see 0, not nothing.
	for _, t := range []string{"polling", "websocket"} {
		gauge(descConnections, float64(st.Transports[t]), t)
	}
	others := map[string]int{}
	for t, n := range st.Transports {
		if t != "polling" && t != "websocket" {
			others[transportLabel(t)] += n
		}
	}
	for t, n := range others {
		gauge(descConnections, float64(n), t)
	}
	a := st.Adapter
	counter(descPublished, a.Published)
	counter(descPublishErrors, a.PublishErrors)
	counter(descReceived, a.Received)
	counter(descRelayed, a.Delivered)
	counter(descRequests, a.Requests)
	counter(descResponses, a.Responses)
	counter(descIgnored, a.Ignored)
	counter(descMalformed, a.Malformed)
	counter(descOversized, a.Oversized)
	counter(descPanics, a.Panics)
	counter(descSubscriptions, a.Subscriptions)
	counter(descGateTimeouts, st.Transport.GateTimeouts)
	counter(descReadPanics, st.Transport.ReadPanics)
	tr := st.Transport
	for _, f := range []struct {
		label string
		v     uint64
	}{
		{"empty_auth", tr.EmptyAuthConnects}, {"client_close_noop", tr.ClientCloseNoops},
		{"closed_extra_upgrade", tr.ClosedExtraUpgrades}, {"poll_held_for_upgrade", tr.PollsHeldForUpgrade},
		{"trimmed_error_data", tr.TrimmedErrorData}, {"closed_refused", tr.ClosedRefused},
		{"held_for_connect", tr.HeldForConnect}, {"connect_settle_late", tr.ConnectSettleLate},
		{"event_in_order", tr.EventsInOrder}, {"event_taken_late", tr.EventTakenLate},
	} {
		ch <- prometheus.MustNewConstMetric(descProtocolFixes, prometheus.CounterValue, float64(f.v), f.label)
	}
}
