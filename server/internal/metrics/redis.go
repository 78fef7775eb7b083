package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/redisobs"
)

// WatchRedis counts the failures of rdb's dials, commands and pipelines as
// taskwire_redis_errors_total{op} (see redisobs.Hook). Call it once per client.
func (m *Metrics) WatchRedis(rdb redis.UniversalClient) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "redis", Name: "errors_total",
		Help: "Redis dials, commands and pipelines of this server that failed (not redis.Nil), by operation: dial, command, pipeline.",
	}, []string{"op"})
	byOp := map[string]prometheus.Counter{}
	for _, op := range redisobs.Ops {
		byOp[op] = c.WithLabelValues(op)
	}
	m.reg.MustRegister(c)
	rdb.AddHook(redisobs.Hook{OnError: func(op string) { byOp[op].Inc() }})
}
