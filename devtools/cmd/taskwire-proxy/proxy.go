package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	DefaultCookieName     = "taskwire_backend"
	DefaultHealthPath     = "/readyz"
	DefaultHealthInterval = time.Second
)

// Config configures a Proxy.
type Config struct {
	// Backends are the base URLs of the servers, for example http://127.0.0.1:8081.
	Backends []*url.URL
	// CookieName names the affinity cookie. Default: DefaultCookieName.
	CookieName string
	// HealthPath is requested on every backend to tell whether it takes new
	// clients; any 2xx answer means yes. Default: DefaultHealthPath.
	HealthPath string
	// HealthInterval is the pause between two rounds of health checks, and bounds
	// each check. Default: DefaultHealthInterval.
	HealthInterval time.Duration
	// Transport carries requests to the backends. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives health changes and proxy errors. Default: slog.Default().
	Logger *slog.Logger
}

// Proxy is a reverse proxy with cookie-based session affinity. A client without
// the affinity cookie is sent to the next healthy backend in turn and gets a
// cookie naming it; a client with the cookie keeps going to that backend while it
// is healthy. When its backend is down the client is moved to a healthy one and
// its cookie is rewritten. WebSocket upgrades pass through. A Proxy is safe for
// concurrent use.
type Proxy struct {
	backends []*backend
	cookie   string
	health   string
	interval time.Duration
	client   *http.Client
	log      *slog.Logger
	next     atomic.Uint64
}

type backend struct {
	index   int
	url     *url.URL
	id      string // the cookie value: a digest of the URL, so addresses stay private
	proxy   *httputil.ReverseProxy
	healthy atomic.Bool
}

// attemptKey carries an *attempt in a request's context, so the error handler of
// a backend can hand a retryable failure back to ServeHTTP.
type attemptKey struct{}

type attempt struct {
	retryable bool  // set by ServeHTTP: the request may go to another backend
	failed    error // set by the error handler: the request never reached the backend
}

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("proxy: no backends")
	}
	p := &Proxy{
		cookie:   cfg.CookieName,
		health:   cfg.HealthPath,
		interval: cfg.HealthInterval,
		log:      cfg.Logger,
	}
	if p.cookie == "" {
		p.cookie = DefaultCookieName
	}
	if p.health == "" {
		p.health = DefaultHealthPath
	}
	if p.interval <= 0 {
		p.interval = DefaultHealthInterval
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	p.client = &http.Client{Transport: transport, Timeout: p.interval}

	seen := map[string]bool{}
	for _, u := range cfg.Backends {
		if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("proxy: backend %v is not an http(s) URL with a host", u)
		}
		key := u.String()
		if seen[key] {
			return nil, fmt.Errorf("proxy: backend %s is listed twice", key)
		}
		seen[key] = true
		sum := sha256.Sum256([]byte(key))
		b := &backend{index: len(p.backends), url: u, id: hex.EncodeToString(sum[:6])}
		b.healthy.Store(true)
		b.proxy = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(b.url)
				r.SetXForwarded()
				// Keep the Host the browser used: the server compares it with Origin.
				r.Out.Host = r.In.Host
			},
			Transport:    transport,
			ErrorHandler: p.errorHandler(b),
			ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		}
		p.backends = append(p.backends, b)
	}
	return p, nil
}

// ServeHTTP routes r to the client's backend, or picks one.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A request without a body can be sent again when its backend refuses the
	// connection; one with a body cannot (the transport has consumed it).
	at := &attempt{retryable: r.ContentLength == 0}
	r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, at))

	tried := make([]bool, len(p.backends))
	b := p.pinned(r)
	if b == nil {
		b = p.pick(tried)
	}
	for b != nil {
		tried[b.index] = true
		w.Header().Del("Set-Cookie")
		if c, err := r.Cookie(p.cookie); err != nil || c.Value != b.id {
			http.SetCookie(w, &http.Cookie{Name: p.cookie, Value: b.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		at.failed = nil
		b.proxy.ServeHTTP(w, r)
		if at.failed == nil {
			return
		}
		b = p.pick(tried)
	}
	w.Header().Del("Set-Cookie")
	http.Error(w, "no backend reachable", http.StatusBadGateway)
}

// pinned returns the healthy backend named by the client's cookie, if any.
func (p *Proxy) pinned(r *http.Request) *backend {
	c, err := r.Cookie(p.cookie)
	if err != nil {
		return nil
	}
	for _, b := range p.backends {
		if b.id == c.Value && b.healthy.Load() {
			return b
		}
	}
	return nil
}

// pick returns the next healthy backend not yet tried, in turn; when none is
// healthy, the next untried one (a backend marked down may be back already);
// nil when all were tried.
func (p *Proxy) pick(tried []bool) *backend {
	n := len(p.backends)
	start := int(p.next.Add(1)-1) % n
	var fallback *backend
	for i := range n {
		b := p.backends[(start+i)%n]
		if tried[b.index] {
			continue
		}
		if b.healthy.Load() {
			return b
		}
		if fallback == nil {
			fallback = b
		}
	}
	return fallback
}

// errorHandler answers a failed proxied request. A request that never reached
// the backend (the connection was refused or could not be made) marks the
// backend down and, when it can be sent again, is left to ServeHTTP to retry.
func (p *Proxy) errorHandler(b *backend) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		at, _ := r.Context().Value(attemptKey{}).(*attempt)
		if isDialError(err) {
			p.setHealthy(b, false, err.Error())
			if at != nil && at.retryable {
				at.failed = err
				return
			}
		}
		if r.Context().Err() == nil {
			p.log.Warn("proxy error", "backend", b.url.String(), "path", r.URL.Path, "err", err)
		}
		w.Header().Del("Set-Cookie")
		w.WriteHeader(http.StatusBadGateway)
	}
}

// isDialError reports whether err means no connection to the backend was made,
// so nothing of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// CheckHealth asks every backend for its health path once, in parallel, and
// marks each healthy or not. It returns when all answered or timed out.
func (p *Proxy) CheckHealth(ctx context.Context) {
	done := make(chan struct{}, len(p.backends))
	for _, b := range p.backends {
		go func() {
			defer func() { done <- struct{}{} }()
			ok, why := p.probe(ctx, b)
			p.setHealthy(b, ok, why)
		}()
	}
	for range p.backends {
		<-done
	}
}

func (p *Proxy) probe(ctx context.Context, b *backend) (bool, string) {
	u := b.url.JoinPath(p.health)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, resp.Status
	}
	return true, ""
}

// RunHealthChecks checks the backends every HealthInterval until ctx is done.
func (p *Proxy) RunHealthChecks(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.CheckHealth(ctx)
		}
	}
}

func (p *Proxy) setHealthy(b *backend, ok bool, why string) {
	if b.healthy.Swap(ok) == ok {
		return
	}
	if ok {
		p.log.Info("backend up", "backend", b.url.String())
	} else {
		p.log.Warn("backend down", "backend", b.url.String(), "reason", why)
	}
}

// ParseBackends parses a comma- or space-separated list of backend addresses.
// An entry without a scheme ("127.0.0.1:8081") means http.
func ParseBackends(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if !strings.Contains(f, "://") {
			f = "http://" + f
		}
		u, err := url.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("proxy: backend %q: %w", f, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("proxy: backend %q is not a base URL like http://127.0.0.1:8081", f)
		}
		u.Path = ""
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("proxy: no backends given")
	}
	return out, nil
}
