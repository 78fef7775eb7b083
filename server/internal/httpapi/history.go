package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
)

// Bounds of GET /api/v1/tasks/<id>/events.
const (
	// DefaultEventsLimit is how many events one answer carries without limit.
	DefaultEventsLimit = 1000
	// MaxEventsLimit is the greatest limit (an answer also stops at
	// store.MaxHistoryReadBytes of payloads; next says where to go on).
	MaxEventsLimit = store.MaxHistoryRead
)

// eventsPage is the answer of GET /api/v1/tasks/<id>/events.
type eventsPage struct {
	TaskID string `json:"taskId"`
	// Seq is the task's seq when the events were read.
	Seq    int64                 `json:"seq"`
	Events []events.HistoryEvent `json:"events"`
	// Recovered is false when events after since are no longer kept; Reason
	// says why ("trimmed", "expired"), and Events is empty.
	Recovered bool          `json:"recovered"`
	Reason    events.Reason `json:"reason,omitempty"`
	// Next, when set, is the seq of the last event of Events: more follow,
	// read them with since=Next.
	Next int64 `json:"next,omitempty"`
}

// getEvents answers GET /api/v1/tasks/<id>/events?since=N[&limit=M]: the
// events of the caller's task after seq N (0 by default), oldest first, at most
// M (DefaultEventsLimit by default, at most MaxEventsLimit), with whether they
// are all there.
func (h *handlers) getEvents(c *gin.Context) {
	since, limit := int64(0), DefaultEventsLimit
	if v, ok := c.GetQuery("since"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > taskservice.MaxSince {
			writeError(c, http.StatusBadRequest, "bad_request",
				"since must be a whole number from 0 to "+strconv.FormatInt(taskservice.MaxSince, 10)+": the seq of the last event the client has")
			return
		}
		since = n
	}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventsLimit {
			writeError(c, http.StatusBadRequest, "bad_request", "limit must be a whole number from 1 to "+strconv.Itoa(MaxEventsLimit))
			return
		}
		limit = n
	}
	owner, ok := h.ownerFor(c)
	if !ok {
		return
	}
	page, err := h.Tasks.History(c, owner, c.Param("id"), since, limit)
	if errors.Is(err, taskservice.ErrBadSince) {
		writeError(c, http.StatusBadRequest, "bad_request", "since is greater than the task's seq: the client cannot have events the task never had")
		return
	}
	if err != nil {
		h.taskError(c, err)
		return
	}
	out := eventsPage{TaskID: page.Record.ID, Seq: page.Record.Seq, Events: page.Events, Recovered: page.Recovered,
		Reason: page.Reason, Next: page.Next}
	if out.Events == nil {
		out.Events = []events.HistoryEvent{}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
