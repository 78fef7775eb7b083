// Command taskwire-echo is an echo server built from the packages taskwire-server
// serves Socket.IO with: our engine.io transports (package transport) in front of
// zishang520's Socket.IO server, optionally with our Redis adapter. It behaves as
// the official protocol test suites (socketio/socket.io-protocol and
// socketio/engine.io-protocol) expect of the server they test, so that anyone can
// run them, or any other conformance test, against taskwire's stack.
//
//	taskwire-echo -protocol socketio -addr 127.0.0.1:3000 [-redis redis://...]
//	taskwire-echo -protocol engineio -addr 127.0.0.1:3000
//
// Both use a ping interval of 300 ms, a ping timeout of 200 ms, a max payload of
// 1,000,000 bytes and CORS open to every origin.
//
// -protocol socketio serves Socket.IO at /socket.io/ with a connect timeout of
// 1000 ms. On namespaces "/" and "/custom", every socket is sent "auth" with its
// handshake's auth on connection; "message" is answered with "message-back" and
// the same arguments, and "message-with-ack" is acknowledged with the same
// arguments. With -redis, the namespaces use taskwire's Redis adapter on that
// Redis (key "socket.io"), and "auth" and "message-back" are sent as broadcasts to
// the socket's own room, so they take the adapter's path, as taskwire-server's
// task events do: encoded once, written as shared frames, published to Redis.
//
// -protocol engineio serves Engine.IO at /engine.io/: every message is sent back
// as it came.
//
// It prints "listening <port>" once it serves (-addr with port 0 picks a free
// port), and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/engine.io/v2/config"
	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/transport"
)

// The settings the official test suites expect.
const (
	pingInterval   = 300 * time.Millisecond
	pingTimeout    = 200 * time.Millisecond
	maxPayload     = 1_000_000
	connectTimeout = 1000 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "taskwire-echo:", err)
		stop()
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, and shuts down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskwire-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "socketio", "socketio or engineio")
	addr := fs.String("addr", "127.0.0.1:3000", "address to listen on (port 0: any free port)")
	redisURL := fs.String("redis", "", "socketio only: use taskwire's Redis adapter on this Redis (redis://host:port/db)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	transport.Install()

	mux := http.NewServeMux()
	var closeFn func()
	switch *protocol {
	case "socketio":
		h, closeIO, err := socketIOServer(ctx, *redisURL, log)
		if err != nil {
			return err
		}
		mux.Handle("/socket.io/", h)
		closeFn = closeIO
	case "engineio":
		if *redisURL != "" {
			return errors.New("-redis is for -protocol socketio")
		}
		h, eng := engineIOServer()
		mux.Handle("/engine.io/", h)
		closeFn = func() { eng.Close() }
	default:
		return fmt.Errorf("-protocol %q: want socketio or engineio", *protocol)
	}
	defer closeFn()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %d\n", ln.Addr().(*net.TCPAddr).Port)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// socketIOServer is the Socket.IO echo server (see the package documentation),
// set up as taskwire-server sets up its own (package realtime): our transports
// in front of the engine, no client files served, and with redisURL our Redis
// adapter.
func socketIOServer(ctx context.Context, redisURL string, log *slog.Logger) (http.Handler, func(), error) {
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPath("/socket.io")
	opts.SetPingInterval(pingInterval)
	opts.SetPingTimeout(pingTimeout)
	opts.SetMaxHttpBufferSize(maxPayload)
	opts.SetConnectTimeout(connectTimeout)
	opts.SetCors(&types.Cors{Origin: "*"})
	closers := []func(){}
	if redisURL != "" {
		ropts, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("-redis: %w", err)
		}
		rdb := redis.NewClient(ropts)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		adapters, err := redisadapter.New(redisadapter.Config{Client: rdb, Logger: log})
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		opts.SetAdapter(adapters)
		closers = append(closers, func() { _ = adapters.Close() }, func() { _ = rdb.Close() })
	}
	io := socket.NewServer(nil, opts)
	broadcast := redisURL != ""
	for _, nsp := range []socket.Namespace{io.Sockets(), io.Of("/custom", nil)} {
		_ = nsp.On("connection", func(args ...any) {
			s := args[0].(*socket.Socket)
			echo(s, broadcast)
			transport.SocketReady(s.Conn(), s.Nsp().Name())
		})
	}
	h := transport.Handler(io.ServeHandler(nil))
	return h, func() {
		io.Close(nil)
		for _, c := range closers {
			c()
		}
	}, nil
}

// echo gives a socket the behaviour the Socket.IO suite expects. With broadcast,
// "auth" and "message-back" are broadcasts to the socket's own room, so they take
// the adapter's path (encoded once, written as shared frames, published to Redis).
func echo(s *socket.Socket, broadcast bool) {
	emit := s.Emit
	if broadcast {
		self := s.Nsp().To(socket.Room(s.Id()))
		emit = self.Emit
	}
	// The handlers come first: the client may send an event as soon as it
	// has "auth", and Socket.IO handles each packet on a goroutine of its own.
	_ = s.On("message", func(args ...any) {
		_ = emit("message-back", args...)
	})
	_ = s.On("message-with-ack", func(args ...any) {
		if len(args) == 0 {
			return
		}
		ack, ok := args[len(args)-1].(socket.Ack)
		if !ok {
			return // sent without an ack id: nothing to answer
		}
		ack(args[:len(args)-1], nil)
	})
	_ = emit("auth", s.Handshake().Auth)
}

// engineIOServer is the Engine.IO echo server (see the package documentation).
func engineIOServer() (http.Handler, engine.Server) {
	opts := config.DefaultServerOptions()
	opts.SetPingInterval(pingInterval)
	opts.SetPingTimeout(pingTimeout)
	opts.SetMaxHttpBufferSize(maxPayload)
	opts.SetCors(&types.Cors{Origin: "*"})
	eng := engine.NewServer(opts)
	transport.PlainEngine(eng)
	_ = eng.On("connection", func(args ...any) {
		s := args[0].(engine.Socket)
		_ = s.On("data", func(args ...any) {
			if r, ok := args[0].(io.Reader); ok {
				s.Send(r, nil, nil)
			}
		})
	})
	return transport.Handler(eng), eng
}
