// Package eiotest is a small Socket.IO v5 / Engine.IO v4 client for tests: it
// speaks the text protocol over a real websocket (gorilla) or HTTP long-polling,
// upgrades from polling to websocket, answers pings, and reassembles binary
// events. It is meant for Go tests of the server; the browser client is exercised
// by the end-to-end tests.
package eiotest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket.IO packet types.
const (
	TypeConnect      = 0
	TypeDisconnect   = 1
	TypeEvent        = 2
	TypeAck          = 3
	TypeConnectError = 4
	TypeBinaryEvent  = 5
	TypeBinaryAck    = 6
)

// Packet is a Socket.IO packet received from the server.
type Packet struct {
	Type int
	Nsp  string
	ID   *int
	// Data is the JSON payload, with binary placeholders as the server sent them.
	Data json.RawMessage
	// Attachments are the binary parts of a BINARY_EVENT or BINARY_ACK, in order.
	Attachments [][]byte
}

// EventName returns the event name of an EVENT or BINARY_EVENT packet.
func (p Packet) EventName() string {
	var arr []json.RawMessage
	if json.Unmarshal(p.Data, &arr) != nil || len(arr) == 0 {
		return ""
	}
	var name string
	_ = json.Unmarshal(arr[0], &name)
	return name
}

// Args returns the arguments of an event (the JSON array without its name).
func (p Packet) Args() []json.RawMessage {
	var arr []json.RawMessage
	if json.Unmarshal(p.Data, &arr) != nil || len(arr) == 0 {
		return nil
	}
	return arr[1:]
}

// ConnectError is the server's refusal of a namespace connection.
type ConnectError struct {
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func (e *ConnectError) Error() string { return "eiotest: connect_error: " + e.Message }

// Options configure a connection.
type Options struct {
	// Header is sent with every HTTP request and the websocket handshake (for
	// example a Cookie or an Origin).
	Header http.Header
	// Query is added to every request's query string.
	Query url.Values
	// HTTPClient sends the polling requests; nil means a client of its own.
	HTTPClient *http.Client
}

// Conn is one Engine.IO session.
type Conn struct {
	base   *url.URL
	opts   Options
	client *http.Client

	mu        sync.Mutex
	sid       string
	transport string
	ws        *websocket.Conn
	wsMu      sync.Mutex // serialises websocket writes
	postMu    sync.Mutex // one POST at a time, as the protocol requires
	pending   *Packet    // binary packet waiting for attachments
	missing   int

	stopPoll chan struct{} // closed to make the poll loop stop after its current GET
	pollDone chan struct{}

	connects chan Packet
	packets  chan Packet
	done     chan struct{}
	doneOnce sync.Once
	err      error
}

// Open is the engine.io handshake data.
type Open struct {
	Sid          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func newConn(rawURL string, opts *Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("eiotest: %w", err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := &Conn{
		base:     u,
		client:   &http.Client{},
		connects: make(chan Packet, 16),
		packets:  make(chan Packet, 1<<16),
		done:     make(chan struct{}),
	}
	if opts != nil {
		c.opts = *opts
		if opts.HTTPClient != nil {
			c.client = opts.HTTPClient
		}
	}
	return c, nil
}

func (c *Conn) endpoint(scheme, transport string) string {
	u := *c.base
	switch {
	case scheme == "ws" && u.Scheme == "https":
		u.Scheme = "wss"
	case scheme == "ws":
		u.Scheme = "ws"
	}
	q := url.Values{}
	for k, v := range c.opts.Query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", transport)
	c.mu.Lock()
	if c.sid != "" {
		q.Set("sid", c.sid)
	}
	c.mu.Unlock()
	u.RawQuery = q.Encode()
	return u.String()
}

// DialWebSocket opens a session over websocket (no polling first) at rawURL, for
// example "http://127.0.0.1:8080/socket.io/", and waits for the open packet.
func DialWebSocket(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	c, err := newConn(rawURL, opts)
	if err != nil {
		return nil, err
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, c.endpoint("ws", "websocket"), c.opts.Header)
	if err != nil {
		return nil, fmt.Errorf("eiotest: dial websocket: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	_, msg, err := conn.ReadMessage()
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("eiotest: read open packet: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	open, err := parseOpen(string(msg))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.sid, c.ws, c.transport = open.Sid, conn, "websocket"
	go c.readWebSocket(conn)
	return c, nil
}

// DialPolling opens a session over HTTP long-polling and starts polling.
func DialPolling(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	c, err := newConn(rawURL, opts)
	if err != nil {
		return nil, err
	}
	body, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(body, "\x1e")
	open, err := parseOpen(parts[0])
	if err != nil {
		return nil, err
	}
	c.sid, c.transport = open.Sid, "polling"
	for _, p := range parts[1:] {
		c.handleText(p)
	}
	c.stopPoll = make(chan struct{})
	c.pollDone = make(chan struct{})
	go c.poll()
	return c, nil
}

func parseOpen(s string) (*Open, error) {
	if !strings.HasPrefix(s, "0") {
		return nil, fmt.Errorf("eiotest: expected an open packet, got %q", s)
	}
	var o Open
	if err := json.Unmarshal([]byte(s[1:]), &o); err != nil {
		return nil, fmt.Errorf("eiotest: open packet %q: %w", s, err)
	}
	if o.Sid == "" {
		return nil, fmt.Errorf("eiotest: open packet without sid: %q", s)
	}
	return &o, nil
}

// Sid returns the engine.io session id.
func (c *Conn) Sid() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// Transport returns "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

func (c *Conn) request(ctx context.Context, method string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint("http", "polling"), body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("eiotest: %s: %w", method, err)
	}
	return res, nil
}

func (c *Conn) get(ctx context.Context) (string, error) {
	res, err := c.request(ctx, http.MethodGet, nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", fmt.Errorf("eiotest: read poll: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("eiotest: GET: status %d: %s", res.StatusCode, b)
	}
	return string(b), nil
}

func (c *Conn) post(ctx context.Context, payload string) error {
	c.postMu.Lock()
	defer c.postMu.Unlock()
	res, err := c.request(ctx, http.MethodPost, strings.NewReader(payload))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("eiotest: POST: status %d: %s", res.StatusCode, b)
	}
	return nil
}

func (c *Conn) poll() {
	defer close(c.pollDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-c.stopPoll:
			return
		default:
		}
		body, err := c.get(ctx)
		if err != nil {
			c.fail(err)
			return
		}
		if body == "" {
			// engine.io-client reads an empty payload as a parse error.
			c.fail(errors.New("eiotest: empty poll response"))
			return
		}
		for _, p := range strings.Split(body, "\x1e") {
			if strings.HasPrefix(p, "b") {
				b, err := base64.StdEncoding.DecodeString(p[1:])
				if err != nil {
					c.fail(fmt.Errorf("eiotest: bad base64 packet: %w", err))
					return
				}
				c.handleBinary(b)
				continue
			}
			if !c.handleText(p) {
				return
			}
		}
	}
}

func (c *Conn) readWebSocket(conn *websocket.Conn) {
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			c.fail(fmt.Errorf("eiotest: websocket read: %w", err))
			return
		}
		if mt == websocket.BinaryMessage {
			c.handleBinary(msg)
			continue
		}
		if !c.handleText(string(msg)) {
			return
		}
	}
}

// handleText handles one engine.io text packet; it returns false when the session
// ended.
func (c *Conn) handleText(s string) bool {
	if s == "" {
		return true
	}
	switch s[0] {
	case '1': // close
		c.fail(errors.New("eiotest: server closed the session"))
		return false
	case '2': // ping
		_ = c.sendEngine("3" + s[1:])
	case '4':
		c.handleSocketIO(s[1:])
	}
	return true
}

func (c *Conn) handleBinary(b []byte) {
	c.mu.Lock()
	p := c.pending
	if p == nil {
		c.mu.Unlock()
		return
	}
	p.Attachments = append(p.Attachments, b)
	c.missing--
	if c.missing > 0 {
		c.mu.Unlock()
		return
	}
	c.pending = nil
	c.mu.Unlock()
	c.deliver(*p)
}

func (c *Conn) handleSocketIO(s string) {
	p, attachments, err := ParsePacket(s)
	if err != nil {
		c.fail(err)
		return
	}
	if attachments > 0 {
		c.mu.Lock()
		c.pending, c.missing = &p, attachments
		c.mu.Unlock()
		return
	}
	c.deliver(p)
}

func (c *Conn) deliver(p Packet) {
	ch := c.packets
	if p.Type == TypeConnect || p.Type == TypeConnectError {
		ch = c.connects
	}
	select {
	case ch <- p:
	case <-c.done:
	}
}

// ParsePacket parses the text form of a Socket.IO packet and returns it with the
// number of binary attachments that follow it.
func ParsePacket(s string) (Packet, int, error) {
	var p Packet
	if s == "" || s[0] < '0' || s[0] > '6' {
		return p, 0, fmt.Errorf("eiotest: bad socket.io packet %q", s)
	}
	p.Type = int(s[0] - '0')
	i := 1
	attachments := 0
	if p.Type == TypeBinaryEvent || p.Type == TypeBinaryAck {
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			return p, 0, fmt.Errorf("eiotest: binary packet without attachment count %q", s)
		}
		n, err := strconv.Atoi(s[i : i+j])
		if err != nil {
			return p, 0, fmt.Errorf("eiotest: bad attachment count in %q", s)
		}
		attachments = n
		i += j + 1
	}
	p.Nsp = "/"
	if i < len(s) && s[i] == '/' {
		j := strings.IndexByte(s[i:], ',')
		if j < 0 {
			p.Nsp = s[i:]
			return p, attachments, nil
		}
		p.Nsp = s[i : i+j]
		i += j + 1
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j > i {
		id, _ := strconv.Atoi(s[i:j])
		p.ID = &id
		i = j
	}
	if i < len(s) {
		p.Data = json.RawMessage(s[i:])
	}
	return p, attachments, nil
}

func (c *Conn) sendEngine(s string) error {
	c.mu.Lock()
	conn, transport := c.ws, c.transport
	c.mu.Unlock()
	if transport == "websocket" {
		c.wsMu.Lock()
		defer c.wsMu.Unlock()
		return conn.WriteMessage(websocket.TextMessage, []byte(s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.post(ctx, s)
}

// SendRaw sends one engine.io packet as it is (for example "40" or "2probe").
func (c *Conn) SendRaw(s string) error { return c.sendEngine(s) }

// Connect joins the main namespace with auth (nil for none) and waits for the
// server's answer: the Socket.IO socket id, or a *ConnectError.
func (c *Conn) Connect(ctx context.Context, auth any) (string, error) {
	msg := "40"
	if auth != nil {
		b, err := json.Marshal(auth)
		if err != nil {
			return "", err
		}
		msg += string(b)
	}
	if err := c.sendEngine(msg); err != nil {
		return "", fmt.Errorf("eiotest: send connect: %w", err)
	}
	return c.AwaitConnect(ctx)
}

// AwaitConnect waits for the server's answer to a CONNECT sent with SendRaw.
func (c *Conn) AwaitConnect(ctx context.Context) (string, error) {
	var p Packet
	select {
	case p = <-c.connects:
	case <-c.done:
		// A reply read before the session closed is the answer: the
		// refusal of a session's last namespace is followed by its close.
		select {
		case p = <-c.connects:
		default:
			return "", c.Err()
		}
	case <-ctx.Done():
		return "", fmt.Errorf("eiotest: no connect reply: %w", ctx.Err())
	}
	if p.Type == TypeConnectError {
		var ce ConnectError
		_ = json.Unmarshal(p.Data, &ce)
		return "", &ce
	}
	var v struct {
		Sid string `json:"sid"`
	}
	if err := json.Unmarshal(p.Data, &v); err != nil || v.Sid == "" {
		return "", fmt.Errorf("eiotest: bad connect reply %q", p.Data)
	}
	return v.Sid, nil
}

// Emit sends an event with JSON-encodable args.
func (c *Conn) Emit(event string, args ...any) error {
	b, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return err
	}
	return c.sendEngine("42" + string(b))
}

// Next returns the next packet other than CONNECT replies, or an error when ctx
// ends or the session closes.
func (c *Conn) Next(ctx context.Context) (Packet, error) {
	select {
	case p := <-c.packets:
		return p, nil
	default:
	}
	select {
	case p := <-c.packets:
		return p, nil
	case <-c.done:
		select {
		case p := <-c.packets:
			return p, nil
		default:
		}
		return Packet{}, c.Err()
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
}

// NextEvent returns the next EVENT or BINARY_EVENT packet, skipping others.
func (c *Conn) NextEvent(ctx context.Context) (Packet, error) {
	for {
		p, err := c.Next(ctx)
		if err != nil {
			return p, err
		}
		if p.Type == TypeEvent || p.Type == TypeBinaryEvent {
			return p, nil
		}
	}
}

// Upgrade moves a polling session to websocket the way the JS client does: probe,
// pause polling, send the upgrade packet.
func (c *Conn) Upgrade(ctx context.Context) error {
	if c.Transport() != "polling" {
		return errors.New("eiotest: not polling")
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, c.endpoint("ws", "websocket"), c.opts.Header)
	if err != nil {
		return fmt.Errorf("eiotest: dial websocket for upgrade: %w", err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		conn.Close()
		return fmt.Errorf("eiotest: send probe: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	_, msg, err := conn.ReadMessage()
	stop()
	if err != nil {
		conn.Close()
		return fmt.Errorf("eiotest: no probe answer: %w", err)
	}
	if string(msg) != "3probe" {
		conn.Close()
		return fmt.Errorf("eiotest: probe answer %q", msg)
	}
	_ = conn.SetReadDeadline(time.Time{})
	// Pause polling: the server answers the pending GET (with a noop) once it saw
	// the probe, and the loop stops after it.
	close(c.stopPoll)
	select {
	case <-c.pollDone:
	case <-ctx.Done():
		conn.Close()
		return fmt.Errorf("eiotest: polling did not pause: %w", ctx.Err())
	}
	c.mu.Lock()
	c.ws, c.transport = conn, "websocket"
	c.mu.Unlock()
	if err := c.sendEngine("5"); err != nil {
		return fmt.Errorf("eiotest: send upgrade: %w", err)
	}
	go c.readWebSocket(conn)
	return nil
}

func (c *Conn) fail(err error) {
	c.doneOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	})
}

// Err returns why the session ended, or nil while it runs.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the session ended (closed by either side or failed).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close ends the session.
func (c *Conn) Close() {
	c.mu.Lock()
	conn, transport := c.ws, c.transport
	c.mu.Unlock()
	if transport == "websocket" && conn != nil {
		c.wsMu.Lock()
		_ = conn.WriteMessage(websocket.TextMessage, []byte("1"))
		c.wsMu.Unlock()
		_ = conn.Close()
	} else if transport == "polling" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.post(ctx, "1")
		cancel()
	}
	c.fail(errors.New("eiotest: closed by client"))
}
