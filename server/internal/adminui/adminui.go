// Package adminui serves the server side of the Socket.IO Admin UI
// (@socket.io/admin-ui 0.5): the /admin namespace and the protocol its web page
// speaks, so that an operator can open the official UI against taskwire and see
// every replica (server_stats), every socket with its rooms (all_sockets,
// socket_connected, socket_disconnected, room_joined, room_left) and, when
// enabled, the events sockets send and receive (event_received, event_sent).
//
// Every replica installs it; they talk through the namespace's Redis adapter,
// as Node servers instrumented with the package's instrument() do: what one
// replica emits to /admin reaches the UI wherever it is connected, and the list
// of sockets is gathered from every replica with a server-side emit.
//
// The namespace is behind the operator token: the UI's "basic" login with any
// user name and the token as password, or a session id from an earlier login
// (signed with the token, valid on every replica for SessionTTL). No user
// token, API key or viewer token opens it.
//
// Nothing is published while no UI is connected anywhere: a replica with a UI
// connected says so to the others (a server-side emit every StatsInterval), and
// only replicas told so in the last three intervals publish their statistics
// and socket events.
//
// Of the UI's actions, disconnecting sockets and making sockets leave task rooms
// are served (unless ReadOnly); joining rooms and emitting events are refused:
// joining would bypass the ownership check of task rooms, emitting would let
// the UI forge the task events only workers send.
package adminui

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/shared/events"
)

// Namespace is the Socket.IO namespace of the Admin UI (the UI's default).
const Namespace = "/admin"

// ErrInvalidCredentials is the connect_error message of a refused handshake:
// the one the UI recognises and answers by showing its login form again.
const ErrInvalidCredentials = "invalid credentials"

// Features the UI reads in the config event's supportedFeatures.
const (
	// FeatureDisconnect: disconnect one socket.
	FeatureDisconnect = "DISCONNECT"
	// FeatureMDisconnect: disconnect the sockets of a room.
	FeatureMDisconnect = "MDISCONNECT"
	// FeatureLeave: make one socket leave a room.
	FeatureLeave = "LEAVE"
	// FeatureMLeave: make every socket leave a room.
	FeatureMLeave = "MLEAVE"
	// FeatureAggregatedEvents: server_stats carries per-second counts
	// (connections and disconnections).
	FeatureAggregatedEvents = "AGGREGATED_EVENTS"
	// FeatureAllEvents: the UI shows its Sockets, Rooms, Clients and Events
	// pages.
	FeatureAllEvents = "ALL_EVENTS"
)

// Server-side events between replicas, on the admin namespace.
const (
	// eventWatch says that a UI is connected; its argument is true when one
	// just connected (every replica then sends its statistics at once).
	eventWatch = "taskwire:admin:watch"
	// eventSockets asks every replica for its sockets.
	eventSockets = "taskwire:admin:sockets"
	// eventResync says that a replica dropped socket events: the replicas
	// with a UI connected send it all_sockets again.
	eventResync = "taskwire:admin:resync"
)

// Defaults of Config.
const (
	DefaultStatsInterval   = 2 * time.Second
	DefaultSessionTTL      = 12 * time.Hour
	DefaultEventsPerSecond = 50
	DefaultSocketEvents    = 500
	DefaultMaxEventBytes   = 1024
	DefaultMaxSockets      = 5000
)

// Config configures the Admin UI namespace.
type Config struct {
	// Token is the operator token (ADMIN_TOKEN): the password of the UI's
	// login. Required.
	Token []byte
	// ReadOnly serves no action: the UI can look, not disconnect or make
	// sockets leave rooms.
	ReadOnly bool
	// Events relays the events of every socket (event_received, event_sent)
	// while a UI is connected, at most EventsPerSecond per replica, their
	// arguments shown up to MaxEventBytes of JSON and with credentials
	// redacted. Off, the UI's Events page lists connections, disconnections
	// and room changes only.
	Events          bool
	EventsPerSecond int
	MaxEventBytes   int
	// MaxSockets bounds the sockets one replica lists in all_sockets; default
	// DefaultMaxSockets.
	MaxSockets int
	// SocketEventsPerSecond bounds the socket events (socket_connected,
	// socket_disconnected, room_joined, room_left, socket_updated) one replica
	// publishes; default DefaultSocketEvents. Beyond it they are dropped, and
	// every UI gets a fresh all_sockets at the next StatsInterval instead.
	SocketEventsPerSecond int
	// ServerID names this replica in the UI; default "<hostname>#<pid>".
	ServerID string
	// StatsInterval is how often server_stats is sent (and how often a replica
	// with a UI connected says so); default 2s.
	StatsInterval time.Duration
	// SessionTTL is how long a session id of the UI (kept by the browser for
	// reloads) opens the namespace; default 12h.
	SessionTTL time.Duration
	// Logger receives the actions and refusals; default slog.Default().
	Logger *slog.Logger
}

// Admin is the Admin UI namespace of one replica.
type Admin struct {
	cfg      Config
	log      *slog.Logger
	io       *socket.Server
	nsp      socket.Namespace
	cred     *credential
	features []any
	hostname string
	pid      int
	started  time.Time
	agg      aggregated
	lim      limiter // events of sockets (event_received, event_sent)
	sockLim  limiter // socket events (socket_connected...)
	stale    atomic.Bool
	queue    chan func() // what is published for the UIs, in order

	watchedUntil atomic.Int64 // Unix nanoseconds

	mu   sync.Mutex
	nsps map[string]socket.Namespace

	done      chan struct{}
	closeOnce sync.Once
}

// adminData is the data of a UI's socket: the session id issued at its login
// (sent to it once connected), never shown nor sent to other replicas.
type adminData struct {
	issued string
}

// Install creates the admin namespace on io and starts sending statistics.
// Call it once per server, after the server's namespaces are set up (later
// namespaces are followed too).
func Install(io *socket.Server, cfg Config) (*Admin, error) {
	if len(cfg.Token) == 0 {
		return nil, errors.New("adminui: an operator token is required")
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = DefaultStatsInterval
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.EventsPerSecond <= 0 {
		cfg.EventsPerSecond = DefaultEventsPerSecond
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.MaxSockets <= 0 {
		cfg.MaxSockets = DefaultMaxSockets
	}
	if cfg.SocketEventsPerSecond <= 0 {
		cfg.SocketEventsPerSecond = DefaultSocketEvents
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, _ := os.Hostname()
	a := &Admin{
		cfg:      cfg,
		log:      cfg.Logger,
		io:       io,
		cred:     newCredential(cfg.Token, cfg.SessionTTL, time.Now),
		hostname: host,
		pid:      os.Getpid(),
		started:  time.Now(),
		lim:      limiter{max: cfg.EventsPerSecond},
		sockLim:  limiter{max: cfg.SocketEventsPerSecond},
		queue:    make(chan func(), 1024),
		nsps:     map[string]socket.Namespace{},
		done:     make(chan struct{}),
	}
	if a.cfg.ServerID == "" {
		a.cfg.ServerID = fmt.Sprintf("%s#%d", host, a.pid)
	}
	a.features = features(cfg)

	a.track(io.Sockets())
	_ = io.Sockets().On("new_namespace", func(args ...any) {
		if len(args) > 0 {
			if n, ok := args[0].(socket.Namespace); ok {
				a.track(n)
			}
		}
	})
	a.nsp = io.Of(Namespace, nil)
	a.track(a.nsp)
	a.nsp.Use(a.authenticate)
	_ = a.nsp.On("connection", func(args ...any) {
		if s, ok := first[*socket.Socket](args); ok {
			a.onAdmin(s)
		}
	})
	_ = a.nsp.On(eventWatch, func(args ...any) {
		hello, _ := first[bool](args)
		if idle := a.watch(); idle || hello {
			go a.emitStats()
		}
	})
	_ = a.nsp.On(eventResync, func(...any) {
		if a.nsp.Sockets().Len() > 0 {
			go a.resendAllSockets()
		}
	})
	_ = a.nsp.On(eventSockets, func(args ...any) {
		a.watch()
		if ack, ok := args[len(args)-1].(socket.Ack); ok && len(args) > 0 {
			ack([]any{a.localSockets()}, nil)
		}
	})
	if io.Engine() != nil {
		a.countConnections(io.Engine())
	}
	go a.loop()
	go a.publish()
	return a, nil
}

// countConnections counts the engine's connections and disconnections for
// the UI's charts.
func (a *Admin) countConnections(e engine.BaseServer) {
	_ = e.On("connection", func(args ...any) {
		c, ok := first[engine.Socket](args)
		if !ok {
			return
		}
		a.agg.add(time.Now(), "rawConnection", "")
		_ = c.Once("close", func(args ...any) {
			reason, _ := first[string](args)
			a.agg.add(time.Now(), "rawDisconnection", reason)
		})
	})
}

// features lists what the UI may offer.
func features(cfg Config) []any {
	var f []any
	if !cfg.ReadOnly {
		f = append(f, FeatureDisconnect, FeatureMDisconnect, FeatureLeave, FeatureMLeave)
	}
	return append(f, FeatureAggregatedEvents, FeatureAllEvents)
}

// Features returns the features this namespace announces to the UI.
func (a *Admin) Features() []string {
	out := make([]string, len(a.features))
	for i, f := range a.features {
		out[i] = f.(string)
	}
	return out
}

// ServerID returns the name of this replica in the UI.
func (a *Admin) ServerID() string { return a.cfg.ServerID }

// Close stops sending statistics and relaying events.
func (a *Admin) Close() {
	a.closeOnce.Do(func() { close(a.done) })
}

func first[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
}

// authenticate is the admin namespace's middleware: a session id this token
// signed, or the token as password.
func (a *Admin) authenticate(s *socket.Socket, next func(*socket.ExtendedError)) {
	h := s.Handshake()
	m, _ := h.Auth.(map[string]any)
	h.Auth = nil // the password is kept no longer than needed
	if id, _ := m["sessionId"].(string); id != "" && a.cred.session(id) {
		s.SetData(adminData{})
		next(nil)
		return
	}
	if pw, _ := m["password"].(string); a.cred.password(pw) {
		id, err := a.cred.issue()
		if err != nil {
			next(socket.NewExtendedError("session id not issued", nil))
			return
		}
		s.SetData(adminData{issued: id})
		next(nil)
		return
	}
	a.log.Info("admin-ui: connection refused: invalid credentials", "address", h.Address)
	next(socket.NewExtendedError(ErrInvalidCredentials, nil))
}

// onAdmin greets a UI that connected: its session id, the features, and the
// state of every replica.
func (a *Admin) onAdmin(s *socket.Socket) {
	a.log.Info("admin-ui: connected", "socket", string(s.Id()), "address", s.Handshake().Address)
	a.registerActions(s)
	if d, ok := s.Data().(adminData); ok && d.issued != "" {
		_ = s.Emit("session", d.issued)
	}
	_ = s.Emit("config", map[string]any{"supportedFeatures": a.features})
	a.watch()
	_ = a.nsp.ServerSideEmit(eventWatch, true)
	go a.emitStats()
	go a.sendAllSockets(s)
}

// sendAllSockets sends s the sockets of every replica.
func (a *Admin) sendAllSockets(s *socket.Socket) {
	a.gatherSockets(func(all []any) { _ = s.Emit("all_sockets", all) })
}

// resendAllSockets sends every UI connected here the sockets of every
// replica, after some replica dropped socket events.
func (a *Admin) resendAllSockets() {
	a.gatherSockets(func(all []any) { _ = a.nsp.Local().Emit("all_sockets", all) })
}

// gatherSockets passes the sockets of every replica to fn: this one's and the
// answers of the others within the adapter's request timeout.
func (a *Admin) gatherSockets(fn func(all []any)) {
	local := a.localSockets()
	err := a.nsp.ServerSideEmitWithAck(eventSockets)(func(answers []any, err error) {
		all := local
		for _, ans := range answers {
			if list, ok := ans.([]any); ok {
				all = append(all, list...)
			}
		}
		if err != nil {
			a.log.Warn("admin-ui: some replicas did not list their sockets", "err", err)
		}
		fn(all)
	})
	if err != nil {
		a.log.Warn("admin-ui: sockets of other replicas not asked for", "err", err)
		fn(local)
	}
}

// namespaces returns the namespaces followed.
func (a *Admin) namespaces() []socket.Namespace {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]socket.Namespace, 0, len(a.nsps))
	for _, n := range a.nsps {
		out = append(out, n)
	}
	return out
}

// namespace returns the followed namespace called name (never creating one).
func (a *Admin) namespace(name string) (socket.Namespace, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.nsps[name]
	return n, ok
}

// localSockets describes the sockets of this replica, at most MaxSockets.
func (a *Admin) localSockets() []any {
	out := []any{}
	for _, n := range a.namespaces() {
		name := n.Name()
		n.Sockets().Range(func(_ socket.SocketId, s *socket.Socket) bool {
			out = append(out, serializeSocket(s, name))
			return len(out) < a.cfg.MaxSockets
		})
		if len(out) >= a.cfg.MaxSockets {
			break
		}
	}
	return out
}

// track follows the sockets and rooms of a namespace.
func (a *Admin) track(n socket.Namespace) {
	name := n.Name()
	a.mu.Lock()
	_, known := a.nsps[name]
	if !known {
		a.nsps[name] = n
	}
	a.mu.Unlock()
	if known {
		return
	}
	_ = n.On("connection", func(args ...any) {
		if s, ok := first[*socket.Socket](args); ok {
			a.onSocket(s, name)
		}
	})
	_ = n.Adapter().On("join-room", func(args ...any) {
		room, id, ok := roomArgs(args)
		// A socket's joins before it is connected (its own room, its
		// identity's rooms) come with socket_connected.
		if !ok || room == id || !a.watched() {
			return
		}
		if _, connected := n.Sockets().Load(socket.SocketId(id)); connected {
			a.socketEvent("room_joined", name, room, id, timestamp())
		}
	})
	_ = n.Adapter().On("leave-room", func(args ...any) {
		if room, id, ok := roomArgs(args); ok && a.watched() {
			a.socketEvent("room_left", name, room, id, timestamp())
		}
	})
}

func roomArgs(args []any) (room, id string, ok bool) {
	if len(args) < 2 {
		return "", "", false
	}
	r, ok1 := args[0].(socket.Room)
	s, ok2 := args[1].(socket.SocketId)
	return string(r), string(s), ok1 && ok2
}

// onSocket follows one socket of namespace nsp.
func (a *Admin) onSocket(s *socket.Socket, nsp string) {
	if a.watched() {
		a.socketEvent("socket_connected", serializeSocket(s, nsp), timestamp())
	}
	id := string(s.Id())
	if c := s.Conn(); c != nil {
		if t := c.Transport(); t != nil && t.Name() == "polling" {
			_ = c.Once("upgrade", func(args ...any) {
				t, ok := first[interface{ Name() string }](args)
				if ok {
					a.socketEvent("socket_updated", map[string]any{"id": id, "nsp": nsp, "transport": t.Name()})
				}
			})
		}
	}
	_ = s.On("disconnect", func(args ...any) {
		reason, _ := first[string](args)
		a.socketEvent("socket_disconnected", nsp, id, reason, timestamp())
	})
	if a.cfg.Events && nsp != Namespace {
		s.OnAny(func(args ...any) { a.event("event_received", nsp, id, args) })
		s.OnAnyOutgoing(func(args ...any) { a.event("event_sent", nsp, id, args) })
	}
}

// socketEvent queues a socket event for the UIs, while one is connected and
// within SocketEventsPerSecond; one dropped makes every UI get all_sockets
// again at the next StatsInterval.
func (a *Admin) socketEvent(ev string, args ...any) {
	now := time.Now()
	if !a.watchedAt(now) {
		return
	}
	if !a.sockLim.allow(now) || !a.enqueue(ev, args) {
		a.stale.Store(true)
	}
}

// event queues an event of a socket (event_received, event_sent) for the UI,
// while one is connected and within EventsPerSecond; the others are dropped.
func (a *Admin) event(kind, nsp, id string, args []any) {
	now := time.Now()
	if !a.watchedAt(now) || !a.lim.allow(now) {
		return
	}
	if shown := eventArgs(args, a.cfg.MaxEventBytes); shown != nil {
		a.enqueue(kind, []any{nsp, id, shown, timestamp()})
	}
}

// enqueue queues an emit to the admin namespace, unless the queue is full.
// The callers are on the paths of sockets: publish does the publishing.
func (a *Admin) enqueue(ev string, args []any) bool {
	select {
	case a.queue <- func() { _ = a.nsp.Emit(ev, args...) }:
		return true
	default:
		return false
	}
}

// publish publishes the queued emits, in order.
func (a *Admin) publish() {
	for {
		select {
		case fn := <-a.queue:
			fn()
		case <-a.done:
			return
		}
	}
}

// watch notes that a UI is connected (here, or to a replica that said so) and
// reports whether none was.
func (a *Admin) watch() (wasIdle bool) {
	now := time.Now()
	prev := a.watchedUntil.Swap(now.Add(3 * a.cfg.StatsInterval).UnixNano())
	return prev < now.UnixNano()
}

func (a *Admin) watched() bool { return a.watchedAt(time.Now()) }

func (a *Admin) watchedAt(now time.Time) bool { return now.UnixNano() < a.watchedUntil.Load() }

// loop sends the statistics every StatsInterval while a UI is connected, and
// tells the other replicas while one is connected here.
func (a *Admin) loop() {
	t := time.NewTicker(a.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		if a.nsp.Sockets().Len() > 0 {
			a.watch()
			_ = a.nsp.ServerSideEmit(eventWatch, false)
		}
		if a.watched() {
			a.emitStats()
		} else {
			a.agg.take() // nobody to show them to
		}
		if a.stale.Swap(false) {
			a.log.Info("admin-ui: socket events dropped: the UIs get all sockets again", "limit", a.cfg.SocketEventsPerSecond)
			_ = a.nsp.ServerSideEmit(eventResync)
			if a.nsp.Sockets().Len() > 0 {
				go a.resendAllSockets()
			}
		}
	}
}

// Stats returns this replica's server_stats.
func (a *Admin) Stats() map[string]any {
	nsps := []any{}
	for _, n := range a.namespaces() {
		nsps = append(nsps, map[string]any{"name": n.Name(), "socketsCount": n.Sockets().Len()})
	}
	clients, polling := 0, 0
	if e := a.io.Engine(); e != nil {
		e.Clients().Range(func(_ string, c engine.Socket) bool {
			clients++
			if t := c.Transport(); t != nil && t.Name() == "polling" {
				polling++
			}
			return true
		})
	}
	return map[string]any{
		"serverId":            a.cfg.ServerID,
		"hostname":            a.hostname,
		"pid":                 a.pid,
		"uptime":              time.Since(a.started).Seconds(),
		"clientsCount":        clients,
		"pollingClientsCount": polling,
		"namespaces":          nsps,
	}
}

// emitStats sends server_stats to every UI.
func (a *Admin) emitStats() {
	st := a.Stats()
	st["aggregatedEvents"] = a.agg.take()
	_ = a.nsp.Emit("server_stats", st)
}

// timestamp is a Date of the UI's events, as JSON has it.
func timestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// registerActions serves the UI's actions on its socket s.
func (a *Admin) registerActions(s *socket.Socket) {
	_ = s.On("_disconnect", func(args ...any) { a.disconnect(s, args) })
	_ = s.On("leave", func(args ...any) { a.leave(s, args) })
	_ = s.On("join", func(args ...any) {
		a.refuse(s, "join", "joining rooms would bypass the ownership check of task rooms", args)
	})
	_ = s.On("emit", func(args ...any) {
		a.refuse(s, "emit", "emitting to sockets would forge the events only workers send", args)
	})
}

// refuse logs a refused action and answers its acknowledgement, if any, with
// {"error": why}.
func (a *Admin) refuse(s *socket.Socket, action, why string, args []any) {
	a.log.Warn("admin-ui: action refused", "action", action, "why", why, "socket", string(s.Id()))
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(socket.Ack); ok {
			ack([]any{map[string]any{"error": why}}, nil)
		}
	}
}

// stringArg returns args[i] when it is a string.
func stringArg(args []any, i int) string {
	if i < len(args) {
		if s, ok := args[i].(string); ok {
			return s
		}
	}
	return ""
}

// disconnect serves _disconnect(nsp, close, filter): the sockets of room filter
// (a socket id is the room of its socket) on every replica.
func (a *Admin) disconnect(s *socket.Socket, args []any) {
	if a.cfg.ReadOnly {
		a.refuse(s, "_disconnect", "read-only", args)
		return
	}
	nspName, filter := stringArg(args, 0), stringArg(args, 2)
	closeConn := len(args) > 1 && args[1] == true
	n, ok := a.namespace(nspName)
	switch {
	case !ok:
		a.refuse(s, "_disconnect", "unknown namespace", args)
		return
	case filter == "":
		a.refuse(s, "_disconnect", "disconnecting a whole namespace is not offered: name a socket or a room", args)
		return
	}
	a.log.Info("admin-ui: disconnect", "namespace", nspName, "target", filter, "close", closeConn, "socket", string(s.Id()))
	n.In(socket.Room(filter)).DisconnectSockets(closeConn)
}

// taskRoomPrefix starts the name of every task room.
var taskRoomPrefix = events.TaskRoom("")

// leave serves leave(nsp, room, filter): the sockets of room filter (every
// socket when empty) leave room, on every replica. Only task rooms may be left:
// the others (a socket's own room, its identity's rooms) are how the server
// reaches its sockets.
func (a *Admin) leave(s *socket.Socket, args []any) {
	if a.cfg.ReadOnly {
		a.refuse(s, "leave", "read-only", args)
		return
	}
	nspName, room, filter := stringArg(args, 0), stringArg(args, 1), stringArg(args, 2)
	n, ok := a.namespace(nspName)
	switch {
	case !ok:
		a.refuse(s, "leave", "unknown namespace", args)
		return
	case !strings.HasPrefix(room, taskRoomPrefix) || room == taskRoomPrefix:
		a.refuse(s, "leave", "only task rooms can be left", args)
		return
	}
	a.log.Info("admin-ui: leave", "namespace", nspName, "room", room, "target", filter, "socket", string(s.Id()))
	if filter == "" {
		n.SocketsLeave(socket.Room(room))
		return
	}
	n.In(socket.Room(filter)).SocketsLeave(socket.Room(room))
}
