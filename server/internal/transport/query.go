package transport

import (
	"net/url"
	"strings"
)

// Query reads the parameters of an engine.io request without building the map
// of url.Values: every long-polling request asks for three of them, and a
// busy server serves thousands of such requests a second.
type Query string

// QueryOf returns the query of u.
func QueryOf(u *url.URL) Query { return Query(u.RawQuery) }

// Lookup returns the first value of key, unescaped, and whether key is present.
// A value that does not unescape counts as absent, as url.ParseQuery drops it.
func (q Query) Lookup(key string) (string, bool) {
	s := string(q)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // url.ParseQuery rejects such pairs too
		}
		k, v, _ := strings.Cut(pair, "=")
		if !strings.ContainsAny(k, "%+") {
			if k != key {
				continue
			}
		} else if uk, err := url.QueryUnescape(k); err != nil || uk != key {
			continue
		}
		if !strings.ContainsAny(v, "%+") {
			return v, true
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			return uv, true
		}
	}
	return "", false
}

// Get returns the first value of key, or "".
func (q Query) Get(key string) string {
	v, _ := q.Lookup(key)
	return v
}

// Has reports whether key is present.
func (q Query) Has(key string) bool {
	_, ok := q.Lookup(key)
	return ok
}
