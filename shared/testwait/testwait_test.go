package testwait_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"
)

func TestForHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	testwait.For(t, 5*time.Second, "three increments", func() bool { return n.Load() == 3 })
}

// fatalTB records Fatalf instead of failing, and stops the goroutine as Fatalf does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestForTimesOut(t *testing.T) {
	tb := &fatalTB{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != tb {
				t.Fatalf("For returned (or panicked with %v) instead of failing", r)
			}
		}()
		testwait.For(tb, 50*time.Millisecond, "nothing", func() bool { return false })
	}()
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("failed after %s, before its bound", time.Since(start))
	}
	if !strings.Contains(tb.msg, "waiting for nothing") {
		t.Fatalf("message %q", tb.msg)
	}
}
