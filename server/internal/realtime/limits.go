package realtime

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/zishang520/engine.io/v2/engine"

	"github.com/taskwire/taskwire/server/internal/transport"
)

// connLimit counts the handshakes being served, so that those served at once
// cannot together exceed MaxConnections: a session counts from the moment its
// handshake is admitted, then as one of the engine's clients.
type connLimit struct {
	mu          sync.Mutex
	handshaking uint64
}

// reservation is the place of one admitted handshake, released once the engine
// counts its session (its "connection" event) or the handshake failed.
type reservation struct {
	l    *connLimit
	done atomic.Bool
}

type reservationKey struct{}

// reserve admits a handshake when the sessions (open ones, as the engine counts
// them, plus handshakes in progress) are fewer than limit; else it returns nil.
func (l *connLimit) reserve(open uint64, limit int) *reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	if open+l.handshaking >= uint64(limit) {
		return nil
	}
	l.handshaking++
	return &reservation{l: l}
}

// release gives the place back (once; later calls do nothing).
func (r *reservation) release() {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return
	}
	r.l.mu.Lock()
	r.l.handshaking--
	r.l.mu.Unlock()
}

// countSessions releases the reservation of every new session as the engine
// starts counting it, during the handshake, so that a session counts twice only
// for that moment. (Sessions whose handshake request cannot be found from the
// engine socket keep their reservation until the handshake request returns:
// counted twice a little longer, never missed.)
func (s *Server) countSessions() {
	_ = s.io.Engine().On("connection", func(args ...any) {
		c, ok := args[0].(engine.Socket)
		if !ok || c.Request() == nil || c.Request().Request() == nil {
			return
		}
		if res, ok := c.Request().Request().Context().Value(reservationKey{}).(*reservation); ok {
			res.release()
		}
	})
}

// admit reserves a place for the handshake r, or refuses it (503) and returns
// false. The caller releases the returned request's reservation once served.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (*http.Request, *reservation, bool) {
	res := s.conns.reserve(transport.ClientsCount(s.io.Engine()), s.cfg.MaxConnections)
	if res == nil {
		s.obs.Refused(RefusedFull)
		s.refuse(w, r, `{"code":5,"message":"server full"}`)
		return r, nil, false
	}
	return r.WithContext(context.WithValue(r.Context(), reservationKey{}, res)), res, true
}

// refuse answers a handshake with 503 and Retry-After, in the JSON error format
// of engine.io. An allowed cross-origin page gets the CORS headers, so its
// client can read the answer.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, body string) {
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" && s.originAllowed(origin, r.Host) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
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
