package realtime

import (
	"bytes"
	"io"
	"net/http"
)

// refuse answers a handshake with 503 and Retry-After, in the JSON error format
// of engine.io. An allowed cross-origin page gets the CORS headers, so its
// client can read the answer.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, body string) {
	s.refuseWith(w, r, http.StatusServiceUnavailable, body)
}

// refuseWith answers a handshake with status, Retry-After and body (see
// refuse).
func (s *Server) refuseWith(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		switch {
		case s.originListed(origin) || (s.originAllowed(origin, r.Host) && !s.anyOrigin()):
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		case s.anyOrigin():
			h.Set("Access-Control-Allow-Origin", "*")
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// servePost serves a polling POST (the client sending packets) within the
// message bound, and closes the session of a POST refused as too large (413): its
// client treats the refusal as a transport error and opens a new session, so the
// old one would only linger until its ping timeout, holding a place under
// MaxConnections. Node's engine closes it too.
func (s *Server) servePost(engine http.Handler, w http.ResponseWriter, r *http.Request) {
	if !boundBody(w, r, s.cfg.MaxHttpBufferSize) {
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	engine.ServeHTTP(sw, r)
	if sw.status == http.StatusRequestEntityTooLarge {
		if c, ok := s.io.Engine().Clients().Load(r.URL.Query().Get("sid")); ok {
			c.Close(true)
		}
	}
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// boundBody makes a polling POST whose length is not announced (chunked) obey
// the message bound: the engine checks only the Content-Length header and would
// otherwise read any amount into memory. The body is read up to the bound; a
// larger one keeps a length above the bound, so the engine answers 413 as it does
// for an announced one, and the rest is never read. It returns false when it
// answered the request itself (the body could not be read).
func boundBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
		return true
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		http.Error(w, `{"code":3,"message":"Bad request"}`, http.StatusBadRequest)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return true
}
