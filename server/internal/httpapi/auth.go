package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/tasks"
)

const principalKey = "taskwire.principal"

// identify resolves the caller's principal or answers 401 with the reason.
func (h *handlers) identify(c *gin.Context) {
	token := tokenFrom(c.Request)
	if !h.cookieBelieved(c.Request) && !strings.HasPrefix(c.GetHeader("Authorization"), "Bearer ") {
		token = "" // a page of another site allowed only through "*": no credentials
	}
	if token == "" {
		msg := "no token: send the app's token as an Authorization: Bearer header"
		if h.Signer != nil && h.Auth.AnonymousSessions() {
			msg = "no session: call GET /api/v1/session and send the token as a cookie or an Authorization: Bearer header"
		}
		writeError(c, http.StatusUnauthorized, "unauthorized", msg)
		return
	}
	p, err := h.Auth.Verify(c, token)
	if err != nil {
		why := "invalid token"
		var ae *auth.Error
		if errors.As(err, &ae) {
			why = ae.Reason
		}
		writeError(c, http.StatusUnauthorized, "unauthorized", why)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func principal(c *gin.Context) *auth.Principal {
	p, _ := c.Get(principalKey)
	return p.(*auth.Principal)
}

func forbidden(c *gin.Context, message string) {
	writeError(c, http.StatusForbidden, "forbidden", message)
}

// ownerFor returns what the task service is asked as for the task of the
// request's :id: the caller's identity; Anyone for an API key, and for a
// viewer its own task. A viewer asking for another task is answered 404 (as
// for a task that does not exist) and ok is false.
func (h *handlers) ownerFor(c *gin.Context) (owner string, ok bool) {
	p := principal(c)
	switch p.Kind {
	case auth.KindAPIKey:
		return taskservice.Anyone, true
	case auth.KindViewer:
		if c.Param("id") != p.TaskID {
			writeError(c, http.StatusNotFound, "not_found", "no such task")
			return "", false
		}
		return taskservice.Anyone, true
	}
	return p.Identity, true
}

// listViewer answers GET /api/v1/tasks for a viewer: its one task.
func (h *handlers) listViewer(c *gin.Context, p *auth.Principal) {
	list := []*tasks.Record{}
	rec, err := h.Tasks.Get(c, taskservice.Anyone, p.TaskID)
	switch {
	case err == nil:
		list = append(list, rec)
	case !errors.Is(err, taskservice.ErrNotFound):
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"tasks": list})
}

// viewerRequest is the optional body of POST /api/v1/tasks/<id>/viewers.
type viewerRequest struct {
	TTLSeconds  *int64 `json:"ttlSeconds"`
	AllowResult bool   `json:"allowResult"`
}

// createViewer answers POST /api/v1/tasks/<id>/viewers (the owner, or an API
// key): a viewer token for the task, 201 {"token","expiresAt","taskId"}.
func (h *handlers) createViewer(c *gin.Context) {
	p := principal(c)
	if p.Kind == auth.KindViewer {
		forbidden(c, "a viewer token cannot make viewer tokens")
		return
	}
	var req viewerRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.MaxBodyBytes))
	if err != nil {
		writeError(c, http.StatusBadRequest, "bad_request", "could not read the body")
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := tasks.DecodeStrict(body, &req, ""); err != nil {
			writeError(c, http.StatusBadRequest, "bad_request", "the body must be {\"ttlSeconds\": integer, \"allowResult\": boolean}, both optional: "+err.Error())
			return
		}
	}
	ttl := auth.DefaultViewerTTL
	if req.TTLSeconds != nil {
		max := int64(auth.MaxViewerTTL / time.Second)
		if *req.TTLSeconds < 1 || *req.TTLSeconds > max {
			writeError(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("ttlSeconds must be an integer from 1 to %d (7 days)", max))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	owner := p.Identity
	if p.Kind == auth.KindAPIKey {
		owner = taskservice.Anyone
	}
	id := c.Param("id")
	if _, err := h.Tasks.Get(c, owner, id); err != nil {
		h.taskError(c, err)
		return
	}
	token, exp, err := h.Auth.IssueViewer(id, ttl, req.AllowResult)
	if err != nil {
		h.Logger.ErrorContext(c, "issue viewer token", "task", id, "err", err)
		writeError(c, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"token": token, "expiresAt": exp.UTC().Format(time.RFC3339), "taskId": id})
}
