// Package httpapi is taskwire's HTTP API (gin): anonymous sessions, tasks and their
// results under /api/v1, health endpoints, the Socket.IO endpoint and the web app.
// Its OpenAPI document is served at /api/v1/openapi.json (package openapi).
//
// Every error is JSON: {"error":{"code":"...","message":"..."}} with a stable code.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/server/internal/admin"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/openapi"
	"github.com/taskwire/taskwire/server/internal/session"
	"github.com/taskwire/taskwire/server/internal/taskservice"
)

// DefaultMaxBodyBytes bounds request bodies when Deps.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// Deps are what the router needs.
type Deps struct {
	// Signer issues anonymous sessions at GET /api/v1/session; nil (or an Auth
	// that refuses anonymous tokens) answers 404 there.
	Signer *session.Signer
	// Auth verifies the tokens of requests; default: anonymous sessions of
	// Signer only.
	Auth  *auth.Verifier
	Tasks *taskservice.Service
	// Admin is the operator dashboard's API (/api/v1/admin/); nil answers 404
	// there.
	Admin *admin.Service
	// Realtime serves /socket.io/.
	Realtime http.Handler
	// Static serves everything that is not an API route (the web app).
	Static http.Handler
	// Ready reports whether the server can serve traffic (Redis reachable, not
	// draining). /readyz answers 503 with its error.
	Ready func(ctx context.Context) error
	// Metrics serves /metrics when not nil.
	Metrics http.Handler
	// Observer, when set, is told about every request and every accepted task
	// (for metrics).
	Observer Observer
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// BodyTimeout bounds the time a client takes to send a request body, API
	// requests and polling POSTs alike (default 30s); GETs are not bounded.
	BodyTimeout time.Duration
	// AllowedOrigins are the browser origins ("https://app.example.com") that may
	// call the API cross-origin, with credentials (cookies); "*" allows any origin
	// without credentials (bearer tokens only; a cross-origin request's cookie
	// is not believed), for every origin, listed or not, as on Socket.IO.
	// Empty: same origin only. A
	// request that changes something (not GET, HEAD or OPTIONS) from an origin that
	// is neither the server's own nor allowed is refused with 403, so another site
	// cannot act with the user's cookie.
	AllowedOrigins []string
	// TrustProxy believes X-Forwarded-Proto: a request that a proxy received over
	// HTTPS gets a Secure session cookie. Set it only behind a proxy that sets the
	// header (clients can send it too).
	TrustProxy bool
	Logger     *slog.Logger
	// Tracer, when set, gives every API request a span (see traceRequest).
	Tracer trace.Tracer
}

// Observer is told what the API does, for metrics. Its methods must be quick and
// safe for concurrent use.
type Observer interface {
	// Request is called once a request was answered: its method (one of the
	// standard ones, else "OTHER"), the route it matched ("/api/v1/tasks/:id";
	// RouteOther when none), the status and how long it took. Socket.IO
	// requests (route "/socket.io/*any") may last as long as their long-poll or
	// WebSocket connection.
	Request(method, route string, status int, d time.Duration)
	// TaskEnqueued is called for every task accepted and queued, with its kind.
	TaskEnqueued(kind string)
}

// SlowRequest is the duration from which an answered request is logged at info
// level; quicker ones are logged at debug level.
const SlowRequest = time.Second

// RouteOther is the route of requests that matched none (the web app's files,
// unknown paths).
const RouteOther = "other"

// NewRouter returns the HTTP handler of the server.
func NewRouter(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = DefaultBodyTimeout
	}
	if d.Auth == nil {
		d.Auth, _ = auth.New(context.Background(), auth.Config{Sessions: d.Signer})
	}
	h := &handlers{Deps: d}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if d.Observer != nil {
		r.Use(h.observe) // outermost: it sees the 500 that recover writes
	}
	r.Use(h.recover, h.accessLog, h.bodyDeadline, noSniff, h.cors)

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

	api := r.Group("/api/v1", requireJSON)
	if d.Tracer != nil {
		api.Use(h.traceRequest)
	}
	api.GET("/session", h.session)
	api.GET("/openapi.json", gin.WrapH(openapi.Handler()))
	api.GET("/kinds", h.listKinds)
	authed := api.Group("", h.identify)
	authed.POST("/tasks", h.createTask)
	authed.GET("/tasks", h.listTasks)
	authed.GET("/tasks/:id", h.getTask)
	authed.DELETE("/tasks/:id", h.cancelTask)
	authed.GET("/tasks/:id/result", h.getResult)
	authed.GET("/tasks/:id/streams/:name", h.getStream)
	authed.GET("/tasks/:id/events", h.getEvents)
	authed.POST("/tasks/:id/viewers", h.createViewer)
	authed.GET("/inbox", h.getInbox)
	authed.POST("/inbox/ack", h.ackInbox)
	h.adminRoutes(api)

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

// cors answers the preflights of allowed origins, adds the CORS headers to their
// requests, and refuses requests with side effects from other origins (see
// Deps.AllowedOrigins), for the API (/api/...; Socket.IO has its own).
// Same-origin requests and those without an Origin header (not from a browser)
// pass untouched.
func (h *handlers) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || !isAPI(c.Request.URL.Path) || sameOrigin(origin, c.Request.Host) {
		c.Next()
		return
	}
	c.Writer.Header().Add("Vary", "Origin")
	anyOrigin, listed := false, false
	for _, o := range h.AllowedOrigins {
		switch {
		case o == "*":
			anyOrigin = true
		case strings.EqualFold(strings.TrimSuffix(o, "/"), origin):
			listed = true
		}
	}
	preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
	if !listed && !anyOrigin {
		if preflight || !safeMethod(c.Request.Method) {
			writeError(c, http.StatusForbidden, "origin_not_allowed", "requests from origin "+strconv.Quote(origin)+" are not allowed")
			return
		}
		c.Next() // no CORS headers: the browser keeps the answer from the page
		return
	}
	hd := c.Writer.Header()
	if listed && !anyOrigin {
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
	} else {
		hd.Set("Access-Control-Allow-Origin", "*")
	}
	if preflight {
		hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		hd.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	hd.Set("Access-Control-Expose-Headers", "Location, Retry-After, Content-Disposition")
	c.Next()
}

// cookieBelieved reports whether the session cookie of r may identify its
// caller: always, unless AllowedOrigins has "*" and r comes from a page of
// another origin (any origin, without credentials). Without "*", other
// origins are refused anything that changes something (cors), and cannot
// read what they get.
func (h *handlers) cookieBelieved(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || sameOrigin(origin, r.Host) || !slices.Contains(h.AllowedOrigins, "*")
}

// sameOrigin reports whether origin names host (the request's Host header).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
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
	// One line per request would drown the rest at info: requests are logged at
	// debug (LOG_LEVEL=debug shows them all), slow ones at info, server errors as
	// warnings.
	level, d := slog.LevelDebug, time.Since(start)
	switch {
	case c.Writer.Status() >= 500:
		level = slog.LevelWarn
	case d >= SlowRequest:
		level = slog.LevelInfo
	}
	h.Logger.LogAttrs(c, level, "http",
		slog.String("method", c.Request.Method),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Duration("duration", d),
	)
}

// observe reports every request to the Observer.
func (h *handlers) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = RouteOther
	}
	h.Observer.Request(methodLabel(c.Request.Method), route, c.Writer.Status(), time.Since(start))
}

// methodLabel bounds the methods reported: clients can send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
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
