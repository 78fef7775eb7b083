package redisadapter

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the adapter's counters, summed over every namespace of a Builder.
type Stats struct {
	// Published counts messages published to Redis; PublishErrors the publishes
	// that failed (Redis down, timeout).
	Published     uint64
	PublishErrors uint64
	// Received counts messages read from Redis.
	Received uint64
	// Delivered counts broadcasts from other servers or emitters handed to local
	// sockets.
	Delivered uint64
	// Requests counts cluster requests from other servers that were acted on;
	// Responses counts answers matched to a request of ours.
	Requests  uint64
	Responses uint64
	// Ignored counts well-formed messages that are not for this server: its own,
	// other namespaces, rooms it does not have, answers to other servers.
	Ignored uint64
	// Malformed counts messages that could not be decoded or have the wrong
	// shape; Oversized those larger than Config.MaxMessageBytes. Both are dropped.
	Malformed uint64
	Oversized uint64
	// Panics counts messages whose handling panicked (the panic is recovered and
	// logged; later messages are handled as usual).
	Panics uint64
	// Subscriptions counts subscription confirmations from Redis: one per
	// channel at start, and again after every reconnection.
	Subscriptions uint64
}

type counters struct {
	published, publishErrors, received, delivered, requests, responses,
	ignored, malformed, oversized, panics, subscriptions atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Published:     c.published.Load(),
		PublishErrors: c.publishErrors.Load(),
		Received:      c.received.Load(),
		Delivered:     c.delivered.Load(),
		Requests:      c.requests.Load(),
		Responses:     c.responses.Load(),
		Ignored:       c.ignored.Load(),
		Malformed:     c.malformed.Load(),
		Oversized:     c.oversized.Load(),
		Panics:        c.panics.Load(),
		Subscriptions: c.subscriptions.Load(),
	}
}

// limitedLogger logs at most one record per kind and interval, and reports in the
// next record how many were left out, so that a flood of bad messages cannot
// flood the log.
type limitedLogger struct {
	logger   *slog.Logger
	interval time.Duration

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

func (l *limitedLogger) emit(level slog.Level, kind, msg string, attrs ...slog.Attr) {
	now := time.Now()
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		k = &logKind{}
		l.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < l.interval {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	l.logger.LogAttrs(context.Background(), level, msg, attrs...)
}
