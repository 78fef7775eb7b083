// Package httpapi is taskwire's HTTP API (gin): anonymous sessions, tasks and their
// results under /api/v1, health endpoints, the Socket.IO endpoint and the web app.
//
// Every error is JSON: {"error":{"code":"...","message":"..."}} with a stable code.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskctl"
)

// DefaultMaxBodyBytes bounds request bodies when Deps.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// Deps are what the router needs.
type Deps struct {
	Signer *session.Signer
	Tasks  *taskctl.Service
	// Realtime serves /socket.io/.
	Realtime http.Handler
	// Static serves everything that is not an API route (the web app).
	Static http.Handler
	// Ready reports whether the server can serve traffic (Redis reachable, not
	// draining). /readyz answers 503 with its error.
	Ready func(ctx context.Context) error
	// Metrics serves /metrics when not nil.
	Metrics http.Handler
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// NewRouter returns the HTTP handler of the server.
func NewRouter(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = DefaultMaxBodyBytes
	}
	h := &handlers{Deps: d}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(h.recover, h.accessLog)

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", h.ready)
	if d.Metrics != nil {
		r.GET("/metrics", gin.WrapH(d.Metrics))
	}
	if d.Realtime != nil {
		rt := gin.WrapH(d.Realtime)
		r.GET("/socket.io/*any", rt)
		r.POST("/socket.io/*any", rt)
		r.OPTIONS("/socket.io/*any", rt)
	}

	api := r.Group("/api/v1")
	api.GET("/session", h.session)
	authed := api.Group("", h.identify)
	authed.POST("/tasks", h.createTask)
	authed.GET("/tasks", h.listTasks)
	authed.GET("/tasks/:id", h.getTask)
	authed.DELETE("/tasks/:id", h.cancelTask)
	authed.GET("/tasks/:id/result", h.getResult)

	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})
	r.NoRoute(func(c *gin.Context) {
		if isAPI(c.Request.URL.Path) || d.Static == nil {
			writeError(c, http.StatusNotFound, "not_found", "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path)
			return
		}
		d.Static.ServeHTTP(c.Writer, c.Request)
	})
	return r
}

func isAPI(path string) bool {
	return len(path) >= 4 && path[:4] == "/api"
}

type handlers struct {
	Deps
}

// writeError writes the JSON error body and aborts the chain.
func writeError(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": gin.H{"code": code, "message": message}})
}

func (h *handlers) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.Logger.ErrorContext(c, "panic in handler", "path", c.Request.URL.Path, "panic", v)
			writeError(c, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	c.Next()
}

func (h *handlers) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" {
		return
	}
	if len(c.Request.URL.Path) >= 10 && c.Request.URL.Path[:10] == "/socket.io" {
		return // long-polling requests would drown everything else
	}
	h.Logger.LogAttrs(c, slog.LevelInfo, "http",
		slog.String("method", c.Request.Method),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Duration("duration", time.Since(start)),
	)
}

func (h *handlers) ready(c *gin.Context) {
	if h.Ready != nil {
		ctx, cancel := context.WithTimeout(c, 2*time.Second)
		defer cancel()
		if err := h.Ready(ctx); err != nil {
			writeError(c, http.StatusServiceUnavailable, "not_ready", err.Error())
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
