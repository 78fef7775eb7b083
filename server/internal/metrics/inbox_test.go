package metrics_test

import (
	"testing"
	"time"

	"github.com/taskwire/taskwire/server/internal/metrics"
)

func TestDeliveryMetrics(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	if n, _ := histogram(t, m, "taskwire_tasks_delivery_seconds"); n != 0 {
		t.Fatalf("delivery histogram starts at %d", n)
	}
	m.Delivered(1500 * time.Millisecond)
	m.Delivered(-time.Second) // clocks apart: counts as 0
	if n, sum := histogram(t, m, "taskwire_tasks_delivery_seconds"); n != 2 || sum != 1.5 {
		t.Fatalf("delivery histogram: count %d, sum %g", n, sum)
	}
	if v := value(t, m, "taskwire_tasks_undelivered_total"); v != 0 {
		t.Fatalf("undelivered starts at %g", v)
	}
	m.Undelivered(3)
	if v := value(t, m, "taskwire_tasks_undelivered_total"); v != 3 {
		t.Fatalf("undelivered %g, want 3", v)
	}
}
