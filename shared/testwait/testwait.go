// Package testwait is the one helper of taskwire's tests that waits for a
// condition no event announces (a state of a server, a key expiring): it polls
// the condition often, within a bound, and fails the test saying what did not
// happen. Where an event can be awaited (a channel, a log line, a message),
// tests await it instead.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often For polls its condition.
const Interval = 5 * time.Millisecond

// For polls cond every Interval until it holds, and fails tb (Fatalf, from the
// test's goroutine) when it still does not after d, with what in the message.
func For(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(Interval)
	}
}
