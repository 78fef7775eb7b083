// Command backend is an example app backend in front of taskwire: it logs a
// user in (any name; no password, it is an example), gives the user's page a
// JWT signed with the secret it shares with the taskwire server, starts tasks
// for that user with its API key, and serves a page that follows them live with
// @taskwire/client.
//
// The page talks to taskwire through this backend: /api/ and /socket.io/ are
// proxied to TASKWIRE_URL, so the page, its cookies and taskwire share one
// origin and no CORS is needed.
//
// Configuration (environment):
//
//	TASKWIRE_URL         the taskwire server (default http://127.0.0.1:8080)
//	TASKWIRE_API_KEY     the key of `taskwire-server apikey new NAME` (required)
//	TASKWIRE_JWT_SECRET  the server's TASKWIRE_JWT_SECRET, at least 32 bytes (required)
//	ADDR                 listen address (default 127.0.0.1:3000)
//	FRONTEND_DIR         the repository's frontend/, where the built
//	                     @taskwire/client (packages/client/dist) and
//	                     socket.io-client (node_modules) are (default frontend)
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/taskwire/taskwire/client"
)

//go:embed static
var static embed.FS

// tokenTTL is how long a user's JWT lives; the page asks /token for a new one
// before it expires.
const tokenTTL = 5 * time.Minute

// sessionCookie holds the logged-in user, signed by the backend.
const sessionCookie = "backend_session"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, log); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

// config is what the backend reads from its environment.
type config struct {
	taskwireURL string
	apiKey      string
	jwtSecret   []byte
	addr        string
	frontendDir string
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		taskwireURL: or(getenv("TASKWIRE_URL"), "http://127.0.0.1:8080"),
		apiKey:      getenv("TASKWIRE_API_KEY"),
		jwtSecret:   []byte(getenv("TASKWIRE_JWT_SECRET")),
		addr:        or(getenv("ADDR"), "127.0.0.1:3000"),
		frontendDir: or(getenv("FRONTEND_DIR"), "frontend"),
	}
	var bad []string
	if c.apiKey == "" {
		bad = append(bad, "TASKWIRE_API_KEY is required (taskwire-server apikey new NAME makes one)")
	}
	if len(c.jwtSecret) < client.MinSecretBytes {
		bad = append(bad, fmt.Sprintf("TASKWIRE_JWT_SECRET must be the server's, at least %d bytes", client.MinSecretBytes))
	}
	for _, f := range []string{clientDist(c.frontendDir), socketIOBundle(c.frontendDir)} {
		if _, err := os.Stat(f); err != nil {
			bad = append(bad, fmt.Sprintf("%s is missing: build the client first (cd frontend && npm ci && npm run build:client), or set FRONTEND_DIR", f))
		}
	}
	if len(bad) > 0 {
		return c, errors.New(strings.Join(bad, "; "))
	}
	return c, nil
}

func clientDist(frontend string) string { return filepath.Join(frontend, "packages", "client", "dist") }

func socketIOBundle(frontend string) string {
	return filepath.Join(frontend, "node_modules", "socket.io-client", "dist", "socket.io.esm.min.js")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// run serves until ctx is done, then shuts down within 10 s.
func run(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	tw, err := client.New(cfg.taskwireURL, cfg.apiKey)
	if err != nil {
		return err
	}
	target, _ := url.Parse(cfg.taskwireURL)
	app := &app{tw: tw, cfg: cfg, log: log, proxy: httputil.NewSingleHostReverseProxy(target)}
	m := hmac.New(sha256.New, cfg.jwtSecret)
	m.Write([]byte("example backend sessions"))
	app.cookieKey = m.Sum(nil)

	srv := &http.Server{Addr: cfg.addr, Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("backend listening", "addr", cfg.addr, "taskwire", cfg.taskwireURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("backend shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// app holds the handlers.
type app struct {
	tw        *client.Client
	cfg       config
	log       *slog.Logger
	proxy     *httputil.ReverseProxy
	cookieKey []byte
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /token", a.token)
	mux.HandleFunc("POST /start", a.start)
	page, _ := fs.Sub(static, "static")
	mux.Handle("GET /app.js", http.FileServerFS(page))
	mux.Handle("GET /vendor/taskwire-client/", http.StripPrefix("/vendor/taskwire-client/",
		http.FileServer(http.Dir(clientDist(a.cfg.frontendDir)))))
	mux.HandleFunc("GET /vendor/socket.io-client.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, socketIOBundle(a.cfg.frontendDir))
	})
	// The taskwire API and Socket.IO, on this origin (websockets included).
	mux.Handle("/api/", a.proxy)
	mux.Handle("/socket.io/", a.proxy)
	return mux
}

// user is who is logged in.
type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// userID makes the user id of a name: "u-" and its letters and digits, or a
// hash of it when it has none.
func userID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case (r == ' ' || r == '-' || r == '_') && b.Len() > 0:
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-")
	if id == "" || len(id) > 64 {
		sum := sha256.Sum256([]byte(name))
		id = hex.EncodeToString(sum[:6])
	}
	return "u-" + id
}

func (a *app) sign(payload string) string {
	m := hmac.New(sha256.New, a.cookieKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// currentUser returns the logged-in user of r, or nil.
func (a *app) currentUser(r *http.Request) *user {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	payload, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(a.sign(payload))) {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	var u user
	if json.Unmarshal(b, &u) != nil || u.ID == "" {
		return nil
	}
	return &u
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 100 {
		http.Error(w, "a name of 1 to 100 characters, please", http.StatusBadRequest)
		return
	}
	b, _ := json.Marshal(user{ID: userID(name), Name: name})
	payload := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: payload + "." + a.sign(payload), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	a.log.Info("login", "user", userID(name))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// token answers the logged-in user's JWT, as text: the page's token function.
func (a *app) token(w http.ResponseWriter, r *http.Request) {
	u := a.currentUser(r)
	if u == nil {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	tok, err := client.SignUserToken(a.cfg.jwtSecret, u.ID, tokenTTL)
	if err != nil {
		a.log.Error("sign token", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(tok))
}

// start starts an export for the logged-in user: {"rows": N} -> {"id"}.
func (a *app) start(w http.ResponseWriter, r *http.Request) {
	u := a.currentUser(r)
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://"), r.Host) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request"})
		return
	}
	var req struct {
		Rows int `json:"rows"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"rows\": N}"})
		return
	}
	started, err := a.tw.Start(r.Context(), "export", map[string]any{"rows": req.Rows}, client.ForSubject(u.ID))
	var te *client.Error
	switch {
	case errors.As(err, &te) && te.Status < 500:
		// The user's own mistake (bad rows) or limit: say it.
		writeJSON(w, te.Status, map[string]string{"error": te.Message, "code": te.Code})
		return
	case err != nil:
		a.log.Error("start a task", "user", u.ID, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "taskwire is not available; try again"})
		return
	}
	a.log.Info("task started", "user", u.ID, "task", started.ID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": started.ID})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var pages = template.Must(template.ParseFS(static, "static/*.html"))

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	u := a.currentUser(r)
	if u == nil {
		_ = pages.ExecuteTemplate(w, "login.html", nil)
		return
	}
	_ = pages.ExecuteTemplate(w, "app.html", u)
}
