package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// DefaultBodyTimeout bounds the reading of a request body when
// Deps.BodyTimeout is 0.
const DefaultBodyTimeout = 30 * time.Second

// bodyDeadline gives a request with a body (an API request, a polling POST)
// BodyTimeout to send it: a body that trickles in is cut then (the read fails,
// the connection is closed after the answer). Requests without a body (GETs:
// long-polls, websocket upgrades) get no deadline, so they last as long as
// they need. Once the body is read, the deadline is lifted.
func (h *handlers) bodyDeadline(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.Method == http.MethodGet || r.Method == http.MethodHead {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetReadDeadline(time.Now().Add(h.BodyTimeout)); err != nil {
		c.Next() // not supported by this connection (HTTP/2 streams are bounded by their server)
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
	c.Next()
}

// deadlineBody lifts the read deadline of its connection once read to the end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// isTimeout reports whether err is a read that hit its deadline.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// noSniff tells browsers not to guess the type of any answer: a JSON answer
// (or an error) is never taken for HTML or a script.
func noSniff(c *gin.Context) {
	c.Writer.Header().Set("X-Content-Type-Options", "nosniff")
	c.Next()
}

// requireJSON refuses, with 415, an API request that changes something and
// does not say its body is JSON: POST, PUT and PATCH always, and any other
// request that has a body. A form or text/plain POST is what another site
// can send without a preflight; a DELETE without a body can never be sent
// cross-origin without one.
func requireJSON(c *gin.Context) {
	r := c.Request
	switch {
	case r.Method == http.MethodPost && r.ContentLength == 0 &&
		(strings.HasSuffix(r.URL.Path, "/viewers") || strings.HasPrefix(r.URL.Path, "/api/v1/admin/")):
		c.Next() // its body is optional; the operator's actions have none
		return
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
	case safeMethod(r.Method) || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		c.Next()
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)")
		return
	}
	c.Next()
}
