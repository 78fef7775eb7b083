package progress

import "time"

// Throttle lets at most one event through per interval. Forced events always pass
// and restart the interval. The zero value lets everything through. It is not safe
// for concurrent use.
type Throttle struct {
	interval time.Duration
	last     time.Time
	any      bool
}

// NewThrottle returns a throttle for at most rate events per second; rate 0 or
// less means no limit.
func NewThrottle(rate float64) Throttle {
	if rate <= 0 {
		return Throttle{}
	}
	return Throttle{interval: time.Duration(float64(time.Second) / rate)}
}

// Allow reports whether an event at now may be sent, and if so counts it as sent.
// force sends it regardless of the rate.
func (t *Throttle) Allow(now time.Time, force bool) bool {
	if !force && t.any && t.interval > 0 && now.Sub(t.last) < t.interval {
		return false
	}
	t.last, t.any = now, true
	return true
}
