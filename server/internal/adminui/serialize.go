package adminui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/zishang520/socket.io/v2/socket"
)

// KeptHeaders are the request headers of a handshake that the Admin UI shows
// (as the socket's "initial request"); realtime.Config.KeepHeaders should keep
// them. No other header is ever shown: the cookie and authorization headers
// carry credentials.
var KeptHeaders = []string{"User-Agent", "Origin"}

// keptQuery are the query parameters of the handshake URL that are shown.
var keptQuery = []string{"EIO", "transport"}

// maxDataBytes bounds the JSON of a socket's data shown; larger data is
// replaced by a note.
const maxDataBytes = 2048

// redacted replaces the value of every key that looks like a credential.
const redacted = "[redacted]"

// serializeSocket describes a socket as the Admin UI's SerializedSocket:
// id, clientId, transport, nsp, data, handshake and rooms. It never includes the
// handshake's auth object, its cookie or authorization headers, or the engine's
// session id (with which anyone could write to a polling session): clientId is a
// digest of it.
func serializeSocket(s *socket.Socket, nsp string) map[string]any {
	var transport string
	if c := s.Conn(); c != nil {
		if t := c.Transport(); t != nil {
			transport = t.Name()
		}
	}
	rooms := []any{}
	for _, r := range s.Rooms().Keys() {
		rooms = append(rooms, string(r))
	}
	return map[string]any{
		"id":        string(s.Id()),
		"clientId":  clientID(s),
		"transport": transport,
		"nsp":       nsp,
		"data":      socketData(s.Data()),
		"handshake": handshakeSummary(s.Handshake()),
		"rooms":     rooms,
	}
}

// clientID names the engine.io session of s without revealing its id.
func clientID(s *socket.Socket) string {
	c := s.Conn()
	if c == nil {
		return ""
	}
	sum := sha256.Sum256([]byte("taskwire admin-ui client " + c.Id()))
	return hex.EncodeToString(sum[:6])
}

// handshakeSummary is what the Admin UI shows of a handshake: address, time,
// the kept headers and query parameters, and the URL without its other query
// parameters.
func handshakeSummary(h *socket.Handshake) map[string]any {
	out := map[string]any{"headers": map[string]any{}, "query": map[string]any{}}
	if h == nil {
		return out
	}
	headers := map[string]any{}
	for k, vs := range h.Headers {
		for _, keep := range KeptHeaders {
			if strings.EqualFold(k, keep) && len(vs) > 0 {
				headers[strings.ToLower(keep)] = strings.Join(vs, ", ")
			}
		}
	}
	path, query := cleanURL(h.Url)
	out["headers"] = headers
	out["query"] = query
	out["url"] = path
	out["address"] = h.Address
	out["time"] = h.Time
	out["issued"] = h.Issued
	out["secure"] = h.Secure
	out["xdomain"] = h.Xdomain
	return out
}

// cleanURL keeps the path of a handshake URL and its kept query parameters.
func cleanURL(raw string) (string, map[string]any) {
	query := map[string]any{}
	u, err := url.Parse(raw)
	if err != nil {
		return "", query
	}
	q := u.Query()
	kept := url.Values{}
	for _, k := range keptQuery {
		if v := q.Get(k); v != "" {
			kept.Set(k, v)
			query[k] = v
		}
	}
	if len(kept) == 0 {
		return u.Path, query
	}
	return u.Path + "?" + kept.Encode(), query
}

// socketData is a socket's data as JSON values, with credentials redacted and
// its size bounded; data that is not a JSON object shows as {}.
func socketData(d any) map[string]any {
	if d == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return map[string]any{}
	}
	if len(b) > maxDataBytes {
		return map[string]any{"note": "data too large to show"}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		return map[string]any{}
	}
	redact(m, 0)
	return m
}

// eventArgs prepares the arguments of an event for event_received and
// event_sent: the event name first, then its arguments as JSON values with
// credentials redacted, or a note of their size when they are larger than
// maxArgs bytes. An acknowledgement callback is left out.
func eventArgs(args []any, maxArgs int) []any {
	if len(args) == 0 {
		return nil
	}
	name, ok := args[0].(string)
	if !ok {
		return nil
	}
	rest := args[1:]
	if n := len(rest); n > 0 {
		if _, isAck := rest[n-1].(socket.Ack); isAck {
			rest = rest[:n-1]
		} else if _, isFunc := rest[n-1].(func([]any, error)); isFunc {
			rest = rest[:n-1]
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return []any{name, "[arguments not JSON]"}
	}
	if len(b) > maxArgs {
		return []any{name, "[" + strconv.Itoa(len(b)) + " bytes, not shown]"}
	}
	var values []any
	if json.Unmarshal(b, &values) != nil {
		return []any{name}
	}
	for i, v := range values {
		values[i] = redactValue(v, 0)
	}
	return append([]any{name}, values...)
}

// sensitive reports whether a key's value is a credential.
func sensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"token", "password", "secret", "authorization", "cookie", "apikey", "api_key", "sessionid"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

const maxDepth = 32

func redact(m map[string]any, depth int) {
	for k, v := range m {
		if sensitive(k) {
			m[k] = redacted
			continue
		}
		m[k] = redactValue(v, depth+1)
	}
}

func redactValue(v any, depth int) any {
	if depth > maxDepth {
		return redacted
	}
	switch x := v.(type) {
	case map[string]any:
		redact(x, depth)
	case []any:
		for i := range x {
			x[i] = redactValue(x[i], depth+1)
		}
	}
	return v
}
