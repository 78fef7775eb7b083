package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/server/internal/metrics"
)

// A client whose Redis is not there: its failed dials and the command that
// gave up count in taskwire_redis_errors_total, every op's series exists.
func TestWatchRedisCountsFailures(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	m.WatchRedis(rdb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of nothing succeeded")
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "taskwire_redis_errors_total"); err != nil || n != 3 {
		t.Fatalf("%d series of taskwire_redis_errors_total (%v), want 3 (dial, command, pipeline)", n, err)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "taskwire_redis_errors_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			got[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
		}
	}
	if got["dial"] < 1 || got["command"] != 1 || got["pipeline"] != 0 {
		t.Fatalf("taskwire_redis_errors_total %v, want dial >= 1, command 1, pipeline 0", got)
	}
}
