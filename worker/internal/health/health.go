// Package health serves the worker's probes: /healthz (the process is alive) and
// /readyz (it can reach Redis and takes tasks). Other handlers, such as /metrics,
// are added with Handle.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Handler serves the probes. Create it with New.
type Handler struct {
	mux   *http.ServeMux
	ready func(ctx context.Context) error
}

// New returns a Handler whose /readyz answers 200 when ready returns nil, and 503
// with the error otherwise. ready gets a context bounded to 2 s.
func New(ready func(ctx context.Context) error) *Handler {
	h := &Handler{mux: http.NewServeMux(), ready: ready}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
	return h
}

// Handle adds a handler for pattern (for example "GET /metrics").
func (h *Handler) Handle(pattern string, handler http.Handler) {
	h.mux.Handle(pattern, handler)
}

// ServeHTTP serves the probes and the added handlers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
