// Package retry waits between attempts of operations that fail for a while, such
// as Redis calls during a restart: exponential back-off with jitter, bounded by a
// context or a stop channel.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff computes growing waits: Min, then doubling up to Max, each with ±25 %
// jitter so that many workers do not retry in step. The zero value waits between
// 100 ms and 5 s. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the wait before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	d := lo
	for i := 0; i < b.n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	b.n++
	return Jitter(d, 0.25)
}

// Attempts returns how many waits Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Jitter returns d changed by a random fraction of at most frac (0.25: ±25 %).
func Jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return d
	}
	f := 1 + frac*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// Sleep waits d, or less when ctx is done or stop is closed (stop may be nil). It
// reports whether the whole wait elapsed.
func Sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// Do calls op until it succeeds, returns an error for which again reports false,
// or ctx is done; then it returns op's last error (or ctx's, when op never ran).
// Waits between calls grow from 50 ms to 2 s.
func Do(ctx context.Context, op func(ctx context.Context) error, again func(error) bool) error {
	b := Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for {
		err := op(ctx)
		if err == nil || !again(err) {
			return err
		}
		if !Sleep(ctx, nil, b.Next()) {
			return errors.Join(err, context.Cause(ctx))
		}
	}
}
