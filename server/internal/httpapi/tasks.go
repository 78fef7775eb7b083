package httpapi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/tasks"
)

const identityKey = "taskwire.identity"

// tokenFrom returns the session token of a request: the Authorization bearer token,
// else the session cookie.
func tokenFrom(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if t, ok := strings.CutPrefix(auth, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if c, err := r.Cookie(session.CookieName); err == nil {
		return c.Value
	}
	return ""
}

// session returns the caller's token, issuing a new identity when the request has
// no valid one, and sets it as an HttpOnly cookie. Without anonymous sessions
// it answers 404.
func (h *handlers) session(c *gin.Context) {
	if h.Signer == nil || !h.Auth.AnonymousSessions() {
		writeError(c, http.StatusNotFound, "not_found", "anonymous sessions are turned off: use a token of the app (Authorization: Bearer)")
		return
	}
	token := tokenFrom(c.Request)
	if _, err := h.Signer.Verify(token); err != nil {
		token, _ = h.Signer.New()
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     session.CookieName,
		Value:    token,
		Path:     "/",
		MaxAge:   365 * 24 * 3600,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   h.isTLS(c.Request),
	})
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"token": token})
}

// isTLS reports whether the client reached us over TLS: directly, or through a
// proxy that says so in X-Forwarded-Proto, which is believed only with TrustProxy
// (any client can send the header).
func (h *handlers) isTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !h.TrustProxy {
		return false
	}
	// A chain of proxies appends: the first value is what the client used.
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// readBody reads the request body, at most MaxBodyBytes, or answers why it
// could not (413, 408, 400) and returns false.
func (h *handlers) readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body must not exceed %d bytes", h.MaxBodyBytes))
		case isTimeout(err):
			c.Header("Connection", "close")
			writeError(c, http.StatusRequestTimeout, "body_timeout", fmt.Sprintf("the body was not received within %s", h.BodyTimeout))
		default:
			writeError(c, http.StatusBadRequest, "bad_request", "could not read the body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

func (h *handlers) createTask(c *gin.Context) {
	body, ok := h.readBody(c)
	if !ok {
		return
	}
	p := principal(c)
	owner := p.Identity
	switch p.Kind {
	case auth.KindViewer:
		forbidden(c, "a viewer token is read-only: it cannot start tasks")
		return
	case auth.KindAPIKey:
		owner = taskservice.Anyone // the body's subject
	}
	rec, err := h.Tasks.Create(c, owner, body)
	if err != nil {
		h.taskError(c, err)
		return
	}
	if h.Observer != nil {
		h.Observer.TaskEnqueued(string(rec.Kind))
	}
	c.Header("Location", "/api/v1/tasks/"+rec.ID)
	c.JSON(http.StatusAccepted, gin.H{"id": rec.ID, "state": rec.State})
}

func (h *handlers) listTasks(c *gin.Context) {
	p := principal(c)
	owner := p.Identity
	switch p.Kind {
	case auth.KindViewer:
		h.listViewer(c, p)
		return
	case auth.KindAPIKey:
		owner = c.Query("subject")
		if owner == "" || !auth.ValidSubject(owner) {
			writeError(c, http.StatusBadRequest, "bad_request", "with an API key, name the identity whose tasks to list: GET /api/v1/tasks?subject=<identity>")
			return
		}
	}
	list, err := h.Tasks.List(c, owner)
	if err != nil {
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"tasks": list})
}

func (h *handlers) getTask(c *gin.Context) {
	owner, ok := h.ownerFor(c)
	if !ok {
		return
	}
	rec, err := h.Tasks.Get(c, owner, c.Param("id"))
	if err != nil {
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, rec)
}

func (h *handlers) cancelTask(c *gin.Context) {
	owner, ok := h.ownerFor(c)
	if !ok {
		return
	}
	if principal(c).Kind == auth.KindViewer {
		forbidden(c, "a viewer token is read-only: it cannot cancel the task")
		return
	}
	rec, outcome, err := h.Tasks.Cancel(c, owner, c.Param("id"))
	if err != nil {
		h.taskError(c, err)
		return
	}
	status := http.StatusOK
	if outcome == taskservice.Requested {
		status = http.StatusAccepted
	}
	c.JSON(status, rec)
}

func (h *handlers) getResult(c *gin.Context) {
	owner, ok := h.ownerFor(c)
	if !ok {
		return
	}
	if p := principal(c); p.Kind == auth.KindViewer && !p.AllowResult {
		forbidden(c, "this viewer token does not allow downloading the result")
		return
	}
	rec, rc, err := h.Tasks.OpenResult(c, owner, c.Param("id"))
	if err != nil {
		h.taskError(c, err)
		return
	}
	defer rc.Close()
	w := c.Writer
	ct, name, size := resultFile(rec)
	w.Header().Set("Content-Type", ct)
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disposition == "" { // a name that cannot be written in the header
		disposition = mime.FormatMediaType("attachment", map[string]string{"filename": string(rec.Kind) + "-" + rec.ID})
	}
	w.Header().Set("Content-Disposition", disposition)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, rc); err != nil {
		// Headers are gone; all we can do is cut the response short and log it.
		h.Logger.WarnContext(c, "result download interrupted", "task", rec.ID, "sent", n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// resultFile returns the content type, the file name and the size of the
// result of rec as downloaded: what the record says, else defaults by kind
// (export: CSV) and by content type (JSON).
func resultFile(rec *tasks.Record) (contentType, filename string, size int64) {
	r := rec.Result
	if r == nil {
		r = &tasks.Result{}
	}
	contentType, filename, size = r.ContentType, r.Filename, r.Bytes
	if _, _, err := mime.ParseMediaType(contentType); err != nil {
		contentType = "" // not a media type: the defaults below
	}
	if len(r.Value) > 0 {
		size = int64(len(r.Value))
		if contentType == "" {
			contentType = "application/json"
		}
	}
	if contentType == "" {
		contentType = "application/octet-stream"
		if rec.Kind == tasks.KindExport {
			contentType = "text/csv; charset=utf-8"
		}
	}
	if filename == "" {
		filename = string(rec.Kind) + "-" + rec.ID
		switch mt, _, _ := mime.ParseMediaType(contentType); {
		case mt == "text/csv":
			filename += ".csv"
		case mt == "application/json":
			filename += ".json"
		case mt == "application/pdf":
			filename += ".pdf"
		}
	}
	return contentType, filename, size
}

func rateLimitMessage(rl *taskservice.RateLimitError, secs int) string {
	if rl == nil {
		return fmt.Sprintf("too many tasks started; retry in %d s", secs)
	}
	return fmt.Sprintf("too many tasks started: at most %g per second (%d at once) per session; retry in %d s", rl.Rate, rl.Burst, secs)
}

// taskError maps service errors to HTTP answers.
func (h *handlers) taskError(c *gin.Context, err error) {
	switch {
	case creationError(c, err):
	case errors.Is(err, taskservice.ErrNotFound):
		writeError(c, http.StatusNotFound, "not_found", "no such task")
	case errors.Is(err, taskservice.ErrFinished):
		writeError(c, http.StatusConflict, "task_finished", "the task already finished and cannot be cancelled")
	case errors.Is(err, taskservice.ErrNotReady):
		writeError(c, http.StatusConflict, "not_finished", "the task has not finished yet; its result is not available")
	case errors.Is(err, taskservice.ErrNoResult):
		writeError(c, http.StatusConflict, "no_result", "the task did not complete, so it has no result")
	case errors.Is(err, taskservice.ErrResultGone):
		writeError(c, http.StatusGone, "result_expired", "the result is no longer available")
	case errors.Is(err, taskservice.ErrRateLimited):
		var rl *taskservice.RateLimitError
		secs := 1
		if errors.As(err, &rl) {
			secs = max(1, int(math.Ceil(rl.RetryAfter.Seconds())))
		}
		c.Header("Retry-After", strconv.Itoa(secs))
		writeError(c, http.StatusTooManyRequests, "rate_limited", rateLimitMessage(rl, secs))
	case errors.Is(err, taskservice.ErrTooManyActive):
		msg := "too many of your tasks are queued or running; wait for one to finish or cancel one"
		var al *taskservice.ActiveLimitError
		if errors.As(err, &al) {
			msg = fmt.Sprintf("%d of your tasks are queued or running, the most allowed at once is %d; wait for one to finish or cancel one", al.Active, al.Max)
		}
		writeError(c, http.StatusTooManyRequests, "too_many_active_tasks", msg)
	case errors.Is(err, taskservice.ErrUnavailable):
		c.Header("Retry-After", "1")
		writeError(c, http.StatusServiceUnavailable, "unavailable", "the task store is unavailable; try again")
	default:
		h.Logger.ErrorContext(c, "task handler", "err", err)
		writeError(c, http.StatusInternalServerError, "internal", "internal error")
	}
}
