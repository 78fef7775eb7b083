package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/tasks"
)

// getStream answers GET /api/v1/tasks/<id>/streams/<name>?from=N[&limit=M]:
// the items of a stream of the caller's task from index N on (0 by default),
// as {"stream","from","count","items"}.
func (h *handlers) getStream(c *gin.Context) {
	from, limit := int64(0), 0
	if v := c.Query("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(c, http.StatusBadRequest, "bad_request", "from must be a non-negative integer (the index of the first item wanted)")
			return
		}
		from = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > tasks.MaxStreamItems {
			writeError(c, http.StatusBadRequest, "bad_request", "limit must be an integer from 1 to "+strconv.Itoa(tasks.MaxStreamItems))
			return
		}
		limit = n
	}
	owner, ok := h.ownerFor(c)
	if !ok {
		return
	}
	page, err := h.Tasks.Stream(c, owner, c.Param("id"), c.Param("name"), from, limit)
	if errors.Is(err, taskservice.ErrBadStreamName) {
		writeError(c, http.StatusBadRequest, "bad_request", "a stream name is 1 to 64 letters, digits, '.', '_' or '-'")
		return
	}
	if err != nil {
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, page)
}
