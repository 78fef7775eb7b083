package progress

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	th := NewThrottle(10) // one per 100 ms
	steps := []struct {
		ms    int
		force bool
		want  bool
	}{
		{0, false, true},    // the first always passes
		{50, false, false},  // too soon
		{99, false, false},  // still too soon
		{100, false, true},  // one interval later
		{150, true, true},   // forced passes and restarts the interval
		{200, false, false}, // 50 ms after the forced one
		{250, false, true},
		{251, true, true}, // forced twice in a row
		{252, true, true},
	}
	for _, s := range steps {
		if got := th.Allow(at(s.ms), s.force); got != s.want {
			t.Fatalf("at %d ms (force %v): %v, want %v", s.ms, s.force, got, s.want)
		}
	}
	// Over a second of calls every millisecond, about ten pass.
	th = NewThrottle(10)
	n := 0
	for ms := 0; ms < 1000; ms++ {
		if th.Allow(at(10_000+ms), false) {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d events in a second at rate 10", n)
	}
	// No limit.
	var free Throttle
	for ms := 0; ms < 5; ms++ {
		if !free.Allow(at(ms), false) {
			t.Fatal("the zero throttle held an event back")
		}
	}
	if th := NewThrottle(0); !th.Allow(t0, false) || !th.Allow(t0, false) {
		t.Fatal("rate 0 held an event back")
	}
}

func TestPercentAndETA(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		want        float64
	}{{0, 10, 0}, {1, 3, 33.33}, {2, 3, 66.66}, {9999, 10000, 99.99}, {10, 10, 100}, {11, 10, 100}, {5, 0, 0}} {
		if got := percentOf(c.done, c.total); got != c.want {
			t.Errorf("percentOf(%d, %d) = %v, want %v", c.done, c.total, got, c.want)
		}
	}
	start := time.Unix(0, 0)
	r := &Reporter{start: start}
	if eta := r.eta(start.Add(2*time.Second), 250, 1000); eta == nil || *eta != 6 {
		t.Fatalf("eta after 2 s at 25%%: %v", eta)
	}
	if eta := r.eta(start.Add(time.Second), 0, 1000); eta != nil {
		t.Fatalf("eta without progress: %v", *eta)
	}
	if eta := r.eta(start.Add(time.Second), 1000, 1000); eta == nil || *eta != 0 {
		t.Fatalf("eta when done: %v", eta)
	}
}
