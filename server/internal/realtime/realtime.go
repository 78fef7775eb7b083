// Package realtime builds the Socket.IO server of taskwire-server: the engine with
// our transports (package transport), the Redis adapter (package redisadapter),
// authentication of every socket, and the rooms of the design (every socket is
// in its identity's user room and in its own identity-bound socket room, and
// joins task rooms through JoinTask).
package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/transport"
	"github.com/taskwire/taskwire/shared/events"
)

// Config configures the Socket.IO server.
type Config struct {
	// Redis is the client of the adapter (publishing, and one subscription
	// connection per namespace). Required.
	Redis redis.UniversalClient
	// Key is the adapter's channel prefix; default "socket.io". The workers'
	// emitter must use the same.
	Key string
	// Sharded runs the adapter in sharded mode (Redis 7 SPUBLISH/SSUBSCRIBE,
	// compatible with Node's createShardedAdapter) instead of classic pub/sub,
	// with SubscriptionMode ("static", "dynamic" or "dynamic-private"; "" is
	// dynamic). The workers' emitter must use the same mode.
	Sharded          bool
	SubscriptionMode string
	// Authenticate maps a token to a principal; an error (or an empty
	// identity) refuses the socket with the connect_error "unauthorized",
	// whose data is {"code":"unauthorized","message":<the *auth.Error's
	// reason>}. API keys are refused: they are for the HTTP API. Required.
	Authenticate func(token string) (*auth.Principal, error)
	// TokenExpiryGrace is how long a socket whose token expired stays
	// connected after task:token_expired, for the client to send a fresh
	// token with auth:refresh; default 10s.
	TokenExpiryGrace time.Duration
	// CookieName is the session cookie read when the handshake has no
	// auth.token. Empty: tokens only from auth.
	CookieName string
	// AllowedOrigins are the browser origins ("https://app.example.com") allowed
	// besides the server's own: polling requests from them get CORS headers
	// (with credentials), and handshakes from any other origin are refused with
	// 403. "*" allows every origin, without credentials (for every origin, as
	// the API does): no origin is reflected, no Access-Control-Allow-Credentials
	// is sent, and a cross-origin handshake must carry its token in auth (its
	// cookie is not believed). Empty (the default) means same-origin only: a
	// handshake whose Origin header names another host than the request's Host is
	// refused; requests without an Origin header (non-browser clients) are
	// allowed. Behind a proxy that rewrites Host, list the public origin.
	AllowedOrigins []string
	// MaxHttpBufferSize bounds a client message (websocket frame, polling POST);
	// default 1e6 bytes. A larger websocket message closes its connection; a
	// larger POST is answered 413 (also when its length is not announced), and
	// the client reconnects.
	MaxHttpBufferSize int64
	// MaxConnections bounds the engine.io sessions (client connections) of this
	// server; 0 means no bound. A handshake beyond it is answered 503 with
	// Retry-After and counted as RefusedFull; the client's reconnection logic
	// retries (through a balancer, likely on another replica).
	MaxConnections int
	// MaxUnauthenticated bounds the sessions without an authenticated socket
	// (they do not count under MaxConnections); 0 means no bound. A handshake
	// beyond it gets 503 (RefusedUnauthenticatedFull).
	MaxUnauthenticated int
	// ConnectTimeout closes a session that has not connected a socket within
	// it (Socket.IO's connectTimeout); default 3s.
	ConnectTimeout time.Duration
	// MaxConnectionsPerIP bounds the sessions of one client address; 0 means
	// no bound. A handshake beyond it gets 429 (RefusedPerIP).
	MaxConnectionsPerIP int
	// TrustProxy takes the client's address from the last X-Forwarded-For
	// entry, for MaxConnectionsPerIP.
	TrustProxy bool
	// MaxSocketsPerIdentity bounds the authenticated sessions of one identity
	// on this server; 0 means no bound. Beyond it a socket is refused with the
	// connect_error "too many connections" (RefusedPerIdentity).
	MaxSocketsPerIdentity int
	// OnConnection, when set, is called for every authenticated socket before its
	// connect reply is sent, so that event handlers registered on s in it see
	// every event the client sends. It is the last to see the handshake's auth
	// object (which carries the session token), headers and query: they are
	// cleared afterwards.
	OnConnection func(s *socket.Socket, p *auth.Principal)
	// KeepHeaders are request headers (by name, case-insensitively) that the
	// handshake keeps after authentication, for whoever describes sockets
	// later (the Admin UI shows the User-Agent). Never name Cookie or
	// Authorization here.
	KeepHeaders []string
	// OnResubscribe, when set, is called (on a goroutine of its own) each time
	// the adapter of the main namespace has subscribed again after its Redis
	// connection was lost. Events published in between never reached this
	// server's sockets: it is the moment to send them the current state (see
	// LocalRooms and EmitLocal).
	OnResubscribe func()
	// Logger receives the server's log records; default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about sessions, sockets and outgoing events
	// (for metrics).
	Observer Observer
	// OnRelay, when set, is told of every broadcast read from Redis and
	// written to the local sockets (redisadapter.Config.OnRelay), for traces.
	OnRelay func(*redisadapter.Relayed)
}

// Observer is told what the Socket.IO server does, for metrics. Its methods are
// called on hot paths (Sent once per event and receiving socket) and must be
// quick and safe for concurrent use.
type Observer interface {
	// SessionOpened is called for every engine.io session a client opens, with
	// the transport it starts on ("polling", "websocket").
	SessionOpened(transport string)
	// SessionUpgraded is called when a session moves to another transport.
	SessionUpgraded(transport string)
	// Connected is called for every socket that passed authentication.
	Connected()
	// Refused is called for every handshake or socket refused, with one of the
	// Refused* reasons.
	Refused(reason string)
	// Sent is called for every event handed to a socket (a broadcast once per
	// receiving socket) with its name and arguments, which it must neither
	// change nor keep.
	Sent(event string, args []any)
}

// Reasons of Observer.Refused.
const (
	// RefusedUnauthorized: the socket had no valid session token.
	RefusedUnauthorized = "unauthorized"
	// RefusedShuttingDown: the server is draining and takes no new sessions.
	RefusedShuttingDown = "shutting_down"
	// RefusedOrigin: the handshake came from an origin that is not allowed.
	RefusedOrigin = "origin"
	// RefusedFull: the server had MaxConnections connections.
	RefusedFull = "server_full"
)

// SocketData is what every authenticated socket carries as its Socket.IO data
// (also visible to fetchSockets on other servers, as {"identity": ...}).
type SocketData struct {
	Identity string `json:"identity"`
}

// ErrUnauthorized is the connect_error message of a refused socket.
const ErrUnauthorized = "unauthorized"

// ErrTooManySockets is the connect_error message of a socket refused because
// its identity has MaxSocketsPerIdentity connections.
const ErrTooManySockets = "too many connections"

// Server is the Socket.IO server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	io       *socket.Server
	adapters *redisadapter.Builder
	root     redisadapter.NamespaceAdapter
	handler  http.Handler
	closing  atomic.Bool // no new sessions (Drain)
	shutdown atomic.Bool // Shutdown has begun
	obs      Observer
	sess     *sessions
}

// Stats describe the server for metrics.
type Stats struct {
	// Sockets is the number of connected sockets of the main namespace.
	Sockets int
	// Transports counts engine.io sessions by transport ("websocket",
	// "polling").
	Transports map[string]int
	// Adapter are the Redis adapter's counters.
	Adapter redisadapter.Stats
	// Transport are the transport layer's counters.
	Transport transport.Stats
	// Unauthenticated is the number of engine.io sessions without an
	// authenticated socket (yet).
	Unauthenticated int
	// Orphaned is the number of sockets of the main namespace whose
	// connection is closed: it stays 0 unless sockets leak.
	Orphaned int
}

// New checks that Redis answers (within ctx) and builds the server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Redis == nil {
		return nil, errors.New("realtime: a Redis client is required")
	}
	if cfg.Authenticate == nil {
		return nil, errors.New("realtime: an Authenticate function is required")
	}
	if cfg.MaxHttpBufferSize <= 0 {
		cfg.MaxHttpBufferSize = 1e6
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	if cfg.TokenExpiryGrace <= 0 {
		cfg.TokenExpiryGrace = 10 * time.Second
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("realtime: allowed origin %q is not scheme://host[:port]", o)
		}
	}
	if err := cfg.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("realtime: redis: %w", err)
	}
	transport.Install()

	acfg := redisadapter.Config{Client: cfg.Redis, Key: cfg.Key, Logger: cfg.Logger,
		Sharded: cfg.Sharded, SubscriptionMode: wire.SubscriptionMode(cfg.SubscriptionMode), OnRelay: cfg.OnRelay}
	if fn := cfg.OnResubscribe; fn != nil {
		acfg.OnResubscribe = func(nsp string) {
			if nsp == "/" {
				fn()
			}
		}
	}
	adapters, err := redisadapter.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("realtime: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, adapters: adapters, obs: cfg.Observer, sess: newSessions()}
	if s.obs == nil {
		s.obs = nopObserver{}
	}

	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPath("/socket.io")
	opts.SetAdapter(adapters)
	opts.SetMaxHttpBufferSize(cfg.MaxHttpBufferSize)
	opts.SetAllowRequest(s.allowRequest)
	// A session that sends no CONNECT (or whose CONNECT is refused) is closed
	// after this, instead of holding its place for Socket.IO's 45 s.
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	switch {
	case s.anyOrigin():
		// Any origin, without credentials, as the API: "*", never a reflected
		// origin with Access-Control-Allow-Credentials.
		opts.SetCors(&types.Cors{Origin: "*", Credentials: false})
	case len(cfg.AllowedOrigins) > 0:
		list := make([]any, len(cfg.AllowedOrigins))
		for i, o := range cfg.AllowedOrigins {
			list[i] = strings.TrimSuffix(o, "/")
		}
		opts.SetCors(&types.Cors{Origin: list, Credentials: true})
	}
	s.io = socket.NewServer(nil, opts)
	root, ok := s.io.Sockets().Adapter().(redisadapter.NamespaceAdapter)
	if !ok {
		return nil, errors.New("realtime: the main namespace did not get the Redis adapter")
	}
	s.root = root
	s.io.Use(s.authenticate)

	engineHandler := transport.Handler(s.io.ServeHandler(nil))
	if cfg.Observer != nil {
		s.observeSessions()
	}
	s.trackSessions()
	limited := cfg.MaxConnections > 0 || cfg.MaxUnauthenticated > 0 || cfg.MaxConnectionsPerIP > 0
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		newSession := transport.QueryOf(r.URL).Get("sid") == ""
		if s.closing.Load() && newSession {
			s.obs.Refused(RefusedShuttingDown)
			// New sessions go to another replica; existing ones finish.
			s.refuse(w, r, `{"code":5,"message":"server shutting down"}`)
			return
		}
		if newSession && r.Method == http.MethodGet && limited {
			e, reason := s.sess.admit(&s.cfg, clientIP(r, cfg.TrustProxy))
			if e == nil {
				s.obs.Refused(reason)
				switch reason {
				case RefusedPerIP:
					s.refuseWith(w, r, http.StatusTooManyRequests, `{"code":5,"message":"too many connections from this address"}`)
				case RefusedUnauthenticatedFull:
					s.refuse(w, r, `{"code":5,"message":"server busy"}`)
				default:
					s.refuse(w, r, `{"code":5,"message":"server full"}`)
				}
				return
			}
			r = withReservation(r, e)
			defer s.sess.release(e)
		}
		if !newSession && r.Method == http.MethodPost {
			s.servePost(engineHandler, w, r)
			return
		}
		engineHandler.ServeHTTP(w, r)
	})
	return s, nil
}

// Handler returns the HTTP handler of the Socket.IO endpoint, to mount on
// /socket.io/ (with gin: router.Any("/socket.io/*any", gin.WrapH(h))). Every
// request must reach it with its path unchanged.
func (s *Server) Handler() http.Handler { return s.handler }

// IO returns the Socket.IO server, for event handlers and emits.
func (s *Server) IO() *socket.Server { return s.io }

// Identity returns the identity of an authenticated socket.
func Identity(s *socket.Socket) (string, bool) {
	switch d := s.Data().(type) {
	case SocketData:
		return d.Identity, d.Identity != ""
	case *SocketData:
		return d.Identity, d != nil && d.Identity != ""
	}
	return "", false
}

// allowRequest is the engine's check of every handshake: the Origin header.
func (s *Server) allowRequest(ctx *types.HttpContext) error {
	if s.originAllowed(ctx.Headers().Peek("Origin"), ctx.Request().Host) {
		return nil
	}
	s.obs.Refused(RefusedOrigin)
	return errors.New("origin not allowed")
}

// anyOrigin reports whether AllowedOrigins has "*".
func (s *Server) anyOrigin() bool { return slices.Contains(s.cfg.AllowedOrigins, "*") }

// originListed reports whether origin is in AllowedOrigins by name (not only
// through "*").
func (s *Server) originListed(origin string) bool {
	for _, o := range s.cfg.AllowedOrigins {
		if o != "*" && strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

func sameOriginHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func (s *Server) originAllowed(origin, host string) bool {
	if origin == "" {
		return true // not a browser, or a same-origin GET
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// authenticate is the main namespace's middleware: it resolves the identity,
// stores it, joins the identity's rooms and lets OnConnection register handlers,
// all before the client gets its connect reply (and so before it can name its
// socket id anywhere).
func (s *Server) authenticate(sock *socket.Socket, next func(*socket.ExtendedError)) {
	if s.closing.Load() {
		s.obs.Refused(RefusedShuttingDown)
		next(socket.NewExtendedError("server shutting down", nil))
		return
	}
	token := s.token(sock.Handshake())
	if token == "" {
		s.obs.Refused(RefusedUnauthorized)
		next(unauthorized("no token: send it as auth.token in the handshake"))
		return
	}
	p, err := s.cfg.Authenticate(token)
	switch {
	case err != nil || p == nil || p.Identity == "":
		s.obs.Refused(RefusedUnauthorized)
		next(unauthorized(reason(err)))
		return
	case p.Kind == auth.KindAPIKey:
		s.obs.Refused(RefusedUnauthorized)
		next(unauthorized("API keys are for the HTTP API; a browser connects with its user's token or a viewer token"))
		return
	}
	identity := p.Identity
	switch s.sess.authenticate(&s.cfg, sock.Conn().Id(), identity) {
	case RefusedFull:
		s.obs.Refused(RefusedFull)
		next(socket.NewExtendedError("server full", nil))
		return
	case RefusedPerIdentity:
		s.obs.Refused(RefusedPerIdentity)
		next(socket.NewExtendedError(ErrTooManySockets, nil))
		return
	}
	if s.cfg.Observer != nil {
		sock.OnAnyOutgoing(s.sent)
		s.obs.Connected()
	}
	sock.SetData(SocketData{Identity: identity})
	sock.Join(socket.Room(events.UserRoom(identity)), socket.Room(events.SocketRoom(identity, string(sock.Id()))))
	s.watchExpiry(sock, p)
	if s.cfg.OnConnection != nil {
		s.cfg.OnConnection(sock, p)
	}
	// The handshake's auth object holds the session token: it is kept no
	// longer than needed. Its copies of the request's headers (the cookie with
	// the token among them) and query go too: they would cost more than a
	// kilobyte for every connection's life, and nothing reads them later,
	// but the headers of KeepHeaders.
	h := sock.Handshake()
	h.Auth, h.Headers, h.Query = nil, keptHeaders(h.Headers, s.cfg.KeepHeaders), nil
	next(nil)
}

// keptHeaders returns the headers of h named in keep, nil when there is none.
func keptHeaders(h map[string][]string, keep []string) map[string][]string {
	var out map[string][]string
	for k, vs := range h {
		for _, name := range keep {
			if strings.EqualFold(k, name) && !strings.EqualFold(k, "Cookie") && !strings.EqualFold(k, "Authorization") {
				if out == nil {
					out = make(map[string][]string, len(keep))
				}
				out[k] = vs
			}
		}
	}
	return out
}

// unauthorized is the connect_error of a refused token.
func unauthorized(why string) *socket.ExtendedError {
	return socket.NewExtendedError(ErrUnauthorized, map[string]any{"code": "unauthorized", "message": why})
}

// reason says why a token was refused, without the token.
func reason(err error) string {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return "invalid token"
}

// sent reports an outgoing event of a socket to the observer.
func (s *Server) sent(args ...any) {
	if len(args) == 0 {
		return
	}
	if name, ok := args[0].(string); ok {
		s.obs.Sent(name, args[1:])
	}
}

// observeSessions reports the engine's new sessions and their upgrades.
func (s *Server) observeSessions() {
	_ = s.io.Engine().On("connection", func(args ...any) {
		c, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		if t := c.Transport(); t != nil {
			s.obs.SessionOpened(t.Name())
			if t.Name() == transports.WEBSOCKET {
				return // nothing to upgrade to: no listener to keep for its life
			}
		}
		_ = c.On("upgrade", func(args ...any) {
			if t, ok := args[0].(interface{ Name() string }); ok {
				s.obs.SessionUpgraded(t.Name())
			}
		})
	})
}

// trackSessions keeps the server's account of its sessions (see sessions):
// every new session, and every socket the main namespace adds.
func (s *Server) trackSessions() {
	_ = s.io.Engine().On("connection", func(args ...any) {
		if c, ok := args[0].(engine.Socket); ok {
			s.sess.opened(c, reservationOf(c))
		}
	})
	_ = s.io.Sockets().On("connection", func(args ...any) {
		sock, ok := args[0].(*socket.Socket)
		if !ok {
			return
		}
		_ = sock.On("disconnect", func(...any) { s.sess.disconnected(sock) })
		s.sess.connected(sock)
	})
	// Every namespace lets the client's messages go on once it has recorded
	// a socket (transport.SocketReady), and hands its events to the socket's
	// catch-all listeners in the order sent (transport.KeepOrder). The main
	// namespace's handlers are attached before, in authenticate, so this
	// listener is the last of them.
	ready := func(args ...any) {
		sock, ok := args[0].(*socket.Socket)
		if !ok {
			return
		}
		conn, nsp := sock.Conn(), sock.Nsp().Name()
		transport.KeepOrder(conn, nsp)
		sock.OnAny(func(...any) { transport.EventTaken(conn) })
		transport.SocketReady(conn, nsp)
	}
	_ = s.io.Sockets().On("connection", ready)
	_ = s.io.On("new_namespace", func(args ...any) {
		if n, ok := args[0].(socket.Namespace); ok {
			_ = n.On("connection", ready)
		}
	})
}

type nopObserver struct{}

func (nopObserver) SessionOpened(string)   {}
func (nopObserver) SessionUpgraded(string) {}
func (nopObserver) Connected()             {}
func (nopObserver) Refused(string)         {}
func (nopObserver) Sent(string, []any)     {}

// token reads auth.token from the handshake, else the session cookie.
func (s *Server) token(h *socket.Handshake) string {
	if h == nil {
		return ""
	}
	if m, ok := h.Auth.(map[string]any); ok {
		if t, ok := m["token"].(string); ok && t != "" {
			return t
		}
	}
	if s.cfg.CookieName == "" {
		return ""
	}
	header := http.Header{}
	for k, vs := range h.Headers {
		switch {
		case strings.EqualFold(k, "Cookie"):
			header["Cookie"] = append(header["Cookie"], vs...)
		case strings.EqualFold(k, "Origin"), strings.EqualFold(k, "Host"):
			header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	// An origin allowed only through "*" gets no credentials: its cookie is
	// not believed (a page of any site could otherwise act as the user).
	if o := header.Get("Origin"); o != "" && !s.originListed(o) && !sameOriginHost(o, header.Get("Host")) {
		return ""
	}
	c, err := (&http.Request{Header: header}).Cookie(s.cfg.CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// JoinTask makes the socket socketID join the room of taskID, if that socket
// belongs to identity, on whichever server it is connected to; a socket id of
// another identity (or of no socket) changes nothing. It returns once the join
// is applied and, with the sharded adapter's dynamic modes, the room's
// subscription confirmed (the socket is here), or published (it may be
// elsewhere): every event published to the task room afterwards reaches a
// socket of this server.
func (s *Server) JoinTask(ctx context.Context, identity, socketID, taskID string) error {
	if identity == "" || socketID == "" || taskID == "" {
		return errors.New("realtime: JoinTask needs an identity, a socket id and a task id")
	}
	room := socket.Room(events.SocketRoom(identity, socketID))
	opts := &socket.BroadcastOptions{Rooms: types.NewSet(room), Except: types.NewSet[socket.Room](), Flags: &socket.BroadcastFlags{}}
	if s.root.HasRoom(room) {
		opts.Flags.Local = true // socket rooms hold one socket: nobody else has it
	}
	task := socket.Room(events.TaskRoom(taskID))
	if err := s.root.AddSocketsContext(ctx, opts, []socket.Room{task}); err != nil {
		return fmt.Errorf("realtime: join task room: %w", err)
	}
	if opts.Flags.Local {
		// The sharded adapter's dynamic modes subscribe to the room's channel
		// in the background: wait for it, or the task's first events could
		// come before it. (A server that has the socket elsewhere does the same
		// on its own, so there the client's task:subscribe is the sure way.)
		ctx, cancel := context.WithTimeout(ctx, roomWait)
		defer cancel()
		if err := s.root.AwaitRooms(ctx, task); err != nil {
			return fmt.Errorf("realtime: join task room: %w", err)
		}
	}
	return nil
}

// roomWait bounds JoinTask's wait for a room's subscription.
const roomWait = 3 * time.Second

// LocalRooms returns the rooms of the main namespace that hold sockets of this
// server and whose names start with prefix.
func (s *Server) LocalRooms(prefix string) []string {
	return s.root.LocalRooms(prefix)
}

// EmitLocal emits an event to the sockets of this server in room, and to no
// other server.
func (s *Server) EmitLocal(room, event string, args ...any) error {
	return s.io.Local().To(socket.Room(room)).Emit(event, args...)
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Sockets:    s.io.Sockets().Sockets().Len(),
		Transports: map[string]int{},
		Adapter:    s.adapters.Stats(),
		Transport:  transport.ReadStats(),
	}
	open, authed := s.sess.counts()
	st.Unauthenticated = open - authed
	s.io.Sockets().Sockets().Range(func(_ socket.SocketId, sock *socket.Socket) bool {
		if sock.Conn().ReadyState() == "closed" {
			st.Orphaned++
		}
		return true
	})
	s.io.Engine().Clients().Range(func(_ string, c engine.Socket) bool {
		if t := c.Transport(); t != nil {
			st.Transports[t.Name()]++
		}
		return true
	})
	return st
}

// Drain makes the server refuse new Socket.IO sessions (503 on a handshake,
// an error on a namespace connect) while the existing ones go on. Shutdown
// drains first; calling Drain before lets a caller report draining only once
// it is true.
func (s *Server) Drain() { s.closing.Store(true) }

// shutdownWindow caps the time over which Shutdown spreads disconnections.
const shutdownWindow = 10 * time.Second

// Shutdown stops accepting sessions, then closes the connections of all
// clients spread over a window (80% of the time ctx leaves, at most 10s; 2s
// without a deadline), so that their reconnections reach the other replicas
// gradually rather than all at once, and finally closes the adapter. Clients see
// a transport close and reconnect on their own. When ctx ends first, the
// remaining connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.shutdown.CompareAndSwap(false, true) {
		return nil
	}
	s.Drain()
	var clients []engine.Socket
	s.io.Engine().Clients().Range(func(_ string, c engine.Socket) bool {
		clients = append(clients, c)
		return true
	})
	rand.Shuffle(len(clients), func(i, j int) { clients[i], clients[j] = clients[j], clients[i] })

	window := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		window = min(time.Until(dl)*8/10, shutdownWindow)
	}
	start := time.Now()
	timer := time.NewTimer(window)
	defer timer.Stop()
	var err error
	for i, c := range clients {
		if err == nil {
			due := start.Add(window * time.Duration(i) / time.Duration(len(clients)))
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
		}
		c.Close(false)
	}
	s.io.Close(nil)
	_ = s.adapters.Close()
	s.log.Info("realtime: shut down", "connections", len(clients), "window", window)
	return err
}
