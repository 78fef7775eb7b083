// Command twsio is taskwire's Socket.IO server (package realtime: our transports,
// Redis adapter and socket authentication) without the task API, for the interop
// tests (e2e/interop-emitter.test.mjs). It is the Go counterpart of
// e2e/node/sio-server.mjs and speaks the same line protocol, so a test drives
// either the same way.
//
// Environment: REDIS_URL (required), PORT (0 or unset: any free port), NAME (shown
// in its output), ADAPTER_KEY (the adapter's key, default "socket.io"),
// SERVER_EVENTS (comma-separated server-side event names it reports), ADAPTER
// (classic, the default, or sharded) and SUBSCRIPTION_MODE (static, dynamic or
// dynamic-private; sharded only).
//
// Namespaces "/" (where realtime requires a session token: any non-empty
// auth.token is accepted, as identity "tester") and "/admin". A client joins the
// rooms listed in its handshake auth.rooms. It prints one line per fact:
//
//	listening <port>                              ready: adapters subscribed, port open
//	event {"type":"connection","nsp":..,"id":..}
//	event {"type":"join-room"|"leave-room","nsp":..,"room":..,"id":..}
//	event {"type":"disconnect","nsp":..,"id":..,"reason":..}
//	event {"type":"server-side","nsp":..,"event":..,"args":[..]}   (binary as {"$bin"})
//
// Server-side events are received by Go handlers (io.Of(nsp).On(event, ...)), as
// an application would register them.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/realtime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "twsio:", err)
		os.Exit(1)
	}
}

// facts prints one fact per line, whole lines only.
type facts struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *facts) say(v map[string]any) {
	b, err := json.Marshal(specValue(v))
	if err != nil {
		b, _ = json.Marshal(map[string]any{"type": "unprintable", "error": err.Error()})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(f.w, "event %s\n", b)
}

// specValue writes binary as the spec language's {"$bin": base64}.
func specValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$bin": base64.StdEncoding.EncodeToString(x)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = specValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = specValue(e)
		}
		return out
	}
	return v
}

func joinAuthRooms(s *socket.Socket) {
	if m, ok := s.Handshake().Auth.(map[string]any); ok {
		if rooms, ok := m["rooms"].([]any); ok {
			for _, r := range rooms {
				if r, ok := r.(string); ok {
					s.Join(socket.Room(r))
				}
			}
		}
	}
}

func run() error {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		return fmt.Errorf("REDIS_URL is not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	name := os.Getenv("NAME")
	var sharded bool
	switch a := os.Getenv("ADAPTER"); a {
	case "", "classic":
	case "sharded":
		sharded = true
	default:
		return fmt.Errorf("ADAPTER %q is not classic or sharded", a)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("server", name)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	out := &facts{w: os.Stdout}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rt, err := realtime.New(startCtx, realtime.Config{
		Redis:            rdb,
		Key:              os.Getenv("ADAPTER_KEY"),
		Sharded:          sharded,
		SubscriptionMode: os.Getenv("SUBSCRIPTION_MODE"),
		Authenticate: func(string) (*auth.Principal, error) {
			return &auth.Principal{Identity: "tester", Kind: auth.KindUser}, nil
		},
		OnConnection: func(s *socket.Socket, _ *auth.Principal) { joinAuthRooms(s) },
		Logger:       log,
	})
	if err != nil {
		return err
	}
	io := rt.IO()
	admin := io.Of("/admin", nil)
	admin.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		joinAuthRooms(s)
		next(nil)
	})
	var events []string
	for _, ev := range strings.Split(os.Getenv("SERVER_EVENTS"), ",") {
		if ev != "" {
			events = append(events, ev)
		}
	}
	for _, nsp := range []socket.Namespace{io.Sockets(), admin} {
		nspName := nsp.Name()
		_ = nsp.Adapter().On("join-room", func(args ...any) {
			out.say(map[string]any{"type": "join-room", "nsp": nspName, "room": args[0], "id": args[1]})
		})
		_ = nsp.Adapter().On("leave-room", func(args ...any) {
			out.say(map[string]any{"type": "leave-room", "nsp": nspName, "room": args[0], "id": args[1]})
		})
		_ = nsp.On("connection", func(args ...any) {
			s := args[0].(*socket.Socket)
			out.say(map[string]any{"type": "connection", "nsp": nspName, "id": s.Id()})
			_ = s.On("disconnect", func(args ...any) {
				reason := ""
				if len(args) > 0 {
					reason = fmt.Sprint(args[0])
				}
				out.say(map[string]any{"type": "disconnect", "nsp": nspName, "id": s.Id(), "reason": reason})
			})
		})
		for _, ev := range events {
			_ = nsp.On(ev, func(args ...any) {
				out.say(map[string]any{"type": "server-side", "nsp": nspName, "event": ev, "args": args})
			})
		}
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "0"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", rt.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)

	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	_ = rt.Shutdown(sctx)
	return srv.Shutdown(sctx)
}
