package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/admin"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// Bounds of GET /api/v1/admin/tasks.
const (
	DefaultAdminPage = 50
	MaxAdminPage     = 500
)

// adminRoutes registers the operator API under /api/v1/admin. Every route is
// there whether the dashboard is on or not; off, each answers 404.
func (h *handlers) adminRoutes(api *gin.RouterGroup) {
	g := api.Group("/admin", h.requireAdmin)
	g.GET("/queue", h.adminQueue)
	g.GET("/workers", h.adminWorkers)
	g.GET("/servers", h.adminServers)
	g.GET("/tasks", h.adminTasks)
	g.GET("/tasks/:id", h.adminTask)
	g.GET("/failures", h.adminFailures)
	g.POST("/tasks/:id/cancel", h.adminCancel)
	g.POST("/tasks/:id/retry", h.adminRetry)
	g.POST("/purge", h.adminPurge)
}

// requireAdmin lets only the operator credential through: 404 when the
// dashboard is off, 401 without a credential or with a wrong one, 403 for a
// token (or session cookie) that identifies a user, an API key or a viewer.
func (h *handlers) requireAdmin(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if !h.Admin.Enabled() {
		writeError(c, http.StatusNotFound, "not_found", "the operator dashboard is off (ADMIN_TOKEN is not set)")
		return
	}
	bearer := ""
	if a := c.GetHeader("Authorization"); a != "" {
		bearer, _ = strings.CutPrefix(a, "Bearer ")
		bearer = strings.TrimSpace(bearer)
	}
	if h.Admin.Check(bearer) {
		c.Next()
		return
	}
	// Not the operator: say whether it is someone else, so that a user token
	// sent here by mistake is told it can never work.
	token := bearer
	if token == "" && c.GetHeader("Authorization") == "" {
		token = tokenFrom(c.Request) // the session cookie
	}
	if token != "" {
		if _, err := h.Auth.Verify(c, token); err == nil {
			writeError(c, http.StatusForbidden, "forbidden", "the operator API needs the operator credential (ADMIN_TOKEN); user tokens, API keys, sessions and viewer tokens never open it")
			return
		}
	}
	c.Header("WWW-Authenticate", `Bearer realm="taskwire-operator"`)
	if bearer == "" {
		writeError(c, http.StatusUnauthorized, "unauthorized", "the operator API needs the operator credential: Authorization: Bearer <ADMIN_TOKEN>")
		return
	}
	writeError(c, http.StatusUnauthorized, "unauthorized", "wrong operator credential")
}

func (h *handlers) adminError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, admin.ErrNotFound):
		writeError(c, http.StatusNotFound, "not_found", "no such task (or its record expired)")
	case errors.Is(err, admin.ErrConflict):
		writeError(c, http.StatusConflict, "conflict", err.Error())
	default:
		c.Header("Retry-After", "1")
		writeError(c, http.StatusServiceUnavailable, "unavailable", "the task store is unavailable; try again")
	}
}

func (h *handlers) adminQueue(c *gin.Context) {
	o, err := h.Admin.Queue(c)
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (h *handlers) adminWorkers(c *gin.Context) {
	ws, err := h.Admin.Workers(c)
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"workers": ws})
}

func (h *handlers) adminServers(c *gin.Context) {
	vs, err := h.Admin.Servers(c)
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"servers": vs, "self": h.Admin.ID()})
}

// adminTaskParams are the query parameters of GET /api/v1/admin/tasks.
var adminTaskParams = map[string]bool{"kind": true, "state": true, "owner": true, "olderThan": true, "newerThan": true,
	"limit": true, "cursor": true}

func badFilter(c *gin.Context, msg string) {
	writeError(c, http.StatusBadRequest, "bad_filter", msg)
}

// adminTasks answers GET /api/v1/admin/tasks?kind=&state=&owner=&olderThan=&newerThan=&limit=&cursor=.
func (h *handlers) adminTasks(c *gin.Context) {
	q := c.Request.URL.Query()
	for k, v := range q {
		if !adminTaskParams[k] {
			badFilter(c, "unknown parameter "+strconv.Quote(k)+": the filters are kind, state, owner, olderThan, newerThan, limit and cursor")
			return
		}
		if len(v) > 1 {
			badFilter(c, "parameter "+strconv.Quote(k)+" is given more than once")
			return
		}
	}
	var f store.TaskFilter
	if k := q.Get("kind"); k != "" {
		if !tasks.ValidKindName(k) {
			badFilter(c, "kind "+strconv.Quote(k)+" is not a kind name (lower-case letters, digits, '.', '_' or '-')")
			return
		}
		f.Kind = k
	}
	if s := q.Get("state"); s != "" {
		switch tasks.State(s) {
		case tasks.StateQueued, tasks.StateRunning, tasks.StateCompleted, tasks.StateFailed, tasks.StateCancelled:
			f.State = tasks.State(s)
		default:
			badFilter(c, "state "+strconv.Quote(s)+" is not one of queued, running, completed, failed, cancelled")
			return
		}
	}
	if o := q.Get("owner"); o != "" {
		if len(o) > 256 || strings.IndexFunc(o, unicode.IsControl) >= 0 {
			badFilter(c, "owner must be 1 to 256 characters without control characters")
			return
		}
		f.Owner = o
	}
	now := time.Now()
	for _, p := range []struct {
		name string
		set  *time.Time
	}{{"olderThan", &f.CreatedBefore}, {"newerThan", &f.CreatedAfter}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			badFilter(c, p.name+" "+strconv.Quote(v)+" is not an age such as 90s, 15m or 2h")
			return
		}
		*p.set = now.Add(-d)
	}
	if !f.CreatedBefore.IsZero() && !f.CreatedAfter.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		badFilter(c, "olderThan must be less than newerThan: no task can be both")
		return
	}
	limit := DefaultAdminPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAdminPage {
			badFilter(c, "limit "+strconv.Quote(v)+" is not a whole number from 1 to "+strconv.Itoa(MaxAdminPage))
			return
		}
		limit = n
	}
	var cursor *store.TaskCursor
	if v := q.Get("cursor"); v != "" {
		cur, err := store.ParseTaskCursor(v)
		if err != nil {
			badFilter(c, "cursor "+strconv.Quote(v)+" is not a cursor of this API: pass the next value of the previous page")
			return
		}
		cursor = &cur
	}
	page, err := h.Admin.Tasks(c, f, limit, cursor)
	if err != nil {
		h.adminError(c, err)
		return
	}
	var next any
	if page.Next != nil {
		next = page.Next.String()
	}
	c.JSON(http.StatusOK, gin.H{"tasks": page.Tasks, "next": next, "scanned": page.Scanned, "expired": page.Expired})
}

func (h *handlers) adminTask(c *gin.Context) {
	t, err := h.Admin.Task(c, c.Param("id"))
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (h *handlers) adminFailures(c *gin.Context) {
	groups, scanned, more, err := h.Admin.Failures(c)
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"groups": groups, "scanned": scanned, "more": more})
}

func (h *handlers) adminCancel(c *gin.Context) {
	t, requested, err := h.Admin.Cancel(c, c.Param("id"))
	if errors.Is(err, admin.ErrConflict) {
		writeError(c, http.StatusConflict, "task_finished", "the task already finished and cannot be cancelled")
		return
	}
	if err != nil {
		h.adminError(c, err)
		return
	}
	status := http.StatusOK
	if requested {
		status = http.StatusAccepted // its worker stops it and publishes task:cancelled
	}
	c.JSON(status, t)
}

func (h *handlers) adminRetry(c *gin.Context) {
	t, err := h.Admin.Retry(c, c.Param("id"))
	if errors.Is(err, admin.ErrConflict) {
		writeError(c, http.StatusConflict, "task_not_failed", "only a failed task can be retried")
		return
	}
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (h *handlers) adminPurge(c *gin.Context) {
	removed, scanned, more, err := h.Admin.Purge(c)
	if err != nil {
		h.adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": removed, "scanned": scanned, "more": more})
}
