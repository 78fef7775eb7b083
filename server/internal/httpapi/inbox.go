package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// inboxOwner returns whose inbox the request is about: the caller's; with
// an API key, the identity named by ?subject=. A viewer has no inbox (403).
func (h *handlers) inboxOwner(c *gin.Context) (string, bool) {
	p := principal(c)
	switch p.Kind {
	case auth.KindViewer:
		forbidden(c, "a viewer token follows one task: it has no inbox")
		return "", false
	case auth.KindAPIKey:
		owner := c.Query("subject")
		if owner == "" || !auth.ValidSubject(owner) {
			writeError(c, http.StatusBadRequest, "bad_request", "with an API key, name the identity whose inbox it is: "+c.Request.Method+" "+c.FullPath()+"?subject=<identity>")
			return "", false
		}
		return owner, true
	}
	return p.Identity, true
}

// getInbox answers GET /api/v1/inbox: the caller's finished tasks not marked
// seen yet, newest first, as {"items":[InboxEntry...]}.
func (h *handlers) getInbox(c *gin.Context) {
	owner, ok := h.inboxOwner(c)
	if !ok {
		return
	}
	list, err := h.Tasks.Inbox(c, owner)
	if err != nil {
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"items": list})
}

// ackInbox answers POST /api/v1/inbox/ack {"taskIds":[...]}: the items are
// marked seen, all or none, and the answer is events.InboxAckReply.
func (h *handlers) ackInbox(c *gin.Context) {
	body, ok := h.readBody(c)
	if !ok {
		return
	}
	owner, ok := h.inboxOwner(c)
	if !ok {
		return
	}
	var req events.InboxAckRequest
	var acked []string
	err := tasks.DecodeStrict(body, &req, "")
	if err == nil {
		acked, err = h.Tasks.AckInbox(c, owner, req.TaskIDs)
	}
	if err != nil {
		h.inboxError(c, err)
		return
	}
	c.JSON(http.StatusOK, events.InboxAckReply{TaskIDs: acked})
}

// inboxError answers the errors of an inbox ack.
func (h *handlers) inboxError(c *gin.Context, err error) {
	var (
		ve *tasks.ValidationError
		ie *taskservice.IDError
	)
	switch {
	case errors.As(err, &ve):
		field := ve.Field
		if field == "" {
			field = "body"
		}
		writeDetailedError(c, http.StatusBadRequest, "bad_request",
			"the body must be {\"taskIds\": [task id, ...]} with 1 to "+fmt.Sprint(taskservice.MaxInboxAck)+" ids: "+field+": "+ve.Message,
			gin.H{"details": []gin.H{{"field": field, "message": ve.Message}}})
	case errors.As(err, &ie) && errors.Is(err, taskservice.ErrNotFinal):
		writeError(c, http.StatusConflict, "not_finished", "task "+ie.ID+" has not finished: it has no inbox item; nothing was marked seen")
	case errors.As(err, &ie):
		writeError(c, http.StatusNotFound, "not_found", "no such task: "+ie.ID+"; nothing was marked seen")
	default:
		h.taskError(c, err)
	}
}
