package transport

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/zishang520/engine.io/v2/engine"
	"github.com/zishang520/engine.io/v2/transports"
	"github.com/zishang520/engine.io/v2/types"
)

// handshakeTimeout bounds the write of the 101 response.
const handshakeTimeout = 10 * time.Second

var errNotWebSocket = errors.New("transport: not a websocket handshake")

// isWebSocketRequest reports whether r asks for a websocket (RFC 6455, 4.2.1).
func isWebSocketRequest(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// checkWebSocketRequest returns the client's key, or an error for a request that
// cannot be upgraded.
func checkWebSocketRequest(r *http.Request) (string, error) {
	if r.Method != http.MethodGet || !isWebSocketRequest(r) {
		return "", errNotWebSocket
	}
	if r.Header.Get("Sec-Websocket-Version") != "13" {
		return "", errors.New("transport: unsupported websocket version")
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", errors.New("transport: bad Sec-WebSocket-Key")
	}
	return key, nil
}

// acceptKey is the Sec-WebSocket-Accept value for key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// upgradeConn answers the websocket handshake of r (checked by
// checkWebSocketRequest) with 101 and the extra headers, and returns the
// hijacked connection, with no extension (no compression) and no subprotocol.
func upgradeConn(w http.ResponseWriter, key string, extra http.Header) (net.Conn, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errors.New("transport: the response cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// A client must wait for the 101 before it sends frames.
		_ = nc.Close()
		return nil, errors.New("transport: client sent data before the handshake completed")
	}
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, acceptKey(key)...)
	b = append(b, "\r\n"...)
	for k, vs := range extra {
		if strings.HasPrefix(strings.ToLower(k), "sec-websocket-") {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ {
				c := v[i]
				if c < 0x20 {
					c = ' ' // no response splitting
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	_ = nc.SetDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if _, err := nc.Write(b); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nc, nil
}

// serveUpgrade handles the websocket request of a polling session that
// upgrades, as the engine does (its checks and middlewares, then the session's
// MaybeUpgrade with a new websocket transport), except that the websocket
// handshake is ours: the engine's would give the connection a websocket
// library's buffers for its whole life. The transport starts reading once the
// session listens to it.
func serveUpgrade(eng engineServer, w http.ResponseWriter, r *http.Request, maxMessage int64) {
	key, err := checkWebSocketRequest(r)
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	g := newGate(maxMessage)
	defer g.open()
	ctx := types.NewHttpContext(w, r.WithContext(context.WithValue(r.Context(), gateKey{}, g)))
	eng.ApplyMiddlewares(ctx, func(err error) {
		if err != nil {
			abort(eng, ctx, engine.BAD_REQUEST, map[string]any{"name": "MIDDLEWARE_FAILURE"})
			return
		}
		if code, errCtx := eng.Verify(ctx, true); code != nil {
			abort(eng, ctx, code, errCtx)
			return
		}
		client, ok := eng.Clients().Load(ctx.Query().Peek("sid"))
		if !ok || client.Upgrading() || client.Upgraded() {
			// Closed meanwhile, or a second upgrade attempt.
			abort(eng, ctx, engine.BAD_REQUEST, map[string]any{"name": "TRANSPORT_MISMATCH"})
			return
		}
		nc, err := upgradeConn(w, key, ctx.ResponseHeaders.All())
		if err != nil {
			return
		}
		g.conn = nc
		t, err := eng.CreateTransport(transports.WEBSOCKET, ctx)
		if err != nil {
			_ = nc.Close()
			return
		}
		g.conn = nil
		client.MaybeUpgrade(t)
	})
}
