package redisadapter_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/emitter/wire"
	"github.com/taskwire/taskwire/server/internal/redisadapter"
	"github.com/taskwire/taskwire/server/internal/transport"
	"github.com/taskwire/taskwire/server/internal/transport/eiotest"
	"github.com/taskwire/taskwire/shared/redistest"
)

func TestMain(m *testing.M) {
	transport.Install()
	os.Exit(m.Run())
}

// node is one Socket.IO server of a test cluster.
type node struct {
	io      *socket.Server
	url     string
	builder *redisadapter.Builder
	adapter *redisadapter.Adapter
	client  *redis.Client
	logs    *logBuffer
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

type nodeOpts struct {
	requestTimeout time.Duration
	publishTimeout time.Duration
	maxBytes       int
	onResubscribe  func(nsp string)
	// sharded and mode select the sharded bus and its subscription mode.
	sharded bool
	mode    wire.SubscriptionMode
}

// newNode starts a server using redis at addr. Clients choose their rooms in the
// handshake: auth {"rooms": [...]} (joined before the connect reply).
func newNode(t *testing.T, addr string, o *nodeOpts) *node {
	t.Helper()
	if o == nil {
		o = &nodeOpts{}
	}
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := redisadapter.New(redisadapter.Config{
		Client: client, Logger: logger,
		RequestTimeout: o.requestTimeout, PublishTimeout: o.publishTimeout, MaxMessageBytes: o.maxBytes,
		OnResubscribe: o.onResubscribe, Sharded: o.sharded, SubscriptionMode: o.mode,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetAdapter(b)
	io := socket.NewServer(nil, opts)
	io.Use(joinFromAuth)
	srv := httptest.NewServer(transport.Handler(io.ServeHandler(nil)))
	t.Cleanup(func() {
		io.Close(nil)
		srv.Close()
		_ = b.Close()
		_ = client.Close()
	})
	return &node{
		io: io, url: srv.URL + "/socket.io/", builder: b, client: client, logs: logs,
		adapter: io.Sockets().Adapter().(*redisadapter.Adapter),
	}
}

// joinFromAuth is a middleware: clients choose their rooms and data in the
// handshake, auth {"rooms": [...], "data": ...}.
func joinFromAuth(s *socket.Socket, next func(*socket.ExtendedError)) {
	if m, ok := s.Handshake().Auth.(map[string]any); ok {
		if rooms, ok := m["rooms"].([]any); ok {
			for _, r := range rooms {
				if r, ok := r.(string); ok {
					s.Join(socket.Room(r))
				}
			}
		}
		if d, ok := m["data"]; ok {
			s.SetData(d)
		}
	}
	next(nil)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", p)
	return len(p), nil
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a websocket client on n in rooms and returns it with its
// Socket.IO id.
func (n *node) connect(t *testing.T, rooms ...string) (*eiotest.Conn, string) {
	t.Helper()
	return n.connectWith(t, map[string]any{"rooms": rooms})
}

func (n *node) connectWith(t *testing.T, auth map[string]any) (*eiotest.Conn, string) {
	t.Helper()
	c, ctx := n.dial(t)
	sid, err := c.Connect(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	return c, sid
}

// dial opens a websocket connection to n, closed when the test ends, and
// returns it with a context for its first steps.
func (n *node) dial(t *testing.T) (*eiotest.Conn, context.Context) {
	t.Helper()
	ctx := timeout(t, 5*time.Second)
	c, err := eiotest.DialWebSocket(ctx, n.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, ctx
}

// expectEvent waits for the client's next event and checks its name and
// arguments (compared as JSON).
func expectEvent(t *testing.T, c *eiotest.Conn, name string, args ...any) eiotest.Packet {
	t.Helper()
	p, err := c.NextEvent(timeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("waiting for %q: %v", name, err)
	}
	if p.EventName() != name {
		t.Fatalf("got event %s, want %q", p.Data, name)
	}
	if args != nil {
		want, _ := json.Marshal(append([]any{name}, args...))
		var a, b any
		_ = json.Unmarshal(want, &a)
		_ = json.Unmarshal(p.Data, &b)
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if string(aj) != string(bj) {
			t.Fatalf("got %s, want %s", bj, aj)
		}
	}
	return p
}

func startRedis(t *testing.T) *redistest.Server { return redistest.Start(t) }
