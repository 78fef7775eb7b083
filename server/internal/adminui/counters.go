package adminui

import (
	"sync"
	"time"
)

// aggregated counts engine events per second (connections, disconnections by
// reason) for the aggregatedEvents of server_stats, the Admin UI's
// connection charts. It holds at most the seconds since the last take.
type aggregated struct {
	mu     sync.Mutex
	counts map[aggregateKey]int
}

type aggregateKey struct {
	second  int64 // Unix seconds
	typ     string
	subType string
}

func (a *aggregated) add(now time.Time, typ, subType string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = map[aggregateKey]int{}
	}
	a.counts[aggregateKey{now.Unix(), typ, subType}]++
}

// take returns the counts since the last take as the Admin UI's
// NamespaceEvent objects ({timestamp (ms), type, subType, count}) and clears them.
func (a *aggregated) take() []any {
	a.mu.Lock()
	counts := a.counts
	a.counts = nil
	a.mu.Unlock()
	out := make([]any, 0, len(counts))
	for k, n := range counts {
		e := map[string]any{"timestamp": k.second * 1000, "type": k.typ, "count": n}
		if k.subType != "" {
			e["subType"] = k.subType
		}
		out = append(out, e)
	}
	return out
}

// limiter lets through at most max events per second (a fixed window); the
// others are counted as dropped.
type limiter struct {
	mu      sync.Mutex
	max     int
	second  int64
	n       int
	dropped uint64
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.n = s, 0
	}
	if l.n >= l.max {
		l.dropped++
		return false
	}
	l.n++
	return true
}

// Dropped returns how many events the limiter refused.
func (l *limiter) droppedCount() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
