package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskwire/taskwire/server/internal/realtime"
)

// A pedantic registry checks that the collector sends only what it describes,
// with consistent labels, also for unusual transports.
func TestRealtimeCollectorIsConsistent(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&realtimeCollector{stats: func() realtime.Stats {
		return realtime.Stats{Sockets: 1, Transports: map[string]int{"webtransport": 1, "x": 1, "y": 1}}
	}})
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
}
