package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		d := b.Next()
		if d < w*3/4 || d > w*5/4 {
			t.Fatalf("wait %d = %v, want %v ±25%%", i, d, w)
		}
	}
	b.Reset()
	if d := b.Next(); d > 125*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}

func TestDo(t *testing.T) {
	ctx := context.Background()
	transient := errors.New("transient")
	final := errors.New("final")
	n := 0
	err := Do(ctx, func(context.Context) error {
		n++
		if n < 3 {
			return transient
		}
		return nil
	}, func(err error) bool { return errors.Is(err, transient) })
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d calls", err, n)
	}
	n = 0
	err = Do(ctx, func(context.Context) error { n++; return final }, func(err error) bool { return errors.Is(err, transient) })
	if !errors.Is(err, final) || n != 1 {
		t.Fatalf("err %v after %d calls; want final after 1", err, n)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = Do(cctx, func(context.Context) error { return transient }, func(error) bool { return true })
	if !errors.Is(err, transient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want transient and deadline", err)
	}
}
