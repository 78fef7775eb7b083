package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var nilGate *gate
	if !nilGate.wait(time.Millisecond) {
		t.Fatal("a nil gate must be open")
	}
	g := newGate(0)
	before := gateTimeouts.Load()
	if g.wait(5 * time.Millisecond) {
		t.Fatal("closed gate reported open")
	}
	if gateTimeouts.Load() != before+1 {
		t.Fatal("timeout not counted")
	}
	g.open()
	g.open() // idempotent
	if !g.wait(time.Hour) {
		t.Fatal("open gate reported closed")
	}
}

func TestHandlerOpensGateAfterEngine(t *testing.T) {
	var seen *gate
	var openDuring bool
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = gateFrom(r.Context())
		select {
		case <-seen.ch:
			openDuring = true
		default:
		}
		panic(http.ErrAbortHandler) // even a panicking engine must open the gate
	}))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/socket.io/", nil).WithContext(context.Background()))
	}()
	if seen == nil {
		t.Fatal("no gate in the request context")
	}
	if openDuring {
		t.Fatal("gate open while the engine was still handling the request")
	}
	if !seen.wait(0) {
		t.Fatal("gate still closed after the engine returned")
	}
}
