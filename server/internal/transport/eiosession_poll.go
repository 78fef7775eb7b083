package transport

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/engine.io/v2/utils"
)

// HTTP long-polling for sessions (engine.io protocol 4). The client keeps one
// GET waiting for packets and sends its own packets with POSTs; a payload is
// packets separated by a record separator (0x1e), binary ones as "b" and base64.
// A session starts with a GET handshake that answers the open packet, and may
// then upgrade: the client opens a websocket with the session id, sends
// "2probe" and gets "3probe", the server answers a waiting GET with a NOOP so
// that the client stops polling, and the client's UPGRADE packet ("5") on the
// websocket switches the session over, what polling still held going out first.

// recordSeparator separates the packets of a polling payload.
const recordSeparator = 0x1e

// pollPacket is a packet waiting for a poll: kind as in session.send.
type pollPacket struct {
	kind byte
	data []byte
}

// pollState is the polling side of a session (under session.mu).
type pollState struct {
	queue   []pollPacket
	waiting bool          // a GET waits for packets
	wake    chan struct{} // tells it that there are some
	posting bool          // a POST is being handled
	// clientClosed: the client sent CLOSE, a waiting GET was answered with
	// NOOP and no CLOSE is queued. closeAfterPoll: the session closes once a
	// GET has taken the queue (see afterRefusal).
	clientClosed, closeAfterPoll bool
}

func newPollState() *pollState { return &pollState{wake: make(chan struct{}, 1)} }

func (p *pollState) add(kind byte, data []byte) {
	p.queue = append(p.queue, pollPacket{kind, data})
	if p.waiting {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// close gives a waiting (or the next) GET the CLOSE packet.
func (p *pollState) close() { p.add(eioClose, nil) }

// payload encodes the queued packets and empties the queue.
func (p *pollState) payload() []byte {
	n := 0
	for _, pk := range p.queue {
		n += 2 + base64.StdEncoding.EncodedLen(len(pk.data))
	}
	b := make([]byte, 0, n)
	for i, pk := range p.queue {
		if i > 0 {
			b = append(b, recordSeparator)
		}
		if pk.kind == 0 {
			b = append(b, 'b')
			b = base64.StdEncoding.AppendEncode(b, pk.data)
		} else {
			b = append(b, pk.kind)
			b = append(b, pk.data...)
		}
	}
	clear(p.queue)
	p.queue = p.queue[:0]
	return b
}

// servePollingSession handles the handshake GET of a session that starts on
// polling: the engine's checks and middlewares, the open packet (the session
// listed and announced first, so that Socket.IO listens before the client can
// send anything).
func servePollingSession(eng engineServer, w http.ResponseWriter, r *http.Request) {
	handshake(eng, w, r, func(ctx *types.HttpContext, id string) {
		s := newSession(eng, ctx, id, r.RemoteAddr)
		s.poll = newPollState()
		s.onPolling.Store(true)
		var upgrades []string
		for _, u := range []string{transports.WEBSOCKET} {
			if eng.Upgrades(transports.POLLING).Has(u) && eng.Opts().Transports().Has(u) {
				upgrades = append(upgrades, u)
			}
		}
		s.poll.add(eioOpen, s.openPacket(upgrades))
		s.start()
		s.mu.Lock()
		body := s.poll.payload()
		s.mu.Unlock()
		h := w.Header()
		for k, v := range ctx.ResponseHeaders.All() {
			h[k] = v
		}
		if c := eng.Opts().Cookie(); c != nil {
			h.Add("Set-Cookie", c.String())
		}
		writePayload(eng, w, r, ctx, body, true)
	})
}

// writePayload answers a poll with body, with the engine's headers (and its
// "initial_headers"/"headers" events when something listens to them).
func writePayload(eng engineServer, w http.ResponseWriter, r *http.Request, ctx *types.HttpContext, body []byte, initial bool) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	setCommonHeaders(eng, h, r, ctx, initial)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// setCommonHeaders adds what the engine's polling transport adds to every
// response.
func setCommonHeaders(eng engineServer, h http.Header, r *http.Request, ctx *types.HttpContext, initial bool) {
	// No XSS warnings in old Internet Explorers.
	if ua := r.UserAgent(); strings.Contains(ua, ";MSIE") || strings.Contains(ua, "Trident/") {
		h.Set("X-XSS-Protection", "0")
	}
	h.Set("Cache-Control", "no-store")
	if eng.ListenerCount("headers") == 0 && (!initial || eng.ListenerCount("initial_headers") == 0) {
		return
	}
	if ctx == nil {
		ctx = types.NewHttpContext(discardResponse{}, r.WithContext(doneContext))
	}
	bag := utils.NewParameterBag(h)
	if initial {
		eng.Emit("initial_headers", bag, ctx)
	}
	eng.Emit("headers", bag, ctx)
}

// badRequest answers an engine.io error before anything was written.
func badRequest(w http.ResponseWriter, code *types.CodeMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"code":` + strconv.Itoa(code.Code) + `,"message":` + strconv.Quote(code.Message) + `}`))
}

// requestChecks does, for a request of an existing session, what the engine
// does for every request: its middlewares (CORS...), when there are any, and
// its checks of the Origin header. It reports false when it has answered.
func requestChecks(eng engineServer, w http.ResponseWriter, r *http.Request) (ctx *types.HttpContext, ok bool) {
	if origin := r.Header.Get("Origin"); utils.CheckInvalidHeaderChar(origin) {
		badRequest(w, engine.BAD_REQUEST)
		return nil, false
	}
	if len(eng.Middlewares()) == 0 {
		return nil, true
	}
	ctx = types.NewHttpContext(w, r)
	result := make(chan error, 1)
	eng.ApplyMiddlewares(ctx, func(err error) { result <- err })
	select {
	case err := <-result:
		if err != nil {
			abort(eng, ctx, engine.BAD_REQUEST, map[string]any{"name": "MIDDLEWARE_FAILURE"})
			return nil, false
		}
	case <-ctx.Done():
		return nil, false // a middleware answered (a CORS preflight)
	}
	h := w.Header()
	for k, v := range ctx.ResponseHeaders.All() {
		h[k] = v
	}
	return ctx, true
}

// servePolling handles a polling request (GET: wait for packets; POST: the
// client's packets) of the session.
func (s *session) servePolling(w http.ResponseWriter, r *http.Request, q Query) {
	ctx, ok := requestChecks(s.srv, w, r)
	if !ok {
		return
	}
	s.settleProbe()
	s.mu.Lock()
	p := s.poll
	s.mu.Unlock()
	if p == nil || q.Get("transport") != transports.POLLING {
		badRequest(w, engine.BAD_REQUEST) // upgraded, or not a polling request
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.servePoll(w, r, ctx, p)
	case http.MethodPost:
		s.serveData(w, r, ctx, p)
	default:
		badRequest(w, engine.BAD_REQUEST)
	}
}

var (
	errPollOverlap = errors.New("transport: overlapping polls from the client")
	errPollGone    = errors.New("transport: poll connection closed prematurely")
)

// servePoll answers a GET with the queued packets, waiting for some if there
// are none.
func (s *session) servePoll(w http.ResponseWriter, r *http.Request, ctx *types.HttpContext, p *pollState) {
	s.mu.Lock()
	if p.waiting {
		s.mu.Unlock()
		badRequest(w, engine.BAD_REQUEST)
		s.onClose("transport error", errPollOverlap)
		return
	}
	if len(p.queue) == 0 && s.probe != nil {
		p.add(eioNoop, nil) // upgrading: the client must stop polling
	}
	// A wake-up may be left over from packets an earlier poll already took:
	// wait until there is something to answer.
	for len(p.queue) == 0 && !p.closeAfterPoll {
		p.waiting = true
		s.mu.Unlock()
		select {
		case <-p.wake:
		case <-r.Context().Done():
			s.mu.Lock()
			p.waiting = false
			s.mu.Unlock()
			s.onClose("transport error", errPollGone)
			return
		}
		s.mu.Lock()
		p.waiting = false
	}
	end := p.closeAfterPoll
	if end {
		p.add(eioClose, nil)
		p.clientClosed = true // CLOSE is in this payload already
	}
	body := p.payload()
	s.mu.Unlock()
	writePayload(s.srv, w, r, ctx, body, false)
	if end {
		s.Close(false)
	}
}

// serveData handles a POST: every packet of its payload, then "ok".
func (s *session) serveData(w http.ResponseWriter, r *http.Request, ctx *types.HttpContext, p *pollState) {
	s.mu.Lock()
	if p.posting {
		s.mu.Unlock()
		badRequest(w, engine.BAD_REQUEST)
		s.onClose("transport error", errPollOverlap)
		return
	}
	p.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		p.posting = false
		s.mu.Unlock()
	}()
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		// Protocol 4 sends binary as base64 text.
		badRequest(w, engine.BAD_REQUEST)
		s.onClose("transport error", errors.New("invalid content"))
		return
	}
	limit := s.srv.Opts().MaxHttpBufferSize()
	if r.ContentLength > limit {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		} else {
			badRequest(w, engine.BAD_REQUEST)
		}
		return
	}
	s.onPayload(body)
	h := w.Header()
	// text/html, not text/plain: some user agents offer to download the latter.
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	setCommonHeaders(s.srv, h, r, ctx, false)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// onPayload hands every packet of a polling payload over, in order.
func (s *session) onPayload(body []byte) {
	for len(body) > 0 {
		pk := body
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			pk, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(pk) > 0 && pk[0] == 'b' {
			data, err := base64.StdEncoding.DecodeString(string(pk[1:]))
			if err != nil {
				s.onClose("parse error", nil)
				return
			}
			if !s.handleMessage(false, data) {
				return
			}
			continue
		}
		if !s.handleMessage(true, pk) {
			return
		}
	}
}

// handleMessage is onMessage with a panic of the handlers counted and turned
// into the close of this session.
func (s *session) handleMessage(text bool, data []byte) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			readPanics.Add(1)
			s.onClose("transport error", errors.New("transport: a handler panicked"))
			ok = false
		}
	}()
	return s.onMessage(text, data)
}

// serveWebSocketUpgrade handles the websocket request of a polling session that
// upgrades: the websocket is probed, then takes over (see the top of this file).
// It runs as many checks as the engine: the session must still be polling and
// not already upgrading, and the probe must complete within the engine's
// upgradeTimeout.
func (s *session) serveWebSocketUpgrade(w http.ResponseWriter, r *http.Request) {
	key, err := checkWebSocketRequest(r)
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	if _, ok := requestChecks(s.srv, w, r); !ok {
		return
	}
	s.mu.Lock()
	ok := s.poll != nil && s.probe == nil && s.state.Load() == stateOpen
	s.mu.Unlock()
	if !ok {
		if fixesOn.Load() {
			// Upgraded already, or probing another websocket: accepted, then
			// closed, as the spec says (correction 3, see protocol.go).
			if nc, err := upgradeConn(w, key, w.Header()); err == nil {
				closedExtraUpgrades.Add(1)
				newWSConn(nc, 0).close(closeNormal)
			}
			return
		}
		badRequest(w, engine.BAD_REQUEST)
		return
	}
	nc, err := upgradeConn(w, key, w.Header())
	if err != nil {
		return
	}
	up := newWSConn(nc, s.srv.Opts().MaxHttpBufferSize())
	s.mu.Lock()
	if s.poll == nil || s.probe != nil || s.state.Load() != stateOpen {
		s.mu.Unlock()
		up.abort()
		return
	}
	s.probe = up
	s.mu.Unlock()
	wake := s.wakeProbeWaiters
	up.idle.Store(&wake)
	timer := time.AfterFunc(s.srv.Opts().UpgradeTimeout(), func() { s.failProbe(up) })
	up.startReading(func(text bool, data []byte) bool {
		return s.onProbeMessage(up, timer, text, data)
	}, func(err error) {
		s.mu.Lock()
		switched := s.ws == up
		s.mu.Unlock()
		if switched {
			s.onReadEnd(err)
		} else {
			timer.Stop()
			s.failProbe(up)
		}
	})
}

// onProbeMessage handles the messages of a websocket being probed, and after
// the switch the session's messages on it.
func (s *session) onProbeMessage(up *wsConn, timer *time.Timer, text bool, data []byte) bool {
	s.mu.Lock()
	switched := s.ws == up
	s.mu.Unlock()
	if switched {
		return s.onMessage(text, data)
	}
	switch {
	case text && string(data) == "2probe":
		_ = up.writeFrame(textFrameWithPrefix(eioPong, []byte("probe")))
		s.mu.Lock()
		if s.poll != nil && s.poll.waiting {
			s.poll.add(eioNoop, nil) // ends the waiting poll: the client stops polling
		}
		s.mu.Unlock()
		if s.has("upgrading") {
			s.Emit("upgrading", s.tr)
		}
		return true
	case text && len(data) == 1 && data[0] == eioUpgrade:
		timer.Stop()
		s.mu.Lock()
		p := s.poll
		if s.probe != up || p == nil || s.state.Load() != stateOpen {
			s.mu.Unlock()
			up.abort()
			return false
		}
		// What polling still holds goes out first, in order.
		frames := make([][]byte, 0, len(p.queue))
		for _, pk := range p.queue {
			if pk.kind == 0 {
				frames = append(frames, Frame(false, pk.data))
			} else {
				frames = append(frames, textFrameWithPrefix(pk.kind, pk.data))
			}
		}
		_ = up.writeFrames(frames)
		p.queue = p.queue[:0]
		if p.waiting {
			p.add(eioNoop, nil)
		}
		s.ws, s.poll, s.probe = up, nil, nil
		s.onPolling.Store(false)
		s.tr.upgraded.Store(true)
		s.mu.Unlock()
		up.idle.Store(nil)
		s.wakeProbeWaiters()
		if s.has("upgrade") {
			s.Emit("upgrade", s.tr)
		}
		return true
	}
	// Anything else before the upgrade: the new transport is given up.
	timer.Stop()
	s.failProbe(up)
	return false
}

// failProbe gives up the websocket being probed; the session goes on polling.
func (s *session) failProbe(up *wsConn) {
	s.mu.Lock()
	if s.probe == up {
		s.probe = nil
	}
	s.mu.Unlock()
	up.idle.Store(nil)
	up.abort()
	s.wakeProbeWaiters()
}
